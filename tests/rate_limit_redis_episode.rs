//! One log record per degraded episode of the Redis store, however many decisions degrade.
//!
//! In a test binary of its own: security events go through one process-wide flood coalescer,
//! which other tests emitting the same event in parallel would otherwise share.
#![cfg(feature = "redis")]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::config::StoreFailurePolicy;
use tower_shield::limiter::Quota;
use tower_shield::rate_limit::{Policy, RateLimit, Scope};

#[test]
fn a_degraded_episode_is_logged_once() {
    let ((), events) = common::capture_async(async {
        let store = common::dead_redis(Duration::from_millis(500));
        let layer = RateLimit::builder()
            .policy(Policy::new(
                "ip",
                Quota::per_minute(2).unwrap(),
                Scope::ip(),
            ))
            .store(std::sync::Arc::new(
                store.with_failure_policy(StoreFailurePolicy::FailOpen),
            ))
            .build()
            .unwrap();
        let app = ServiceBuilder::new()
            .layer(layer.clone())
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new("ok".to_string()))
            }));
        for _ in 0..5 {
            let mut req = Request::get("/x").body(String::new()).unwrap();
            req.extensions_mut()
                .insert("192.0.2.31:1".parse::<SocketAddr>().unwrap());
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200);
        }
        assert_eq!(layer.store().degraded_decisions(), 5);
    });
    let degraded = common::named(&events, "rate_limit_store_degraded");
    assert_eq!(degraded.len(), 1, "{events:#?}");
}
