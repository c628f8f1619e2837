//! The allow path of every layer, and of the whole [`Shield`], makes no heap allocation of its
//! own (DESIGN principle 4), except for what it hands on, counted exactly here:
//!
//! - the security log's request id: its value (one allocation, shared by the request's
//!   extension and the response's `X-Request-Id`) and its slot in the request's extensions
//!   (http boxes every extension);
//! - the API key's `Authenticated` extension (its slot);
//! - the rate limit's `RateLimit` value, for a client spending its quota: its numbers change
//!   with every request and `http::HeaderValue` has no inline storage, so it is rendered on
//!   the stack into the one allocation that becomes the header. A client below its quota
//!   sees a value that repeats, rendered once and then shared.
//!
//! Growing a response's header map for the layers' fields is the response's allocation, not a
//! layer's: the handler here leaves room for all of them. When a handler leaves none, the
//! shield seeds the map with the security headers instead of growing it, for one allocation
//! more (counted in the last test).
//!
//! A counting global allocator (this binary only) counts the allocations made on the current
//! thread while one request goes through a service, polled by hand with a no-op waker. The
//! same request through the bare inner service is the baseline, so what remains is the
//! layer's own. Each service is warmed up first: a key's first request may grow the store's
//! table, and a rendered header value is cached for the requests that follow.
#![cfg(feature = "shield")]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};
use tower_shield::api_key::{ApiKey, KeyPrefix, KeyRecord, MemoryKeyStore, RequireApiKey};
use tower_shield::cors::Cors;
use tower_shield::limiter::{ManualClock, MemoryStore, Quota};
use tower_shield::rate_limit::{Policy, RateLimit, Scope};
use tower_shield::secure_headers::SecureHeaders;
use tower_shield::security_log::SecurityLog;

mod common;
use common::alloc::response_and_allocations;
use common::config;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

type Body = Full<Bytes>;

/// A slot in a request's extensions.
const EXTENSION: usize = 1;
/// The request id's value and its extension slot.
const REQUEST_ID: usize = 1 + EXTENSION;
/// The security log's: its request id, and the client context it resolves for every layer
/// inside (one slot: the rate limit, CORS and the security headers then resolve nothing).
const SECURITY_LOG: usize = REQUEST_ID + EXTENSION;
/// The `RateLimit` header value, when its numbers are new.
const RATE_LIMIT_VALUE: usize = 1;

const PEER: &str = "203.0.113.9:50000";
const ORIGIN: &str = "https://app.example";

/// The handler: a response whose header map already has room for every header the layers
/// add, so that growing the map (the response's allocation, not a layer's) is not counted.
fn handler()
-> impl Service<Request<Body>, Response = Response<String>, Error = Infallible, Future = impl Future>
+ Clone {
    service_fn(|_req: Request<Body>| async {
        let mut res = Response::new(String::new());
        *res.headers_mut() = HeaderMap::with_capacity(64);
        Ok::<_, Infallible>(res)
    })
}

/// `GET /search?q=jazz` from [`PEER`], with a device id and an allowed `Origin`.
fn request(extra: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri("/search?q=jazz")
        .header("x-device-id", "device-1")
        .header("origin", ORIGIN);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let mut req = req.body(Body::default()).unwrap();
    req.extensions_mut()
        .insert(PEER.parse::<SocketAddr>().unwrap());
    req
}

/// Allocations while `req` goes through `svc`, which must let it through.
fn allocations<S, B>(svc: &mut S, req: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    let (res, n) = response_and_allocations(svc, req);
    assert!(res.status().is_success(), "{}", res.status());
    n
}

/// What `wrapped` allocates on the allow path beyond the bare handler, after a warm-up.
fn added<S, B>(mut wrapped: S, extra: &[(&str, &str)]) -> usize
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    let mut bare = handler();
    for _ in 0..3 {
        allocations(&mut wrapped, request(extra));
        allocations(&mut bare, request(extra));
    }
    let base = allocations(&mut bare, request(extra));
    let ours = allocations(&mut wrapped, request(extra));
    ours.saturating_sub(base)
}

fn generous() -> Quota {
    Quota::per(1_000_000_000, Duration::from_secs(60)).unwrap()
}

#[test]
fn security_log() {
    let layer = SecurityLog::builder().build().unwrap();
    assert_eq!(added(layer.layer(handler()), &[]), SECURITY_LOG);
}

#[test]
fn secure_headers() {
    let layer = SecureHeaders::builder().build().unwrap();
    assert_eq!(added(layer.layer(handler()), &[]), 0);
}

#[test]
fn cors() {
    let layer = Cors::builder()
        .allow_origins([ORIGIN])
        .allow_credentials(true)
        .build()
        .unwrap();
    assert_eq!(added(layer.layer(handler()), &[]), 0);
}

