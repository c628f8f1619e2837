//! Proves the static path of the SecureHeaders layer makes no heap allocation of its own.
//!
//! A counting global allocator (its own test binary, so no other test is affected) counts the
//! allocations made on the current thread while one request goes through a service, polled
//! by hand with a no-op waker (no runtime). The same request through the bare inner service is
//! the baseline, so only the layer's own allocations remain.
#![cfg(feature = "secure-headers")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service, service_fn};
use tower_shield::secure_headers::{Csp, SecureHeaders};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call forwards to the system allocator unchanged; the counter is a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while one request goes through `svc` (the response is
/// dropped afterwards, outside the count).
fn allocations<S>(svc: &mut S, req: Request<()>) -> usize
where
    S: Service<Request<()>, Response = Response<String>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    let ready = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req));
    let res = loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            break r;
        }
    };
    ON.with(|on| on.set(false));
    assert!(matches!(ready, Poll::Ready(Ok(()))));
    let n = COUNT.with(Cell::get);
    drop(res);
    n
}

fn request() -> Request<()> {
    Request::get("https://api.example.com/").body(()).unwrap()
}

/// A handler whose response already has room for the headers: the map need not grow.
fn roomy()
-> impl Service<Request<()>, Response = Response<String>, Error = Infallible, Future = impl Future>
+ Clone {
    service_fn(|_req: Request<()>| async {
        let mut res = Response::new(String::new());
        *res.headers_mut() = HeaderMap::with_capacity(32);
        res.headers_mut()
            .insert("server", HeaderValue::from_static("x"));
        Ok::<_, Infallible>(res)
    })
}

/// A handler whose response has no headers at all.
fn bare()
-> impl Service<Request<()>, Response = Response<String>, Error = Infallible, Future = impl Future>
+ Clone {
    service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) })
}

#[test]
fn static_path_allocates_nothing_of_its_own() {
    for (name, builder) in [
        ("default", SecureHeaders::builder()),
        ("helmet", SecureHeaders::helmet()),
        ("owasp", SecureHeaders::owasp()),
        ("api", SecureHeaders::api()),
        (
            "custom",
            SecureHeaders::builder()
                .header("x-custom-policy", String::from("on"))
                .remove(String::from("x-debug")),
        ),
    ] {
        let layer = builder.build().unwrap();
        let mut inner = roomy();
        let mut wrapped = layer.layer(roomy());
        for round in 0..3 {
            let base = allocations(&mut inner, request());
            let ours = allocations(&mut wrapped, request());
            assert_eq!(
                ours,
                base,
                "{name}, request {round}: the layer allocated {} time(s)",
                ours - base
            );
        }
    }
}

#[test]
fn growing_an_empty_map_costs_no_more_than_tower_http() {
    use tower_http::set_header::SetResponseHeaderLayer;

    let layer = SecureHeaders::builder().build().unwrap();
    let mut ours = layer.layer(bare());
    let mut base = bare();
    // tower-http: one overriding layer per header of the same set (plain HTTP, so no HSTS)
    let headers: Vec<_> = layer
        .static_headers()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut theirs = tower::util::BoxCloneService::new(bare());
    for (n, v) in headers {
        theirs = tower::util::BoxCloneService::new(
            SetResponseHeaderLayer::overriding(n, v).layer(theirs),
        );
    }
    let plain = || {
        Request::get("/")
            .header("host", "api.example.com")
            .body(())
            .unwrap()
    };
    let b = allocations(&mut base, plain());
    let o = allocations(&mut ours, plain()) - b;
    let t = allocations(&mut theirs, plain()) - b;
    // The only allocations are the response map's own growth: one reserve, two buffers.
    assert!(o <= 2, "ours allocated {o}");
    assert!(o <= t, "ours {o} > tower-http {t}");
}

#[test]
fn nonce_path_allocates_a_bounded_few() {
    let layer = SecureHeaders::builder()
        .csp(Csp::recommended().nonce("script-src").nonce("style-src"))
        .build()
        .unwrap();
    let mut inner = roomy();
    let mut wrapped = layer.layer(roomy());
    // the first nonce on a thread seeds that thread's CSPRNG
    allocations(&mut wrapped, request());
    for _ in 0..3 {
        let base = allocations(&mut inner, request());
        let ours = allocations(&mut wrapped, request()) - base;
        // the request's extension map (box and table) and its boxed entry, and the policy text
        assert_eq!(ours, 4, "nonce path allocated {ours}");
    }
}
