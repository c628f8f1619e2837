//! The SecurityLog layer against tower-http 0.7's `TraceLayer` configured to record the same
//! request fields (method, path, request id, user agent, client ip, device-id hash) in an
//! INFO span and an INFO completion event with status and latency, around the same trivial
//! `service_fn`, in one run. Ids: `security_log/<case>/{tower_shield,tower_http}`.
//!
//! Cases: `subscriber_off` (no subscriber at all: what a request costs when logs are off) and
//! `subscriber_on` (a `tracing_subscriber` JSON formatter writing to `io::sink()`, set per
//! benchmark with a scoped default dispatcher), each for a request without and with a valid
//! incoming `X-Request-Id`.
//!
//! Our side does more: it also escapes the user agent and path, validates the device id
//! before hashing it, echoes the request id on the response, puts it in the request
//! extensions, and checks the response for an authentication outcome. tower-http's side
//! generates a request id only when the span is on and never echoes it (tower-http's own
//! request-id layers need the `uuid` crate).
//!
//! `cargo bench --bench security_log -- --warm-up-time 1 --measurement-time 3 --noplot`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::USER_AGENT;
use http::{Request, Response};
use tower::{Layer, Service, service_fn};
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_shield::client_ip::{ClientIpStrategy, PeerAddr};
use tower_shield::security_log::{RequestId, SecurityLog, subject_hash};
use tracing::Level;

type Body = http_body_util::Empty<bytes::Bytes>;

fn handler()
-> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = impl Future>
+ Clone {
    service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::new())) })
}

fn request(with_id: bool) -> Request<Body> {
    let mut req = Request::get("/search?q=jazz&page=2")
        .header(USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) EchoTuner/1.4")
        .header("x-device-id", "device_0123456789")
        .extension(PeerAddr("203.0.113.7:4711".parse::<SocketAddr>().unwrap()))
        .body(Body::new())
        .unwrap();
    if with_id {
        req.headers_mut()
            .insert("x-request-id", "edge-4bf92f3577b34da6".parse().unwrap());
    }
    req
}

/// One request through `svc`, polled to completion; returns the header count.
fn once<S, B>(svc: &mut S, req: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let _ = svc.poll_ready(&mut cx);
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) {
            return res.headers().len();
        }
    }
}

/// A JSON formatter writing to `writer`, for one thread's scoped default.
fn json_dispatch<W>(writer: W) -> tracing::Dispatch
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .finish(),
    )
}

/// Collects what a formatter writes, to check both sides log and to show how much.
#[derive(Clone, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Collect {
    type Writer = Collect;
    fn make_writer(&'a self) -> Collect {
        self.clone()
    }
}

/// One request through `svc` under a collecting JSON formatter: what it logs.
fn logged<S, B>(svc: &mut S, with_id: bool) -> String
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    let out = Collect::default();
    tracing::dispatcher::with_default(&json_dispatch(out.clone()), || {
        once(svc, request(with_id));
    });
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

fn cases(c: &mut Criterion) {
    let strategy = ClientIpStrategy::peer();
    let mut ours = SecurityLog::builder()
        .client_ip(strategy.clone())
        .build()
        .unwrap()
        .layer(handler());
    let theirs_strategy = strategy.clone();
    let subjects = tower_shield::limiter::KeyHasher::random();
    let mut theirs = TraceLayer::new_for_http()
        .make_span_with(move |req: &Request<Body>| {
            tracing::info_span!(
                "request",
                request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(RequestId::parse)
                    .unwrap_or_else(RequestId::generate)
                    .as_str(),
                method = %req.method(),
                path = req.uri().path(),
                user_agent = ?req.headers().get(USER_AGENT),
                client_ip = ?theirs_strategy.resolve_request(req).ok(),
                device_hash = ?req
                    .headers()
                    .get("x-device-id")
                    .map(|v| subject_hash(&subjects, v.as_bytes())),
            )
        })
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .layer(handler());

    // Both sides log a span and a completion event per request.
    for (name, log) in [
        ("tower_shield", logged(&mut ours, false)),
        ("tower_http", logged(&mut theirs, false)),
    ] {
        assert_eq!(
            log.lines().count(),
            1,
            "{name} logs one completion line:\n{log}"
        );
        eprintln!("{name} logs {} bytes per request:\n{log}", log.len());
    }

    for subscriber in ["subscriber_off", "subscriber_on"] {
        // Created only now, so the `off` cases run with no subscriber registered at all.
        let dispatch = (subscriber == "subscriber_on").then(|| json_dispatch(std::io::sink));
        for with_id in [false, true] {
            let case = match with_id {
                false => subscriber.to_owned(),
                true => format!("{subscriber}_incoming_id"),
            };
            let mut group = c.benchmark_group(format!("security_log/{case}"));
            group.bench_function("tower_shield", |b| {
                let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
                b.iter_batched(
                    || request(with_id),
                    |req| black_box(once(&mut ours, req)),
                    criterion::BatchSize::SmallInput,
                )
            });
            group.bench_function("tower_http", |b| {
                let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
                b.iter_batched(
                    || request(with_id),
                    |req| black_box(once(&mut theirs, req)),
                    criterion::BatchSize::SmallInput,
                )
            });
            group.finish();
        }
    }
}

criterion_group!(benches, cases);
criterion_main!(benches);
