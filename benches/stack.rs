//! The RateLimit layer against tower_governor 0.8 (with its headers on), each wrapping the same
//! trivial service, in one run. Ids: `stack/<case>/{tower_shield,tower_governor,bare}`; `bare`
//! is the service alone, so each layer's added time is its figure minus `bare`.
//!
//! `cargo bench --bench stack -- --warm-up-time 1 --measurement-time 3 --noplot`, then
//! `python3 benches/ratios.py stack_`.
//!
//! Instruction counts: with `STACK_CALLGRIND=<case>:<service>:<n>` set (case `allow` or `deny`;
//! service `tower_shield`, `tower_governor`, `bare`, `headers_only` or `refusal_only`), the
//! binary skips criterion and sends `n` requests through that service inside `measure`, for
//! `valgrind --tool=callgrind --toggle-collect='*stack::measure*'` to count (the difference
//! between two values of `n`, divided, is the cost of one request; see BENCHMARKS.md).
//! `headers_only` is no limiter at all: the trivial service plus the two draft-10 fields, one
//! of them rendered per request, which is what any layer that sends them pays; `refusal_only`
//! is the 429 a flood gets, made from prepared fields and nothing else.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{Criterion, criterion_group};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_shield::limiter::Quota;
use tower_shield::rate_limit::{Policy, RateLimit, Scope};

mod common;
use common::now;

/// A request as axum hands it over: with the peer address both as a plain `SocketAddr` (which
/// tower-shield reads) and as `ConnectInfo` (which tower_governor's peer extractor reads).
fn request() -> Request<Body> {
    let peer = SocketAddr::from(([192, 0, 2, 7], 40_000));
    let mut req = Request::get("/playlist/generate")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(peer);
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn bench_case<S, B>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    mut svc: S,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    g.bench_function(id, |b| {
        b.iter(|| {
            now(std::future::poll_fn(|cx| svc.poll_ready(cx))).unwrap();
            black_box(now(svc.call(request())).unwrap().status())
        })
    });
}

fn inner() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) })
}

/// The trivial service with `RateLimit-Policy` and a `RateLimit` rendered per request, as a
/// client spending its quota gets them, and nothing else: the floor of the allow path.
fn headers_only() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    const POLICY: http::HeaderName = http::HeaderName::from_static("ratelimit-policy");
    const RATE_LIMIT: http::HeaderName = http::HeaderName::from_static("ratelimit");
    const POLICY_VALUE: http::HeaderValue =
        http::HeaderValue::from_static("\"ip\";q=4294967295;w=1");
    let remaining = Arc::new(AtomicU32::new(u32::MAX));
    inner().map_response(move |mut response: Response<Body>| {
        let r = remaining.fetch_sub(1, Ordering::Relaxed);
        let mut digits = itoa::Buffer::new();
        let (mut value, mut len) = ([0u8; 32], 0);
        for part in [&b"\"ip\";r="[..], digits.format(r).as_bytes(), b";t=1"] {
            value[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        let headers = response.headers_mut();
        headers.insert(POLICY, POLICY_VALUE);
        headers.insert(
            RATE_LIMIT,
            http::HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(&value[..len]))
                .unwrap(),
        );
        response
    })
}

/// A 429 made the way the layer makes a flood's, and nothing else: the prepared five fields
/// (type, `no-store`, `RateLimit-Policy`, `RateLimit`, `Retry-After`) cloned, the problem
/// document from static memory. The floor of the deny path, as `headers_only` is of the allow
/// path.
fn refusal_only() -> impl Service<
    Request<Body>,
    Response = Response<http_body_util::Full<bytes::Bytes>>,
    Error = Infallible,
> {
    let mut prepared = http::HeaderMap::with_capacity(8);
    for (name, value) in [
        ("content-type", "application/problem+json"),
        ("cache-control", "no-store"),
        ("ratelimit-policy", "\"ip\";q=1;w=3600"),
        ("ratelimit", "\"ip\";r=0;t=3600"),
        ("retry-after", "3600"),
    ] {
        prepared.insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_static(value),
        );
    }
    service_fn(move |_req: Request<Body>| {
        let mut response = Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","status":429}"#,
        )));
        *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        *response.headers_mut() = prepared.clone();
        std::future::ready(Ok::<_, Infallible>(response))
    })
}

