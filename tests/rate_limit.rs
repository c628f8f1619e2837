//! Black-box tests of the RateLimit layer through `tower::ServiceExt::oneshot`.
#![cfg(feature = "rate-limit")]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use tower::{ServiceBuilder, service_fn};
use tower_shield::client_ip::ClientIpStrategy;
use tower_shield::limiter::{ManualClock, MemoryStore, Quota};
use tower_shield::rate_limit::{Policy, RateLimit, RateLimitLayer, Scope};

mod common;
use common::{body_bytes, body_json, req, send};

type App = tower::util::BoxCloneService<
    Request<String>,
    Response<tower_shield::problem::ShieldBody<String>>,
    Infallible,
>;

fn wrap(layer: RateLimitLayer<MemoryStore<ManualClock>>) -> App {
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|_req: Request<String>| async {
                Ok::<_, Infallible>(Response::new("ok".to_string()))
            }));
    tower::util::BoxCloneService::new(svc)
}

fn store(clock: &ManualClock) -> Arc<MemoryStore<ManualClock>> {
    Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap())
}

#[tokio::test]
async fn ip_scope_refuses_with_problem_json_headers_and_exact_retry_after() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "auth",
            Quota::per(5, Duration::from_secs(60)).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    for left in (0..5).rev() {
        let res = send(&app, req(Method::POST, "/auth/init", "192.0.2.1:1000", &[])).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit-policy"], "\"auth\";q=5;w=60");
        let rl = res.headers()["ratelimit"].to_str().unwrap().to_string();
        assert!(rl.starts_with(&format!("\"auth\";r={left};t=")), "{rl}");
    }
    clock.advance(Duration::from_millis(200));
    let res = send(&app, req(Method::POST, "/auth/init", "192.0.2.1:1000", &[])).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // 12 s per request, 0.2 s already waited: 11.8 s rounds up to 12
    assert_eq!(res.headers()["retry-after"], "12");
    assert!(
        res.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"auth\";r=0;t=")
    );
    let body = body_json(res).await;
    assert_eq!(body["status"], 429);
    assert_eq!(body["violated-policies"][0], "auth");
    // another client is unaffected
    let res = send(&app, req(Method::POST, "/auth/init", "192.0.2.2:1000", &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    // waiting exactly Retry-After admits
    clock.advance(Duration::from_secs(12));
    let res = send(&app, req(Method::POST, "/auth/init", "192.0.2.1:1000", &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// A flooding client's refusals are made once per distinct set of numbers and then reused:
/// each must still carry the numbers of its own moment.
#[tokio::test]
async fn repeated_refusals_count_down_with_the_clock() {
    for legacy in [false, true] {
        let clock = ManualClock::new();
        let layer = RateLimit::builder()
            .store(store(&clock))
            .policy(Policy::new(
                "auth",
                Quota::per(1, Duration::from_secs(10)).unwrap(),
                Scope::ip(),
            ))
            .legacy_headers(legacy)
            .build()
            .unwrap();
        let app = wrap(layer);
        let flood = || req(Method::POST, "/auth/init", "192.0.2.1:1000", &[]);
        assert_eq!(send(&app, flood()).await.status(), StatusCode::OK);
        for waited in 0..10u64 {
            for _ in 0..3 {
                let res = send(&app, flood()).await;
                assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
                let h = res.headers();
                let left = (10 - waited).to_string();
                assert_eq!(h["retry-after"], left.as_str(), "after {waited} s");
                assert_eq!(h["ratelimit"], format!("\"auth\";r=0;t={left}").as_str());
                assert_eq!(h["cache-control"], "no-store");
                assert_eq!(h.contains_key("x-ratelimit-reset"), legacy);
                if legacy {
                    assert_eq!(h["x-ratelimit-reset"], left.as_str());
                }
            }
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(send(&app, flood()).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn sub_second_waits_round_up_to_one() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "fast",
            Quota::per_second(5).unwrap().with_burst(1).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
    let res = send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
}

#[tokio::test]
async fn ipv6_clients_in_one_64_share_an_allowance() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(2).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    for peer in ["[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:1"] {
        assert_eq!(
            send(&app, req(Method::GET, "/", peer, &[])).await.status(),
            StatusCode::OK
        );
    }
    let third = send(&app, req(Method::GET, "/", "[2001:db8:1:2:aaaa::1]:1", &[])).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let other_prefix = send(&app, req(Method::GET, "/", "[2001:db8:1:3::1]:1", &[])).await;
    assert_eq!(other_prefix.status(), StatusCode::OK);
}

/// A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`: they are the IPv4 client, for
/// the lists as for the limits.
#[tokio::test]
async fn ipv4_mapped_peers_are_their_ipv4_address() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .allow_list(["10.1.0.0/16".parse().unwrap()])
        .block_list(["203.0.113.0/24".parse().unwrap()])
        .build()
        .unwrap();
    let app = wrap(layer);
    let status = |res: Response<_>| res.status();
    let blocked = send(&app, req(Method::GET, "/", "[::ffff:203.0.113.9]:1", &[])).await;
    assert_eq!(status(blocked), StatusCode::FORBIDDEN);
    for _ in 0..3 {
        let allowed = send(&app, req(Method::GET, "/", "[::ffff:10.1.2.3]:1", &[])).await;
        assert_eq!(status(allowed), StatusCode::OK);
    }
    let first = send(&app, req(Method::GET, "/", "[::ffff:192.0.2.9]:1", &[])).await;
    assert_eq!(status(first), StatusCode::OK);
    let same_client = send(&app, req(Method::GET, "/", "192.0.2.9:1", &[])).await;
    assert_eq!(status(same_client), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn device_scope_requires_one_valid_id() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(
            Policy::new(
                "generate",
                Quota::per(10, Duration::from_secs(300)).unwrap(),
                Scope::device(),
            )
            .on(Method::POST, "/playlist/generate"),
        )
        .build()
        .unwrap();
    let app = wrap(layer);
    let missing = send(
        &app,
        req(Method::POST, "/playlist/generate", "192.0.2.1:1", &[]),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(
        body_json(missing).await["detail"]
            .as_str()
            .unwrap()
            .contains("device id required")
    );
    for bad in ["", "has space", "semi;colon", &"a".repeat(65)] {
        let res = send(
            &app,
            req(
                Method::POST,
                "/playlist/generate",
                "192.0.2.1:1",
                &[("x-device-id", bad)],
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let two = send(
        &app,
        req(
            Method::POST,
            "/playlist/generate",
            "192.0.2.1:1",
            &[("x-device-id", "a"), ("x-device-id", "b")],
        ),
    )
    .await;
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    // each device has its own allowance, whatever the address
    for _ in 0..10 {
        let res = send(
            &app,
            req(
                Method::POST,
                "/playlist/generate",
                "192.0.2.1:1",
                &[("x-device-id", "dev-1")],
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = send(
        &app,
        req(
            Method::POST,
            "/playlist/generate",
            "192.0.2.9:1",
            &[("x-device-id", "dev-1")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = send(
        &app,
        req(
            Method::POST,
            "/playlist/generate",
            "192.0.2.1:1",
            &[("x-device-id", "dev-2")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // other routes are not limited by this policy
    let res = send(&app, req(Method::GET, "/search", "192.0.2.1:1", &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("ratelimit"));
}

#[tokio::test]
async fn session_scope_falls_back_to_the_client_ip() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "search",
            Quota::per_minute(1).unwrap(),
            Scope::session(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    assert_eq!(
        send(
            &app,
            req(
                Method::GET,
                "/search",
                "192.0.2.1:1",
                &[("x-device-id", "s1")]
            )
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            req(
                Method::GET,
                "/search",
                "192.0.2.1:1",
                &[("x-device-id", "s2")]
            )
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, req(Method::GET, "/search", "192.0.2.1:1", &[]))
            .await
            .status(),
        StatusCode::OK
    );
    // without a session id the IP is the key, and it is now spent
    assert_eq!(
        send(&app, req(Method::GET, "/search", "192.0.2.1:1", &[]))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(
            &app,
            req(
                Method::GET,
                "/search",
                "192.0.2.1:1",
                &[("x-device-id", "s1")]
            )
        )
        .await
        .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_refusal_by_one_policy_charges_no_other() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new("ip", Quota::per_hour(3).unwrap(), Scope::ip()))
        .policy(Policy::new(
            "global",
            Quota::per_minute(2).unwrap(),
            Scope::global(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    for peer in ["192.0.2.1:1", "192.0.2.2:1"] {
        assert_eq!(
            send(&app, req(Method::GET, "/", peer, &[])).await.status(),
            StatusCode::OK
        );
    }
    for _ in 0..5 {
        let res = send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            res.headers()["ratelimit-policy"]
                .to_str()
                .unwrap()
                .starts_with("\"global\"")
        );
    }
    // The per-IP policy (3 per hour) paid only for the one admitted request, so once the
    // global allowance is back, this client still has two.
    clock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        let res = send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn exemptions_allow_and_block_lists_and_dry_run() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .exempt(Method::GET, "/config/health")
        .allow_list(["10.1.0.0/16".parse().unwrap()])
        .block_list(["203.0.113.0/24".parse().unwrap()])
        .build()
        .unwrap();
    let app = wrap(layer);
    for _ in 0..3 {
        let res = send(&app, req(Method::GET, "/config/health", "192.0.2.1:1", &[])).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!res.headers().contains_key("ratelimit"));
        assert_eq!(
            send(&app, req(Method::GET, "/x", "10.1.2.3:1", &[]))
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&app, req(Method::GET, "/x", "203.0.113.7:1", &[]))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let dry = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .dry_run(true)
        .build()
        .unwrap();
    let dry = wrap(dry);
    for _ in 0..3 {
        assert_eq!(
            send(&dry, req(Method::GET, "/x", "192.0.2.1:1", &[]))
                .await
                .status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn device_rotation_is_capped_per_client() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "generate",
            Quota::per_minute(100).unwrap(),
            Scope::device(),
        ))
        .device_rotation(3, Duration::from_secs(1800))
        .build()
        .unwrap();
    let app = wrap(layer);
    for id in ["d1", "d2", "d3", "d1", "d2"] {
        let res = send(
            &app,
            req(Method::POST, "/p", "192.0.2.1:1", &[("x-device-id", id)]),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{id}");
    }
    let res = send(
        &app,
        req(Method::POST, "/p", "192.0.2.1:1", &[("x-device-id", "d4")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body_json(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("too many new device ids")
    );
    // another client may still introduce its own
    let res = send(
        &app,
        req(Method::POST, "/p", "192.0.2.2:1", &[("x-device-id", "d4")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn trusted_proxies_and_spoofed_forwarding() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .client_ip(ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap())
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    let via_proxy = |xff: &str| req(Method::GET, "/", "10.0.0.5:1", &[("x-forwarded-for", xff)]);
    assert_eq!(
        send(&app, via_proxy("198.51.100.7")).await.status(),
        StatusCode::OK
    );
    // a spoofed leftmost entry changes nothing: the client is still 198.51.100.7
    assert_eq!(
        send(&app, via_proxy("1.2.3.4, 198.51.100.7"))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // a different real client behind the same proxy has its own allowance
    assert_eq!(
        send(&app, via_proxy("198.51.100.8")).await.status(),
        StatusCode::OK
    );
    // an untrusted peer's header is ignored
    let direct = req(
        Method::GET,
        "/",
        "192.0.2.50:1",
        &[("x-forwarded-for", "198.51.100.99")],
    );
    assert_eq!(send(&app, direct).await.status(), StatusCode::OK);
    let direct = req(
        Method::GET,
        "/",
        "192.0.2.50:1",
        &[("x-forwarded-for", "198.51.100.100")],
    );
    assert_eq!(
        send(&app, direct).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_missing_peer_address_is_an_operator_error_not_a_shared_bucket() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = wrap(layer);
    let r = Request::get("/").body(String::new()).unwrap();
    let res = send(&app, r).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn custom_keys_and_monitor() {
    let clock = ManualClock::new();
    let tenants = tower_shield::limiter::KeyHasher::random();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "tenant",
            Quota::per_minute(1).unwrap(),
            Scope::custom(move |head| {
                head.headers()
                    .get("x-tenant")
                    .map(|v| tenants.hash(v.as_bytes()))
            }),
        ))
        .build()
        .unwrap();
    let monitor = layer.monitor().clone();
    let app = wrap(layer);
    let tenant = |t: &str| req(Method::GET, "/", "192.0.2.1:1", &[("x-tenant", t)]);
    assert_eq!(send(&app, tenant("a")).await.status(), StatusCode::OK);
    assert_eq!(
        send(&app, tenant("a")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send(&app, tenant("b")).await.status(), StatusCode::OK);
    // no tenant: the policy does not apply
    assert_eq!(
        send(&app, req(Method::GET, "/", "192.0.2.1:1", &[]))
            .await
            .status(),
        StatusCode::OK
    );
    let top = monitor.top(5);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].count, 1);
}

#[test]
fn build_reports_every_problem() {
    let err = RateLimit::builder()
        .ipv6_prefix(7)
        .policy(Policy::new("a", Quota::per_minute(1).unwrap(), Scope::ip()))
        .policy(
            Policy::new("a", Quota::per_minute(1).unwrap(), Scope::ip())
                .on(Method::GET, "no-slash"),
        )
        .policy(Policy::new(
            "bad\"name\u{7f}",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .device_rotation(0, Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert!(err.problems().len() >= 5, "{err}");
}

#[tokio::test]
async fn a_custom_refusal_keeps_the_rate_headers() {
    let clock = ManualClock::new();
    let layer = RateLimit::builder()
        .store(store(&clock))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
        .on_refusal(|refusal| {
            let mut res = Response::new(bytes::Bytes::from(format!(
                "busy: {} {}",
                refusal.policy, refusal.client_ip
            )));
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        })
        .build()
        .unwrap();
    let app = wrap(layer);
    assert_eq!(
        send(&app, req(Method::GET, "/", "192.0.2.1:1", &[]))
            .await
            .status(),
        StatusCode::OK
    );
    let res = send(&app, req(Method::GET, "/", "192.0.2.1:1", &[])).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "60");
    assert!(res.headers().contains_key("ratelimit"));
    let body = body_bytes(res).await;
    assert_eq!(&body[..], b"busy: ip 192.0.2.1");
}

/// Two stacks in one process, as two tenants or two tests: different secrets, different quotas
/// under the same policy name. Neither sees the other's keys or counts.
#[tokio::test]
async fn two_differently_configured_stacks_do_not_interfere() {
    let clock = ManualClock::new();
    let stack = |secret: &str, burst: u32| {
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .secret(&tower_shield::SecretKey::new(secret).unwrap())
            .build()
            .unwrap();
        RateLimit::builder()
            .store(Arc::new(store))
            .policy(Policy::new(
                "device",
                Quota::per(burst, Duration::from_secs(60)).unwrap(),
                Scope::device(),
            ))
            .build()
            .unwrap()
    };
    let (a, b) = (
        stack("tenant A's secret, at least 32 bytes long", 2),
        stack("tenant B's secret, at least 32 bytes long", 3),
    );
    assert_ne!(
        a.store().key_hasher().hash(b"device-1"),
        b.store().key_hasher().hash(b"device-1")
    );
    let (app_a, app_b) = (wrap(a), wrap(b));
    let device = || {
        req(
            Method::GET,
            "/",
            "192.0.2.1:1",
            &[("x-device-id", "device-1")],
        )
    };
    for _ in 0..2 {
        assert_eq!(send(&app_a, device()).await.status(), StatusCode::OK);
    }
    assert_eq!(
        send(&app_a, device()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for left in (0..3).rev() {
        let res = send(&app_b, device()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit-policy"], "\"device\";q=3;w=60");
        let expected = format!("\"device\";r={left};");
        assert!(
            res.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with(&expected)
        );
    }
    assert_eq!(
        send(&app_b, device()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
