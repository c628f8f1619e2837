//! The whole Shield stack against the closest stack a user can assemble today from the anchors
//! of the per-layer benchmarks, around the same trivial service, in one run. Ids:
//! `full_stack/<case>/{tower_shield,anchor,bare}`; `bare` is the service alone, so each stack's
//! added time is its figure minus `bare`.
//!
//! - ours: `config.shield_builder()` from `Config::from_lookup` with CORS on for
//!   `https://app.example` (credentials on, the default), the security headers on, the rate
//!   limit on with a quota that admits every request, and no sanitizer (the anchor has no
//!   equivalent): SecurityLog ▶ SecureHeaders ▶ Cors ▶ RateLimit;
//! - anchor, in the same order: tower-http `TraceLayer::new_for_http()` (default spans), one
//!   `SetResponseHeaderLayer::overriding` per security header ours sends on this request, the
//!   same values, tower-http `CorsLayer` for the same origin with credentials (and our default
//!   methods, mirrored request headers, five exposed headers and max age), `tower_governor`
//!   with `use_headers()` and a quota that admits every request.
//!
//! The request, built afresh per iteration for all three: `GET /playlist/generate` with
//! `Origin: https://app.example` and the peer as axum's `ConnectInfo<SocketAddr>`, which is
//! what `axum::serve` with connect info inserts and the only peer extension tower_governor's
//! default key extractor reads (ours reads it too, after its own `PeerAddr` and `SocketAddr`).
//! The URI has no scheme, as behind a TLS-terminating proxy, so ours sends no HSTS and the
//! anchor gets one header layer per remaining header (eleven).
//!
//! Cases:
//! - `logs_off`: no `tracing` subscriber at all, the state of a process whose logs are off.
//!   Both stacks then skip their spans at the same global max-level check, so neither is
//!   charged for formatting output it would not write.
//! - `spans_on`: a `tracing_subscriber::registry()` without any layer as the thread's default
//!   for both: every span either stack asks for is created and entered (ours: one INFO
//!   request span; TraceLayer: its DEBUG span and DEBUG request/response events), but nothing
//!   is written, so the cost compared is the stacks' own rather than a formatter's.
//!
//! Both stacks are driven the same way: `ServiceExt::ready` then `call`, each future polled
//! once with a no-op waker (every service here answers at once); no runtime.
//!
//! `cargo bench --bench full_stack -- --warm-up-time 1 --measurement-time 3 --noplot`, then
//! `python3 benches/ratios.py full_stack_`.
//!
//! Instruction counts: with `FULL_STACK_CALLGRIND=<stack>:<iterations>` set (append
//! `:spans_on` for the registry subscriber), the binary skips criterion and sends that many
//! requests through one stack inside `measure`, for
//! `valgrind --tool=callgrind --toggle-collect='*full_stack::measure*'` to count (see
//! BENCHMARKS.md). Stacks: `bare`, `tower_shield`, `anchor`, and each layer alone around the
//! same service: `ours_log`, `ours_headers`, `ours_cors`, `ours_rate_limit`, `anchor_trace`,
//! `anchor_headers`, `anchor_cors`, `anchor_governor`.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use governor::middleware::StateInformationMiddleware;
use http::header::ORIGIN;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};
use tower_http::trace::TraceLayer;
use tower_shield::secure_headers::SecureHeaders;

use tower_shield::Config;

mod common;
use common::now;

const APP: &str = "https://app.example";

fn request() -> Request<Body> {
    let peer = SocketAddr::from(([192, 0, 2, 7], 40_000));
    let mut req = Request::get("/playlist/generate")
        .header(ORIGIN, HeaderValue::from_static(APP))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

/// One request through `svc`, as a server would send it: wait until ready, then call.
fn once<S, B>(svc: &mut S) -> Response<B>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let ready = now(svc.ready()).unwrap();
    now(ready.call(request())).unwrap()
}

fn inner() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::from("ok"))) })
}

fn config() -> Config {
    Config::from_lookup(|name| {
        let value = match name {
            "CORS_ENABLED" => "true",
            "ALLOWED_ORIGINS" => APP,
            "SECURE_HEADERS" => "true",
            "RATE_LIMIT_ENABLED" => "true",
            // u32::MAX per second: the largest quota, so that every iteration is admitted.
            "RATE_LIMIT_REQUESTS_PER_MINUTE" => "4294967295",
            "RATE_LIMIT_WINDOW_SECONDS" => "1",
            _ => return None,
        };
        Some(value.to_string())
    })
    .unwrap()
}

fn shield_layer() -> tower_shield::ShieldLayer {
    let layer = config().shield_builder().build().unwrap();
    assert!(layer.has_secure_headers() && layer.has_cors() && layer.rate_limit().is_some());
    assert!(!layer.has_sanitizer());
    layer
}