type GovernorConfig = tower_governor::governor::GovernorConfig<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::StateInformationMiddleware,
>;

/// allow: a quota so large nothing is refused; deny: 1 per hour, spent before measuring.
fn quotas(case: &str) -> (Quota, GovernorConfig) {
    if case == "allow" {
        (
            Quota::per_second(u32::MAX).unwrap(),
            GovernorConfigBuilder::default()
                .per_nanosecond(1)
                .burst_size(u32::MAX)
                .use_headers()
                .finish()
                .unwrap(),
        )
    } else {
        (
            Quota::per_hour(1).unwrap(),
            GovernorConfigBuilder::default()
                .per_second(3600)
                .burst_size(1)
                .use_headers()
                .finish()
                .unwrap(),
        )
    }
}

fn cases(c: &mut Criterion) {
    for case in ["allow", "deny"] {
        let (ours, theirs) = quotas(case);
        let mut g = c.benchmark_group(format!("stack/{case}"));
        g.measurement_time(Duration::from_secs(3));
        let shield = RateLimit::builder()
            .policy(Policy::new("ip", ours, Scope::ip()))
            .build()
            .unwrap()
            .layer(inner());
        let governor = GovernorLayer::new(theirs).layer(inner());
        // Both layers must really be limiting, with their headers, before they are timed.
        let (mut s, mut t) = (shield.clone(), governor.clone());
        let (ours, theirs) = (
            now(s.call(request())).unwrap(),
            now(t.call(request())).unwrap(),
        );
        assert!(
            ours.headers().contains_key("ratelimit"),
            "{:?}",
            ours.headers()
        );
        assert!(
            theirs.headers().contains_key("x-ratelimit-limit"),
            "{} {:?}",
            theirs.status(),
            theirs.headers()
        );
        if case == "deny" {
            let (ours, theirs) = (
                now(s.call(request())).unwrap(),
                now(t.call(request())).unwrap(),
            );
            assert_eq!(
                (ours.status().as_u16(), theirs.status().as_u16()),
                (429, 429)
            );
        }
        bench_case(&mut g, "tower_shield", shield);
        bench_case(&mut g, "tower_governor", governor);
        bench_case(&mut g, "bare", inner());
        g.finish();
    }
}

/// The layer on a route none of its policies covers: what every unlimited request pays.
fn unlimited_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack/unlimited_route");
    let policy = Policy::new("ip", Quota::per_minute(60).unwrap(), Scope::ip())
        .on(http::Method::POST, "/auth/init");
    let shield = RateLimit::builder()
        .policy(policy)
        .build()
        .unwrap()
        .layer(inner());
    bench_case(&mut g, "tower_shield", shield);
    bench_case(&mut g, "bare", inner());
    g.finish();
}

/// `n` requests through `svc`, the only code callgrind counts in `STACK_CALLGRIND` mode.
#[inline(never)]
fn measure<S, B>(mut svc: S, n: u64)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        now(std::future::poll_fn(|cx| svc.poll_ready(cx))).unwrap();
        black_box(now(svc.call(request())).unwrap().status());
    }
}

fn callgrind(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [case, service, n] = parts[..] else {
        panic!("STACK_CALLGRIND=<allow|deny>:<tower_shield|tower_governor|bare>:<n>");
    };
    let n: u64 = n.parse().expect("a number of requests");
    let (ours, theirs) = quotas(case);
    match service {
        "tower_shield" => measure(
            RateLimit::builder()
                .policy(Policy::new("ip", ours, Scope::ip()))
                .build()
                .unwrap()
                .layer(inner()),
            n,
        ),
        "tower_governor" => measure(GovernorLayer::new(theirs).layer(inner()), n),
        "bare" => measure(inner(), n),
        "headers_only" => measure(headers_only(), n),
        "refusal_only" => measure(refusal_only(), n),
        other => panic!("unknown service {other}"),
    }
}

criterion_group!(benches, cases, unlimited_route);

fn main() {
    if let Ok(spec) = std::env::var("STACK_CALLGRIND") {
        callgrind(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
