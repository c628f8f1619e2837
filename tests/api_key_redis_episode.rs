//! One log record per degraded episode of the lockout's Redis store, however many steps of
//! attempts degrade, and still one auth event per attempt.
//!
//! In a test binary of its own: security events go through one process-wide flood coalescer,
//! which other tests emitting the same events in parallel would otherwise share.
#![cfg(all(feature = "api-key", feature = "redis"))]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::api_key::{ApiKey, KeyPrefix, MemoryKeyStore, RequireApiKey};
use tower_shield::config::StoreFailurePolicy;

#[test]
fn a_degraded_episode_is_logged_once() {
    let ((), events) = common::capture_async(async {
        let good = ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap();
        let store = common::dead_redis(Duration::from_millis(300));
        let layer = RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([good.sha256()]),
        )
        .lockout(3, Duration::from_secs(60))
        .limiter_store(std::sync::Arc::new(
            store.with_failure_policy(StoreFailurePolicy::Local),
        ))
        .build()
        .unwrap();
        let app = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        for secret in ["ech_wrong", good.expose_secret(), "ech_wrong"] {
            let mut req = Request::get("/x")
                .header(header::AUTHORIZATION, format!("Bearer {secret}"))
                .body(String::new())
                .unwrap();
            req.extensions_mut()
                .insert("192.0.2.31:1".parse::<SocketAddr>().unwrap());
            let res = app.clone().oneshot(req).await.unwrap();
            assert_ne!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        // two steps per failure (the lock check, the count), one per success
        assert_eq!(layer.lockout().unwrap().store().degraded_decisions(), 5);
    });
    let degraded = common::named(&events, "rate_limit_store_degraded");
    assert_eq!(degraded.len(), 1, "{events:#?}");
    assert_eq!(degraded[0].field("on_failure"), Some("local"));
    assert!(
        degraded[0]
            .field("reason")
            // the store logs its episode, whichever layer asked
            .is_some_and(|r| r.starts_with("the Redis store")),
        "{degraded:#?}"
    );
    assert_eq!(
        common::named(&events, "auth_attempt").len(),
        3,
        "{events:#?}"
    );
}
