//! The RateLimit layer on a `RedisStore` against a real `redis-server` on 127.0.0.1:6379 (CI
//! starts one). These tests fail, never skip, when Redis is not there. Each test uses its own
//! key prefix; the failure-policy tests use a Redis that is not there (port 1).
#![cfg(feature = "redis")]

use std::convert::Infallible;
use std::future::Ready;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service, service_fn};
use tower_shield::config::StoreFailurePolicy;
use tower_shield::limiter::{Key, LimiterStore, Quota, RedisStore};
use tower_shield::problem::ShieldBody;
use tower_shield::rate_limit::{Policy, RateLimit, RateLimitBuilder, RateLimitLayer, Scope};

mod common;
use common::unique_prefix as prefix;
use common::{body_bytes, body_json, req, send};

const URL: &str = common::REDIS_URL;
const DEAD: &str = "redis://127.0.0.1:1/";
/// What every instance would read from `SECRET_KEY`.
const SECRET: &[u8] = b"the secret every instance of these tests shares";

type App = tower::util::BoxCloneService<Request<String>, Response<ShieldBody<String>>, Infallible>;

fn store(url: &str, prefix: &str) -> RedisStore {
    // One secret for every instance, as the reference server does with `SECRET_KEY`.
    RedisStore::builder(url)
        .secret(&tower_shield::SecretKey::new(SECRET).unwrap())
        .key_prefix(prefix)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// 2 per 60 s per client IP on every route, and 3 per 60 s per device on `/generate`.
fn policies<St: LimiterStore>(builder: RateLimitBuilder<St>) -> RateLimitBuilder<St> {
    builder
        .policy(Policy::new(
            "ip",
            Quota::per(2, Duration::from_secs(60)).unwrap(),
            Scope::ip(),
        ))
        .policy(
            Policy::new(
                "generate",
                Quota::per(3, Duration::from_secs(60)).unwrap(),
                Scope::device(),
            )
            .on(Method::POST, "/generate"),
        )
}

fn redis_layer(store: RedisStore, on_failure: StoreFailurePolicy) -> RateLimitLayer<RedisStore> {
    policies(RateLimit::builder())
        .store(Arc::new(store.with_failure_policy(on_failure)))
        .build()
        .unwrap()
}

/// The handler every test wraps, as a type that can be named.
type Handler = fn(Request<String>) -> Ready<Result<Response<String>, Infallible>>;
type Answer = tower::util::ServiceFn<Handler>;

fn ok(_req: Request<String>) -> Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new("ok".to_string())))
}

/// `layer` (an in-memory or a Redis one) around a service that answers "ok".
fn wrap<L>(layer: L) -> App
where
    L: Layer<Answer>,
    L::Service: Service<Request<String>, Response = Response<ShieldBody<String>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    <L::Service as Service<Request<String>>>::Future: Send + 'static,
{
    tower::util::BoxCloneService::new(layer.layer(service_fn(ok as Handler)))
}

/// [`req`] with an `X-Device-ID` when `device` is given.
fn device_req(method: Method, path: &str, peer: &str, device: Option<&str>) -> Request<String> {
    match device {
        Some(id) => req(method, path, peer, &[("x-device-id", id)]),
        None => req(method, path, peer, &[]),
    }
}

#[tokio::test]
async fn two_layers_with_two_stores_share_one_limit() {
    let prefix = prefix("shared");
    // Two "instances": separate stores (connections, breakers, denial caches) and layers.
    let (a_store, b_store) = (store(URL, &prefix), store(URL, &prefix));
    let a = wrap(redis_layer(a_store.clone(), StoreFailurePolicy::FailClosed));
    let b = wrap(redis_layer(b_store.clone(), StoreFailurePolicy::FailClosed));

    // The per-IP limit (2): one request through each instance, then both refuse.
    let ip = "192.0.2.10:1000";
    assert_eq!(
        send(&a, device_req(Method::GET, "/x", ip, None))
            .await
            .status(),
        200
    );
    let second = send(&b, device_req(Method::GET, "/x", ip, None)).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["ratelimit"], "\"ip\";r=0;t=30");
    for app in [&a, &b] {
        let refused = send(app, device_req(Method::GET, "/x", ip, None)).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "30");
    }

    // The per-device limit (3), keyed on a hashed device id: one device from three addresses
    // through both instances is still one budget.
    let device = Some("device-shared-1");
    let peers = ["198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1"];
    for (i, peer) in peers.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let res = send(app, device_req(Method::POST, "/generate", peer, device)).await;
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
    }
    let res = send(
        &b,
        device_req(Method::POST, "/generate", "198.51.100.4:1", device),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["ratelimit-policy"], "\"generate\";q=3;w=60");

    assert!(a_store.redis_calls() > 0 && b_store.redis_calls() > 0);
    assert_eq!(a_store.degraded_calls() + b_store.degraded_calls(), 0);
}