#[test]
fn rate_limit_for_a_client_below_its_quota() {
    // Between two requests the client's bucket refills, as it does for every client sending
    // less than its quota: the `RateLimit` value repeats and is shared, not rendered again.
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap());
    let layer = RateLimit::builder()
        .store(store)
        .policy(Policy::new(
            "ip",
            Quota::per_minute(60).unwrap(),
            Scope::ip(),
        ))
        .policy(
            Policy::new("search", Quota::per_minute(100).unwrap(), Scope::session())
                .on(Method::GET, "/search"),
        )
        .build()
        .unwrap();
    let mut wrapped = layer.layer(handler());
    let mut bare = handler();
    let mut own = Vec::new();
    for _ in 0..4 {
        clock.advance(Duration::from_secs(60));
        let base = allocations(&mut bare, request(&[]));
        own.push(allocations(&mut wrapped, request(&[])).saturating_sub(base));
    }
    // the first renders the value; the others share it
    assert_eq!(own, [RATE_LIMIT_VALUE, 0, 0, 0]);
}

#[test]
fn rate_limit_for_a_client_spending_its_quota() {
    // The clock stands still: every request finds one token fewer, a value never seen before.
    let store = Arc::new(
        MemoryStore::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap(),
    );
    let layer = RateLimit::builder()
        .store(store)
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1000).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    assert_eq!(added(layer.layer(handler()), &[]), RATE_LIMIT_VALUE);
}

#[test]
fn input_sanitizer_without_a_body() {
    let layer = tower_shield::config::echotuner_input_rules()
        .build()
        .unwrap();
    assert_eq!(added(layer.layer(handler()), &[]), 0);
}

#[test]
fn api_key() {
    let key = ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap();
    let keys = MemoryKeyStore::new();
    keys.insert(KeyRecord::new(key.sha256()));
    let layer = RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), keys)
        .build()
        .unwrap();
    let bearer = format!("Bearer {}", key.expose_secret());
    let bearer: &'static str = Box::leak(bearer.into_boxed_str());
    assert_eq!(
        added(layer.layer(handler()), &[("authorization", bearer)]),
        EXTENSION
    );
}

#[test]
fn the_whole_shield() {
    let config = config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", ORIGIN),
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "1000000000"),
    ]);
    let shield = &config
        .shield_builder()
        .map_rate_limit(|limits| {
            limits.policy(
                Policy::new("search", generous(), Scope::session()).on(Method::GET, "/search"),
            )
        })
        .sanitizer(tower_shield::config::echotuner_input_rules())
        .build()
        .unwrap();
    assert!(shield.has_cors() && shield.has_secure_headers() && shield.rate_limit().is_some());
    // The shield's store runs on the real clock: whether the `RateLimit` value repeats
    // depends on whether its tick passed between two requests.
    let own = added(shield.layer(handler()), &[]);
    assert!(
        (SECURITY_LOG..=SECURITY_LOG + RATE_LIMIT_VALUE).contains(&own),
        "{own} allocations"
    );
}

/// A handler whose response map has no room to spare (what axum's handlers return: a map
/// holding a content type). It must grow for the layers' fields whatever the shield does; the
/// security-headers layer seeds it with its headers, cloned with their hashes computed, rather
/// than inserting them one by one (`Shared::seed` in `secure_headers/layer.rs`). That costs one allocation more than
/// growing the map once would (the clone's table and entries, then the entries' growth for
/// the response's own fields, against one new table and entries), counted here against the
/// same shield with seeding off (a security header set to override, which seeding cannot do).
#[test]
fn seeding_a_small_response_map_costs_one_allocation_more_than_growing_it() {
    use tower_shield::secure_headers::Merge;
    let small = || {
        service_fn(|_req: Request<Body>| async {
            let mut res = Response::new(String::new());
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok::<_, Infallible>(res)
        })
    };
    // The rate limit off: whether its `RateLimit` value allocates depends on its clock's tick
    // (see `the_whole_shield`), which would blur the comparison.
    let config = config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", ORIGIN),
        ("RATE_LIMIT_ENABLED", "false"),
    ]);
    let count = |seeded: bool| {
        let shield = &config
            .shield_builder()
            .map_secure_headers(|b| {
                if seeded {
                    b
                } else {
                    b.merge("x-frame-options", Merge::Override)
                }
            })
            .build()
            .unwrap();
        let mut svc = shield.layer(small());
        for _ in 0..3 {
            allocations(&mut svc, request(&[]));
        }
        (0..5)
            .map(|_| allocations(&mut svc, request(&[])))
            .min()
            .unwrap_or(0)
    };
    let (seeded, grown) = (count(true), count(false));
    assert_eq!(seeded, grown + 1, "seeded {seeded}, grown {grown}");
}
