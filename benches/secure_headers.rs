//! The SecureHeaders layer against a stack of tower-http 0.7 `SetResponseHeaderLayer::overriding`
//! layers setting the same twelve headers, around the same trivial `service_fn`, in one run.
//! Ids: `secure_headers/<case>/{tower_shield,tower_http}`.
//!
//! tower-http has no header-removal middleware, so its side does not remove `Server` /
//! `X-Powered-By` (ours does, on top). Both sides are polled by hand with a no-op waker; no
//! runtime, no boxing.
//!
//! `cargo bench --bench secure_headers -- --warm-up-time 1 --measurement-time 3 --noplot`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use tower::{Layer, Service, ServiceBuilder, service_fn};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_shield::secure_headers::{Csp, SecureHeaders};

fn handler()
-> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future = impl Future> + Clone
{
    service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) })
}

/// One request through `svc`, polled to completion; returns the header count.
fn once<S>(svc: &mut S, uri: &Uri) -> usize
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    let mut req = Request::new(());
    *req.uri_mut() = uri.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let _ = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            return res.headers().len();
        }
    }
}

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn static_case(c: &mut Criterion) {
    let uri: Uri = "https://api.example.com/".parse().unwrap();
    let layer = SecureHeaders::builder().build().unwrap();
    let mut ours = layer.layer(handler());

    // the very same values, one overriding layer each
    let v = |name: &str| -> HeaderValue {
        if name == "strict-transport-security" {
            return layer.hsts_value().unwrap().clone();
        }
        layer
            .static_headers()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let mut theirs = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            h("content-security-policy"),
            v("content-security-policy"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("cross-origin-opener-policy"),
            v("cross-origin-opener-policy"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("cross-origin-resource-policy"),
            v("cross-origin-resource-policy"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("origin-agent-cluster"),
            v("origin-agent-cluster"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("referrer-policy"),
            v("referrer-policy"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("strict-transport-security"),
            v("strict-transport-security"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-content-type-options"),
            v("x-content-type-options"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-dns-prefetch-control"),
            v("x-dns-prefetch-control"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-download-options"),
            v("x-download-options"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-frame-options"),
            v("x-frame-options"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-permitted-cross-domain-policies"),
            v("x-permitted-cross-domain-policies"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            h("x-xss-protection"),
            v("x-xss-protection"),
        ))
        .service(handler());

    assert_eq!(once(&mut ours, &uri), 12);
    assert_eq!(once(&mut theirs, &uri), 12);

    let mut g = c.benchmark_group("secure_headers/static");
    g.bench_function("tower_shield", |b| {
        b.iter(|| black_box(once(&mut ours, black_box(&uri))))
    });
    g.bench_function("tower_http", |b| {
        b.iter(|| black_box(once(&mut theirs, black_box(&uri))))
    });
    g.finish();
}

fn nonce_case(c: &mut Criterion) {
    let uri: Uri = "https://api.example.com/".parse().unwrap();
    let layer = SecureHeaders::builder()
        .csp(Csp::recommended().nonce("script-src").nonce("style-src"))
        .build()
        .unwrap();
    let mut ours = layer.layer(handler());
    assert_eq!(once(&mut ours, &uri), 12);
    let mut g = c.benchmark_group("secure_headers/nonce");
    g.bench_function("tower_shield", |b| {
        b.iter(|| black_box(once(&mut ours, black_box(&uri))))
    });
    g.finish();
}

criterion_group!(benches, static_case, nonce_case);
criterion_main!(benches);
