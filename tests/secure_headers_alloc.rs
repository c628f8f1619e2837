//! Proves the static path of the SecureHeaders layer makes no heap allocation of its own.
//!
//! A counting global allocator (its own test binary, so no other test is affected) counts the
//! allocations made on the current thread while one request goes through a service, polled
//! by hand with a no-op waker (no runtime). The same request through the bare inner service is
//! the baseline, so only the layer's own allocations remain.
#![cfg(feature = "secure-headers")]

use std::convert::Infallible;
use std::future::Future;

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service, service_fn};
use tower_shield::secure_headers::{Csp, SecureHeaders};

mod common;
use common::alloc::request_allocations as allocations;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

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
