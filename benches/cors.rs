//! The Cors layer against tower-http 0.7's `CorsLayer` configured the same way (the same
//! origins, credentials, methods, request headers, exposed headers and max age), around the
//! same trivial `service_fn`, in one run. Ids: `cors/<case>/{tower_shield,tower_http}`.
//!
//! - `simple`: a GET from an allowed (listed) origin;
//! - `preflight`: an allowed preflight asking for two headers;
//! - `wildcard`: a GET from an origin allowed by `https://*.tenant.example.com` (a predicate
//!   on tower-http's side, which has no pattern);
//! - `refused`: a GET from an origin that is not allowed.
//!
//! tower-http answers a preflight without checking the method or headers asked for, and
//! never refuses one; ours checks both. Requests are built once, outside the timed loop, and
//! cloned per iteration on both sides (the clone is part of both numbers). Both sides are
//! polled by hand with a no-op waker; no runtime, no boxing.
//!
//! `cargo bench --bench cors -- --warm-up-time 1 --measurement-time 3 --noplot`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body::Body;
use tower::{Layer, Service, service_fn};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_shield::cors::{Cors, MaxAge};

const ORIGINS: [&str; 3] = [
    "https://app.example.com",
    "https://admin.example.com",
    "http://localhost:3000",
];
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
];
const HEADERS: [&str; 3] = ["content-type", "x-device-id", "authorization"];
const EXPOSE: [&str; 2] = ["x-total-count", "x-page-count"];

fn handler()
-> impl Service<Request<()>, Response = Response<String>, Error = Infallible, Future = impl Future>
+ Clone {
    service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) })
}

/// The `Access-Control-Allow-Origin` of `svc`'s response to `req`.
fn acao<S, B>(svc: &mut S, req: &Request<()>) -> Option<HeaderValue>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: Body,
{
    let mut cx = Context::from_waker(Waker::noop());
    let _ = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req.clone()));
    loop {
        if let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            return res.headers().get("access-control-allow-origin").cloned();
        }
    }
}

/// One request through `svc`, polled to completion; returns the header count.
fn once<S, B>(svc: &mut S, req: &Request<()>) -> usize
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: Body,
{
    let req = req.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            return res.headers().len();
        }
    }
}

fn ours(wildcard: bool) -> tower_shield::cors::CorsLayer {
    let mut b = Cors::builder()
        .allow_origins(ORIGINS)
        .allow_credentials(true)
        .allow_methods(METHODS.iter().map(Method::as_str))
        .allow_headers(HEADERS)
        .expose_headers(EXPOSE)
        .max_age(MaxAge::seconds(600));
    if wildcard {
        b = b.allow_origin("https://*.tenant.example.com");
    }
    b.build().unwrap()
}

fn theirs(wildcard: bool) -> CorsLayer {
    let list: Vec<HeaderValue> = ORIGINS
        .iter()
        .map(|o| HeaderValue::from_static(o))
        .collect();
    let origin = if wildcard {
        AllowOrigin::predicate(move |o: &HeaderValue, _| {
            list.contains(o)
                || o.as_bytes()
                    .strip_prefix(b"https://")
                    .is_some_and(|h| h.ends_with(b".tenant.example.com"))
        })
    } else {
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(true)
        .allow_methods(METHODS.to_vec())
        .allow_headers(HEADERS.map(HeaderName::from_static).to_vec())
        .expose_headers(EXPOSE.map(HeaderName::from_static).to_vec())
        .max_age(Duration::from_secs(600))
}

fn get(origin: &'static str) -> Request<()> {
    Request::get("/search?q=jazz")
        .header("origin", HeaderValue::from_static(origin))
        .header("accept", HeaderValue::from_static("application/json"))
        .body(())
        .unwrap()
}

fn preflight() -> Request<()> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/playlist/generate")
        .header(
            "origin",
            HeaderValue::from_static("https://app.example.com"),
        )
        .header(
            "access-control-request-method",
            HeaderValue::from_static("POST"),
        )
        .header(
            "access-control-request-headers",
            HeaderValue::from_static("content-type,x-device-id"),
        )
        .body(())
        .unwrap()
}

fn case(c: &mut Criterion, name: &str, wildcard: bool, req: Request<()>) {
    let mut a = ours(wildcard).layer(handler());
    let mut b = theirs(wildcard).layer(handler());
    // both sides agree on the outcome before they are timed
    assert_eq!(
        acao(&mut a, &req),
        acao(&mut b, &req),
        "{name}: the two layers disagree"
    );
    let mut group = c.benchmark_group(format!("cors/{name}"));
    group.bench_function("tower_shield", |bench| {
        bench.iter(|| black_box(once(&mut a, black_box(&req))))
    });
    group.bench_function("tower_http", |bench| {
        bench.iter(|| black_box(once(&mut b, black_box(&req))))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    case(c, "simple", false, get("https://app.example.com"));
    case(c, "preflight", false, preflight());
    case(c, "wildcard", true, get("https://acme.tenant.example.com"));
    case(c, "refused", false, get("https://evil.example"));
}

criterion_group!(cors, benches);
criterion_main!(cors);