#[tokio::test]
async fn fail_closed_answers_503_with_retry_after_while_redis_is_down() {
    let layer = redis_layer(
        store(DEAD, &prefix("closed")),
        StoreFailurePolicy::FailClosed,
    );
    let app = wrap(layer.clone());
    for _ in 0..3 {
        let res = send(&app, device_req(Method::GET, "/x", "192.0.2.20:1", None)).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        // the breaker's cool-down (default 1 s)
        assert_eq!(res.headers()["retry-after"], "1");
        assert!(!res.headers().contains_key("ratelimit"));
        assert!(!res.headers().contains_key("access-control-allow-origin"));
        let json = body_json(res).await;
        assert_eq!(json["status"], 503);
    }
    assert_eq!(layer.store().degraded_decisions(), 3);
    // Not limited at all (exempt, no policy): Redis is not asked, nothing is degraded.
    let exempt = policies(RateLimit::builder())
        .exempt(Method::GET, "/health")
        .store(Arc::new(
            store(DEAD, &prefix("closed")).with_failure_policy(StoreFailurePolicy::FailClosed),
        ))
        .build()
        .unwrap();
    let app = wrap(exempt.clone());
    let res = send(
        &app,
        device_req(Method::GET, "/health", "192.0.2.20:1", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(exempt.store().degraded_decisions(), 0);
}

#[tokio::test]
async fn fail_open_admits_without_rate_limit_headers_while_redis_is_down() {
    let layer = redis_layer(store(DEAD, &prefix("open")), StoreFailurePolicy::FailOpen);
    let app = wrap(layer.clone());
    // over the limit of 2, all admitted
    for _ in 0..5 {
        let res = send(&app, device_req(Method::GET, "/x", "192.0.2.30:1", None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!res.headers().contains_key("ratelimit"));
        assert!(!res.headers().contains_key("ratelimit-policy"));
        assert_eq!(body_bytes(res).await, "ok");
    }
    assert_eq!(layer.store().degraded_decisions(), 5);
}

#[tokio::test]
async fn local_decides_with_the_in_memory_store_while_redis_is_down() {
    let layer = redis_layer(store(DEAD, &prefix("local")), StoreFailurePolicy::Local);
    let app = wrap(layer.clone());
    let ip = "192.0.2.40:1";
    for left in [1, 0] {
        let res = send(&app, device_req(Method::GET, "/x", ip, None)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit"], format!("\"ip\";r={left};t=30"));
    }
    let refused = send(&app, device_req(Method::GET, "/x", ip, None)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    // another client has its own local budget
    let other = send(&app, device_req(Method::GET, "/x", "192.0.2.41:1", None)).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(layer.store().degraded_decisions(), 4);
    assert!(!layer.store().fallback().is_empty());
}

#[tokio::test]
async fn headers_and_429_body_are_those_of_the_memory_path() {
    let redis = wrap(redis_layer(
        store(URL, &prefix("same")),
        StoreFailurePolicy::FailClosed,
    ));
    let memory = wrap(policies(RateLimit::builder()).build().unwrap());
    let device = Some("device-same-1");
    // 2 admissions and 2 refusals of the per-IP limit, on a route with two policies
    for i in 0..4 {
        let r = send(
            &redis,
            device_req(Method::POST, "/generate", "192.0.2.50:1", device),
        )
        .await;
        let m = send(
            &memory,
            device_req(Method::POST, "/generate", "192.0.2.50:1", device),
        )
        .await;
        assert_eq!(r.status(), m.status(), "request {i}");
        assert_eq!(r.headers(), m.headers(), "request {i}");
        assert_eq!(body_bytes(r).await, body_bytes(m).await, "request {i}");
    }
}

/// The hash tags (the 32 hex digits between braces) of the keys Redis holds under `prefix`.
async fn tags_under(prefix: &str) -> Vec<String> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut common::raw_connection().await)
        .await
        .unwrap();
    keys.iter()
        .map(|k| k[k.find('{').unwrap() + 1..k.find('}').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn each_client_of_a_single_identity_layer_has_a_hash_tag_of_its_own() {
    let fixed = format!("{:032x}", Key::GLOBAL.to_u128());
    let per_minute = |n| Quota::per(n, Duration::from_secs(60)).unwrap();

    // Two address policies: a client's two keys share its tag, and clients differ.
    let by_address = prefix("tags-address");
    let layer = RateLimit::builder()
        .policy(Policy::new("ip", per_minute(10), Scope::ip()))
        .policy(Policy::new("auth", per_minute(5), Scope::ip()).on(Method::POST, "/auth"))
        .store(Arc::new(
            store(URL, &by_address).with_failure_policy(StoreFailurePolicy::FailClosed),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    for peer in ["192.0.2.1:1", "192.0.2.2:1"] {
        let res = send(&app, device_req(Method::POST, "/auth", peer, None)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let mut tags = tags_under(&by_address).await;
    assert_eq!(tags.len(), 4, "two policies, two clients: {tags:?}");
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 2, "one tag per client: {tags:?}");
    assert!(!tags.contains(&fixed));

    // An address limit and a device limit on one request: every key under the fixed tag.
    let mixed = prefix("tags-mixed");
    let app = wrap(redis_layer(
        store(URL, &mixed),
        StoreFailurePolicy::FailClosed,
    ));
    for (peer, device) in [("192.0.2.1:1", "tag-d-1"), ("192.0.2.2:1", "tag-d-2")] {
        let res = send(
            &app,
            device_req(Method::POST, "/generate", peer, Some(device)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let tags = tags_under(&mixed).await;
    assert_eq!(tags.len(), 4, "two policies, two clients: {tags:?}");
    assert!(tags.iter().all(|t| *t == fixed), "{tags:?}");
}
