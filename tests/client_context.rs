//! The client is resolved once per request. Alone in its binary: the count is read from a
//! `tracing` subscriber, and a callsite's interest is shared by every thread of a process.
#![cfg(all(feature = "shield", feature = "api-key"))]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Method, StatusCode};
use tower_shield::sanitize::InputSanitizer;

mod common;
use common::config;

const ORIGIN: &str = "https://app.example";

/// The shield resolves each request's client once, in its outermost layer, for every layer
/// inside (the rate limit, the security headers' HTTPS test, an API key on a route); each of
/// them used alone resolves it itself.
#[test]
fn the_client_is_resolved_once_per_request() {
    use tower_shield::api_key::{ApiKey, KeyHasher, KeyPrefix, MemoryKeyStore};
    let resolutions = |events: &[common::Captured]| {
        events
            .iter()
            .filter(|e| e.target == "tower_shield::client_ip")
            .count()
    };
    let config = config(&[
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", ORIGIN),
    ]);
    let key = ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap();
    let keys = MemoryKeyStore::from_digests([KeyHasher::sha256().digest(&key)]);
    let require_key = config
        .require_api_key_builder(keys)
        .unwrap()
        .build()
        .unwrap();
    let shield = config
        .shield_builder()
        .sanitizer(InputSanitizer::builder())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/admin", get(|| async { "top" }))
        .route_layer(require_key)
        .layer(shield);
    let bearer = format!("Bearer {}", key.expose_secret());
    let req = common::req(
        Method::GET,
        "/admin",
        "10.0.0.2:40000",
        &[
            ("origin", ORIGIN),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("authorization", &bearer),
        ],
    )
    .map(|_| Body::empty());
    let (res, events) = common::capture_async(common::send(&app, req));
    assert_eq!(res.status(), StatusCode::OK);
    // the forwarded scheme was believed from the trusted proxy: HSTS
    assert!(
        res.headers().contains_key("strict-transport-security"),
        "{:?}",
        res.headers()
    );
    assert_eq!(resolutions(&events), 1, "{events:?}");

    // The rate limit alone resolves its client itself.
    let alone = Router::new().route("/", get(|| async { "hello" })).layer(
        config
            .rate_limit_builder()
            .unwrap()
            .unwrap()
            .build()
            .unwrap(),
    );
    let req = common::req(Method::GET, "/", "198.51.100.7:40000", &[]).map(|_| Body::empty());
    let (_, events) = common::capture_async(common::send(&alone, req));
    assert_eq!(resolutions(&events), 1);
}
