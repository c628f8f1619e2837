//! The whole stack from one `Config`: which layers the configuration turns on, the order a
//! request meets them in, and every configuration problem reported at once.
#![cfg(feature = "shield")]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_shield::limiter::Quota;
use tower_shield::rate_limit::{Policy, Scope};
use tower_shield::sanitize::{Field, InputSanitizer};
use tower_shield::secure_headers::Csp;
use tower_shield::{Config, Shield, ShieldLayer};

const ORIGIN: &str = "https://app.example";

fn config(vars: &[(&str, &str)]) -> Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
}

fn app(shield: ShieldLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/notes", post(|body: String| async move { body }))
        .layer(shield)
}

fn request(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    req.extensions_mut()
        .insert("198.51.100.7:40000".parse::<SocketAddr>().unwrap());
    req
}

async fn send(app: &Router, req: Request<Body>) -> (Response<()>, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_defaults_turn_on_headers_limits_and_the_log_but_not_cors() {
    let app = app(Shield::from_config(&config(&[])).unwrap());
    let (res, body) = send(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body, "hello");
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["ratelimit-policy"], "\"ip\";q=60;w=60");
    assert_eq!(h["ratelimit"], "\"ip\";r=59;t=1");
    assert!(h.contains_key("x-request-id"));
    assert!(!h.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn layers_the_configuration_turns_off_are_not_there() {
    let shield = Shield::from_config(&config(&[
        ("SECURE_HEADERS", "false"),
        ("RATE_LIMIT_ENABLED", "false"),
    ]))
    .unwrap();
    assert!(!shield.has_secure_headers() && !shield.has_cors() && !shield.has_sanitizer());
    assert!(shield.rate_limit().is_none());
    let app = app(shield);
    for _ in 0..100 {
        let (res, body) = send(&app, request(Method::GET, "/", &[], "")).await;
        assert_eq!((res.status(), body.as_str()), (StatusCode::OK, "hello"));
        assert!(!res.headers().contains_key("x-content-type-options"));
        assert!(!res.headers().contains_key("ratelimit"));
        // the security log is always on
        assert!(res.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn a_429_carries_security_and_cors_headers_and_preflights_spend_nothing() {
    let shield = Shield::from_config(&config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", ORIGIN),
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "2"),
    ]))
    .unwrap();
    let app = app(shield);
    let preflight = [
        ("origin", ORIGIN),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    for _ in 0..5 {
        let (res, _) = send(&app, request(Method::OPTIONS, "/notes", &preflight, "")).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
    }
    for _ in 0..2 {
        let (res, _) = send(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (res, body) = send(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = res.headers();
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    let exposed = h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
    assert!(h.contains_key("retry-after") && h.contains_key("x-request-id"));
    assert!(body.contains("\"violated-policies\":[\"ip\"]"), "{body}");
}

#[tokio::test]
async fn the_rate_limit_refuses_before_the_sanitizer_reads_a_body() {
    let shield = Shield::builder(&config(&[]))
        .rate_limit(|limits| {
            limits.policy(
                Policy::new("notes", Quota::per_minute(1).unwrap(), Scope::ip())
                    .on(Method::POST, "/notes"),
            )
        })
        .sanitizer(InputSanitizer::builder().json_body(
            Method::POST,
            "/notes",
            [Field::new("text").required().length(1, 20).plain_text()],
        ))
        .build()
        .unwrap();
    assert!(shield.has_sanitizer());
    let app = app(shield);
    let json = [("content-type", "application/json")];
    let (res, body) = send(
        &app,
        request(Method::POST, "/notes", &json, r#"{"text":"<b>hi</b>"}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(body.contains("text") && !body.contains("<b>"), "{body}");
    // the one admission is spent: the next body is refused unread
    let (res, _) = send(
        &app,
        request(Method::POST, "/notes", &json, "not even JSON"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_builder_adjusts_the_configured_headers() {
    let shield = Shield::builder(&config(&[]))
        .secure_headers(|headers| headers.csp(Csp::builder().directive("default-src", ["'none'"])))
        .build()
        .unwrap();
    let (res, _) = send(&app(shield), request(Method::GET, "/", &[], "")).await;
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'"
    );
}

#[test]
fn every_problem_of_every_layer_is_reported_at_once() {
    let err = Shield::builder(&config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", "*"),
    ]))
    .secure_headers(|headers| headers.csp(Csp::builder().directive("script-src", ["self"])))
    .rate_limit(|limits| {
        limits.policy(Policy::new(
            "ip",
            Quota::per_minute(1).unwrap(),
            Scope::ip(),
        ))
    })
    .build()
    .unwrap_err();
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    assert!(settings.contains(&"ALLOWED_ORIGINS"), "{err}");
    assert!(settings.iter().any(|s| s.contains("csp")), "{err}");
    assert!(settings.contains(&"policy"), "two policies named ip: {err}");
}

#[cfg(feature = "redis")]
#[test]
fn redis_without_a_shared_secret_is_refused() {
    let err =
        Shield::from_config(&config(&[("REDIS_URL", "redis://127.0.0.1:6379/0")])).unwrap_err();
    assert_eq!(err.problems()[0].setting(), "SECRET_KEY", "{err}");
}