/// The security headers ours sends on this request (no HSTS: the URI has no scheme), as the
/// shield builds them: `SecureHeaders::builder()` with the configuration's (no) trusted proxies.
fn security_headers() -> Vec<(HeaderName, HeaderValue)> {
    let layer = SecureHeaders::builder().build().unwrap();
    layer
        .static_headers()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

type SetHeader<S> = SetResponseHeader<S, HeaderValue>;
type Headers<S> = SetHeader<
    SetHeader<
        SetHeader<
            SetHeader<
                SetHeader<SetHeader<SetHeader<SetHeader<SetHeader<SetHeader<SetHeader<S>>>>>>>,
            >,
        >,
    >,
>;

/// Eleven overriding header layers around `svc`, one per header of [`security_headers`].
fn anchor_headers<S>(svc: S) -> Headers<S> {
    let h = security_headers();
    assert_eq!(h.len(), 11, "{h:?}");
    let o = |i: usize| SetResponseHeaderLayer::overriding(h[i].0.clone(), h[i].1.clone());
    ServiceBuilder::new()
        .layer(o(0))
        .layer(o(1))
        .layer(o(2))
        .layer(o(3))
        .layer(o(4))
        .layer(o(5))
        .layer(o(6))
        .layer(o(7))
        .layer(o(8))
        .layer(o(9))
        .layer(o(10))
        .service(svc)
}

/// What `Cors::from_config` builds, in tower-http's terms: the one origin with credentials,
/// our default methods, any request header (mirrored, as credentials require), our five
/// default exposed headers with tower_governor's rate headers in place of ours, 600 s.
fn anchor_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::exact(HeaderValue::from_static(APP)))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-total-count"),
            HeaderName::from_static("x-page-count"),
            HeaderName::from_static("retry-after"),
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The largest tower_governor quota (a cell every nanosecond, a burst of u32::MAX): like ours,
/// it admits every iteration. Governor cannot express u32::MAX per second exactly.
fn anchor_governor() -> GovernorLayer<PeerIpKeyExtractor, StateInformationMiddleware, Body> {
    GovernorLayer::new(
        GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(u32::MAX)
            .use_headers()
            .finish()
            .unwrap(),
    )
}

fn ours<S>(svc: S) -> tower_shield::shield::ShieldService<S> {
    shield_layer().layer(svc)
}

fn anchor<S>(
    svc: S,
) -> impl Service<Request<Body>, Response = Response<impl Sized>, Error = impl std::fmt::Debug> + Clone
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let svc = anchor_cors().layer(anchor_governor().layer(svc));
    TraceLayer::new_for_http().layer(anchor_headers(svc))
}

/// The response's headers, for the checks made before timing.
fn headers<S, B>(mut svc: S) -> http::HeaderMap
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let res = once(&mut svc);
    assert_eq!(res.status(), 200, "{:?}", res.headers());
    res.headers().clone()
}

/// Both stacks really do their work on this request before they are timed.
fn check() {
    let (a, b) = (headers(ours(inner())), headers(anchor(inner())));
    for (name, value) in security_headers() {
        assert_eq!(a.get(&name), Some(&value), "ours: {name}");
        assert_eq!(b.get(&name), Some(&value), "anchor: {name}");
    }
    for h in [&a, &b] {
        assert_eq!(h["access-control-allow-origin"], APP);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(h.contains_key("access-control-expose-headers"));
        assert!(h.contains_key("vary"));
    }
    assert!(a.contains_key("ratelimit") && a.contains_key("ratelimit-policy"));
    assert!(b.contains_key("x-ratelimit-limit") && b.contains_key("x-ratelimit-remaining"));
}

fn bench_case<S, B>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut svc: S)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    g.bench_function(id, |b| b.iter(|| black_box(once(&mut svc).status())));
}

fn group(c: &mut Criterion, case: &str) {
    let mut g = c.benchmark_group(format!("full_stack/{case}"));
    bench_case(&mut g, "tower_shield", ours(inner()));
    bench_case(&mut g, "anchor", anchor(inner()));
    bench_case(&mut g, "bare", inner());
    g.finish();
}

fn benches(c: &mut Criterion) {
    check();
    group(c, "logs_off");
    // Scoped to this thread: the same subscriber for both stacks and the bare service.
    let registry = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::dispatcher::with_default(&registry, || group(c, "spans_on"));
}

/// The counted loop: callgrind's `--toggle-collect` starts and stops counting here.
#[inline(never)]
fn measure<S, B>(mut svc: S, iterations: u64)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..iterations {
        black_box(once(&mut svc).status());
    }
}

fn callgrind(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(stack), Some(n)) = (parts.next(), parts.next()) else {
        panic!("FULL_STACK_CALLGRIND=<stack>:<iterations>[:spans_on]");
    };
    let n: u64 = n.parse().expect("iterations");
    match parts.next() {
        None => run_stack(stack, n),
        Some("spans_on") => {
            let registry = tracing::Dispatch::new(tracing_subscriber::registry());
            tracing::dispatcher::with_default(&registry, || run_stack(stack, n));
        }
        Some(other) => panic!("unknown subscriber {other}"),
    }
}

fn run_stack(stack: &str, n: u64) {
    let config = config();
    match stack {
        "bare" => measure(inner(), n),
        "tower_shield" => measure(ours(inner()), n),
        "anchor" => measure(anchor(inner()), n),
        "ours_log" => measure(
            config
                .security_log_builder()
                .unwrap()
                .build()
                .unwrap()
                .layer(inner()),
            n,
        ),
        "ours_headers" => measure(SecureHeaders::builder().build().unwrap().layer(inner()), n),
        "ours_cors" => measure(
            config
                .cors_builder()
                .unwrap()
                .unwrap()
                .build()
                .unwrap()
                .layer(inner()),
            n,
        ),
        "ours_rate_limit" => measure(
            config
                .rate_limit_builder()
                .unwrap()
                .unwrap()
                .build()
                .unwrap()
                .layer(inner()),
            n,
        ),
        "anchor_trace" => measure(TraceLayer::new_for_http().layer(inner()), n),
        "anchor_headers" => measure(anchor_headers(inner()), n),
        "anchor_cors" => measure(anchor_cors().layer(inner()), n),
        "anchor_governor" => measure(anchor_governor().layer(inner()), n),
        other => panic!("unknown stack {other}"),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("FULL_STACK_CALLGRIND") {
        check();
        callgrind(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
