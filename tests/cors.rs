//! Black-box tests of the Cors layer through `tower::ServiceExt::oneshot`: Fetch's preflight
//! and CORS-check rules (WPT `cors/` and `fetch/api/cors/` behaviours), rs/cors's spec table
//! and jub0bs/cors's invalid configurations, ported as behaviours.

#![cfg(feature = "cors")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::Config;
use tower_shield::cors::{
    Cors, CorsBuilder, CorsLayer, InnerHeaders, MaxAge, Origin, OriginPattern,
};
use tower_shield::problem::ShieldBody;

mod common;
use common::alloc::request_allocations as allocations;
use common::{Captured, block_on, config};

const APP: &str = "https://app.example.com";

fn credentialed() -> CorsBuilder {
    Cors::builder()
        .allow_origins([APP, "https://*.tenant.example.com", "http://localhost:*"])
        .allow_credentials(true)
}

fn layer() -> CorsLayer {
    credentialed().build().unwrap()
}

/// What the inner service does: its status and headers; counts its calls.
#[derive(Clone)]
struct Inner {
    status: StatusCode,
    set: Vec<(&'static str, &'static str)>,
    calls: Arc<AtomicUsize>,
}

impl Inner {
    fn ok() -> Inner {
        Inner::with(StatusCode::OK, &[])
    }

    fn with(status: StatusCode, set: &[(&'static str, &'static str)]) -> Inner {
        Inner {
            status,
            set: set.to_vec(),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn send_to(
    layer: &CorsLayer,
    inner: &Inner,
    req: Request<()>,
) -> Response<ShieldBody<String>> {
    let inner = inner.clone();
    ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(move |_req: Request<()>| {
            let inner = inner.clone();
            async move {
                inner.calls.fetch_add(1, Ordering::SeqCst);
                let mut res = Response::new(String::from("inner"));
                *res.status_mut() = inner.status;
                for (k, v) in inner.set {
                    res.headers_mut().append(k, v.parse().unwrap());
                }
                Ok::<_, Infallible>(res)
            }
        }))
        .oneshot(req)
        .await
        .unwrap()
}

async fn send(layer: &CorsLayer, req: Request<()>) -> Response<ShieldBody<String>> {
    send_to(layer, &Inner::ok(), req).await
}

fn get(origin: &str) -> Request<()> {
    Request::get("/search?q=x")
        .header("origin", origin)
        .body(())
        .unwrap()
}

fn preflight(origin: &str, method: &str, headers: Option<&str>) -> Request<()> {
    let mut b = Request::builder()
        .method(Method::OPTIONS)
        .uri("/playlist/generate")
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        b = b.header("access-control-request-headers", h);
    }
    b.body(()).unwrap()
}

fn cors_headers(h: &HeaderMap) -> Vec<String> {
    h.keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn all(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn one(h: &HeaderMap, name: &str) -> String {
    let values = all(h, name);
    assert_eq!(values.len(), 1, "{name}: {values:?}");
    values.into_iter().next().unwrap()
}

/// Whether a browser's CORS check (Fetch §4.9, WPT `cors/origin.htm`) passes for this
/// response to a request from `origin`, credentials included or not.
fn browser_cors_check(h: &HeaderMap, origin: &str, credentials: bool) -> bool {
    let acao = all(h, "access-control-allow-origin");
    if acao.len() != 1 {
        return false;
    }
    let acao = acao[0].trim_matches([' ', '\t']);
    if acao == "*" && !credentials {
        return true;
    }
    if acao != origin {
        return false;
    }
    !credentials || all(h, "access-control-allow-credentials") == ["true"]
}

// ---------------------------------------------------------------- actual requests

#[tokio::test]
async fn allowed_origin_gets_its_own_origin_credentials_exposed_headers_and_vary() {
    let inner = Inner::ok();
    let res = send_to(&layer(), &inner, get(APP)).await;
    assert_eq!(inner.calls(), 1);
    let h = res.headers();
    assert_eq!(one(h, "access-control-allow-origin"), APP);
    assert_eq!(one(h, "access-control-allow-credentials"), "true");
    // the library's default: the rate limit's fields, nothing of any one application
    assert_eq!(
        one(h, "access-control-expose-headers"),
        "Retry-After, RateLimit, RateLimit-Policy"
    );
    assert_eq!(one(h, "vary"), "origin");
    // preflight-only headers never go on an actual response
    assert!(!h.contains_key("access-control-allow-methods"));
    assert!(!h.contains_key("access-control-max-age"));
    assert!(browser_cors_check(h, APP, true));
}

#[tokio::test]
async fn patterns_match_subdomains_and_any_localhost_port_only() {
    let l = layer();
    for ok in [
        "https://acme.tenant.example.com",
        "https://a.b.tenant.example.com",
        "http://localhost:5173",
        "http://localhost",
    ] {
        let res = send(&l, get(ok)).await;
        assert_eq!(one(res.headers(), "access-control-allow-origin"), ok);
    }
    for look_alike in [
        "https://eviltenant.example.com",
        "https://tenant.example.com",
        "https://tenant.example.com.evil.io",
        "https://acme.tenant.example.com.evil.io",
        "https://app.example.com.evil.io",
        "https://evilapp.example.com",
        "http://acme.tenant.example.com",
        "https://acme.tenant.example.com:8443",
        "http://localhost.evil.io:5173",
        "http://127.0.0.1:5173",
        "https://localhost:5173",
        // Fetch compares byte for byte: these are not what a browser sends for APP
        "HTTPS://APP.EXAMPLE.COM",
        "https://app.example.com/",
        "https://app.example.com:443",
        " https://app.example.com",
        "https://app.example.com.",
        "null",
    ] {
        let res = send(&l, get(look_alike)).await;
        let h = res.headers();
        assert!(
            cors_headers(h).is_empty(),
            "{look_alike}: {:?}",
            cors_headers(h)
        );
        assert_eq!(one(h, "vary"), "origin", "{look_alike}");
        assert!(!browser_cors_check(h, look_alike, false));
    }
}

#[tokio::test]
async fn refused_origin_still_reaches_the_handler_but_gets_no_cors_headers() {
    // CORS is not access control: the browser blocks the read, not the request
    let inner = Inner::ok();
    let res = send_to(&layer(), &inner, get("https://evil.example")).await;
    assert_eq!(inner.calls(), 1);
    assert_eq!(res.status(), StatusCode::OK);
    assert!(cors_headers(res.headers()).is_empty());
    assert_eq!(one(res.headers(), "vary"), "origin");
}

#[tokio::test]
async fn no_origin_gets_vary_only_and_no_credentials_header() {
    let res = send(&layer(), Request::get("/").body(()).unwrap()).await;
    assert!(cors_headers(res.headers()).is_empty());
    assert_eq!(one(res.headers(), "vary"), "origin");
}

#[tokio::test]
async fn two_origin_headers_are_refused() {
    let req = Request::get("/")
        .header("origin", APP)
        .header("origin", APP)
        .body(())
        .unwrap();
    let res = send(&layer(), req).await;
    assert!(cors_headers(res.headers()).is_empty());
}

#[tokio::test]
async fn public_mode_sends_star_to_everyone_and_no_vary() {
    let l = Cors::builder().allow_any_origin().build().unwrap();
    for req in [
        get("https://anyone.example"),
        Request::get("/").body(()).unwrap(),
        get("null"),
    ] {
        let res = send(&l, req).await;
        let h = res.headers();
        assert_eq!(one(h, "access-control-allow-origin"), "*");
        assert!(!h.contains_key("access-control-allow-credentials"));
        assert!(h.contains_key("access-control-expose-headers"));
        assert!(!h.contains_key("vary"));
    }
    assert!(l.allows("https://anyone.example"));
}

#[tokio::test]
async fn null_origin_only_when_dangerously_allowed() {
    let l = Cors::builder()
        .allow_origins([APP, "null"])
        .dangerously_allow_null_origin()
        .build()
        .unwrap();
    let res = send(&l, get("null")).await;
    assert_eq!(one(res.headers(), "access-control-allow-origin"), "null");
    assert!(browser_cors_check(res.headers(), "null", false));
    // without listing it, the flag alone allows it too (it names the risk already)
    let l = Cors::builder()
        .allow_origin(APP)
        .dangerously_allow_null_origin()
        .build()
        .unwrap();
    assert!(l.allows("null"));
    assert!(!layer().allows("null"));
}

// ---------------------------------------------------------------- preflights

#[tokio::test]
async fn allowed_preflight_is_answered_204_with_the_policy_and_never_reaches_the_handler() {
    let inner = Inner::ok();
    let res = send_to(
        &layer(),
        &inner,
        preflight(APP, "PUT", Some("content-type,x-device-id")),
    )
    .await;
    assert_eq!(inner.calls(), 0);
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let h = res.headers();
    assert_eq!(one(h, "access-control-allow-origin"), APP);
    assert_eq!(one(h, "access-control-allow-credentials"), "true");
    assert_eq!(
        one(h, "access-control-allow-methods"),
        "GET, POST, PUT, DELETE, OPTIONS"
    );
    assert_eq!(
        one(h, "access-control-allow-headers"),
        "content-type,x-device-id"
    );
    assert_eq!(one(h, "access-control-max-age"), "600");
    assert!(!h.contains_key("access-control-expose-headers"));
    assert_eq!(one(h, "vary"), "origin, access-control-request-headers");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
}

#[tokio::test]
async fn preflight_status_200_on_request_and_only_2xx_ok_statuses_accepted() {
    let l = credentialed()
        .preflight_status(StatusCode::OK)
        .build()
        .unwrap();
    let res = send(&l, preflight(APP, "DELETE", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("access-control-allow-headers"));
    for bad in [
        StatusCode::CREATED,
        StatusCode::MULTIPLE_CHOICES,
        StatusCode::FORBIDDEN,
    ] {
        let err = credentialed().preflight_status(bad).build().unwrap_err();
        assert_eq!(err.problems()[0].setting(), "cors.preflight_status");
    }
}

#[test]
fn refused_preflight_is_403_problem_json_with_no_cors_headers_and_one_event() {
    let (res, events) = capture(|| async {
        let inner = Inner::ok();
        let res = send_to(
            &layer(),
            &inner,
            preflight("https://evil.example", "PUT", None),
        )
        .await;
        assert_eq!(inner.calls(), 0);
        res
    });
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        cors_headers(res.headers()).is_empty(),
        "{:?}",
        res.headers()
    );
    assert_eq!(
        one(res.headers(), "content-type"),
        "application/problem+json"
    );
    assert_eq!(one(res.headers(), "vary"), "origin");
    let body = block_on(res.into_body().collect()).unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], 403);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.target, "tower_shield::security");
    assert_eq!(e.field("event"), Some("cors_refused"));
    assert_eq!(e.field("owasp"), Some("malicious_cors"));
    assert_eq!(e.field("reason"), Some("origin not allowed"));
    assert_eq!(e.field("origin"), Some("https://evil.example"));
}

#[tokio::test]
async fn methods_compare_byte_for_byte_and_safelisted_ones_always_pass() {
    let l = credentialed()
        .allow_methods(["PUT", "NEW"])
        .build()
        .unwrap();
    for (method, ok) in [
        ("PUT", true),
        ("NEW", true),
        ("GET", true),
        ("HEAD", true),
        ("POST", true),
        ("put", false),
        ("new", false),
        ("DELETE", false),
        ("PATCH", false),
        ("PUT, DELETE", false),
        ("", false),
    ] {
        let res = send(&l, preflight(APP, method, None)).await;
        let expected = if ok {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status(), expected, "{method:?}");
    }
    let res = send(&l, preflight(APP, "PUT", None)).await;
    assert_eq!(
        one(res.headers(), "access-control-allow-methods"),
        "PUT, NEW"
    );
}

#[tokio::test]
async fn request_headers_compare_case_insensitively_and_tolerate_ows_and_split_lines() {
    let l = credentialed()
        .allow_headers(["Content-Type", "X-Device-ID"])
        .build()
        .unwrap();
    for (acrh, ok) in [
        ("content-type", true),
        ("CONTENT-TYPE,x-device-id", true),
        (" content-type , , x-device-id ", true),
        ("", true),
        ("x-other", false),
        ("content-type,x-other", false),
        ("authorization", false),
        ("content type", false),
    ] {
        let res = send(&l, preflight(APP, "PUT", Some(acrh))).await;
        let expected = if ok {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status(), expected, "{acrh:?}");
        if ok {
            assert_eq!(
                one(res.headers(), "access-control-allow-headers"),
                "content-type, x-device-id"
            );
            assert_eq!(one(res.headers(), "vary"), "origin");
        }
    }
    // two ACRH lines, as a proxy might split them
    let mut req = preflight(APP, "PUT", Some("content-type"));
    req.headers_mut().append(
        "access-control-request-headers",
        "x-device-id".parse().unwrap(),
    );
    assert_eq!(send(&l, req).await.status(), StatusCode::NO_CONTENT);
    let mut req = preflight(APP, "PUT", Some("content-type"));
    req.headers_mut()
        .append("access-control-request-headers", "x-evil".parse().unwrap());
    assert_eq!(send(&l, req).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn any_header_never_covers_authorization_unless_listed() {
    // the default: any header but Authorization
    let l = layer();
    let res = send(&l, preflight(APP, "GET", Some("x-anything,content-type"))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        one(res.headers(), "access-control-allow-headers"),
        "x-anything,content-type"
    );
    for auth in ["authorization", "Authorization", "x-a,authorization"] {
        let res = send(&l, preflight(APP, "GET", Some(auth))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{auth}");
    }
    let l = credentialed()
        .allow_headers(["authorization"])
        .allow_any_header()
        .build()
        .unwrap();
    let res = send(&l, preflight(APP, "GET", Some("authorization,x-a"))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // never a literal `*`, which a credentialed browser would take literally
    assert_eq!(
        one(res.headers(), "access-control-allow-headers"),
        "authorization,x-a"
    );
}

#[tokio::test]
async fn other_options_requests_reach_the_inner_service() {
    let l = layer();
    let cases = [
        // no Access-Control-Request-Method
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/")
            .header("origin", APP)
            .body(())
            .unwrap(),
        // no Origin
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/")
            .header("access-control-request-method", "PUT")
            .body(())
            .unwrap(),
        // neither
        Request::builder()
            .method(Method::OPTIONS)
            .uri("*")
            .body(())
            .unwrap(),
    ];
    for req in cases {
        let inner = Inner::with(StatusCode::OK, &[("allow", "GET, OPTIONS")]);
        let res = send_to(&l, &inner, req).await;
        assert_eq!(inner.calls(), 1);
        assert_eq!(one(res.headers(), "allow"), "GET, OPTIONS");
    }
}

#[tokio::test]
async fn public_mode_preflight_and_refusals() {
    let l = Cors::builder()
        .allow_any_origin()
        .allow_headers(["x-a"])
        .max_age(MaxAge::seconds(3600))
        .build()
        .unwrap();
    let res = send(&l, preflight("https://x.example", "PUT", Some("x-a"))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(one(res.headers(), "access-control-allow-origin"), "*");
    assert_eq!(one(res.headers(), "access-control-max-age"), "3600");
    assert!(
        !res.headers()
            .contains_key("access-control-allow-credentials")
    );
    assert!(!res.headers().contains_key("vary"));
    let res = send(&l, preflight("https://x.example", "PATCH", None)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(cors_headers(res.headers()).is_empty());
}

#[tokio::test]
async fn max_age_is_typed_capped_and_optional() {
    let res = send(
        &credentialed().max_age(MaxAge::UNSET).build().unwrap(),
        preflight(APP, "GET", None),
    )
    .await;
    assert!(!res.headers().contains_key("access-control-max-age"));
    let res = send(
        &credentialed()
            .max_age(MaxAge::disable_cache())
            .build()
            .unwrap(),
        preflight(APP, "GET", None),
    )
    .await;
    assert_eq!(one(res.headers(), "access-control-max-age"), "0");
    assert!(
        credentialed()
            .max_age(MaxAge::seconds(86_400))
            .build()
            .is_ok()
    );
    let err = credentialed()
        .max_age(MaxAge::seconds(86_401))
        .build()
        .unwrap_err();
    assert_eq!(err.problems()[0].setting(), "cors.max_age");
}

// ---------------------------------------------------------------- Vary and inner headers

#[tokio::test]
async fn vary_is_merged_into_the_response_s_own_without_duplicates() {
    let l = layer();
    for (inner_vary, expected) in [
        (vec!["accept-encoding"], vec!["accept-encoding, origin"]),
        (
            vec!["Accept-Encoding", "Accept-Language"],
            vec!["Accept-Encoding, Accept-Language, origin"],
        ),
        (vec!["Origin"], vec!["Origin"]),
        (vec!["accept, origin"], vec!["accept, origin"]),
        (vec!["*"], vec!["*"]),
    ] {
        let set: Vec<(&'static str, &'static str)> =
            inner_vary.iter().map(|v| ("vary", *v)).collect();
        for req in [
            get(APP),
            get("https://evil.example"),
            Request::get("/").body(()).unwrap(),
        ] {
            let res = send_to(&l, &Inner::with(StatusCode::OK, &set), req).await;
            assert_eq!(all(res.headers(), "vary"), expected, "{inner_vary:?}");
        }
    }
}

#[tokio::test]
async fn inner_cors_headers_are_replaced_so_there_is_never_a_second_acao() {
    let set = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-origin", "https://stale.example"),
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "set-cookie"),
    ];
    let l = layer();
    let res = send_to(&l, &Inner::with(StatusCode::OK, &set), get(APP)).await;
    let h = res.headers();
    assert_eq!(all(h, "access-control-allow-origin"), [APP]);
    assert_eq!(all(h, "access-control-allow-credentials"), ["true"]);
    assert_eq!(all(h, "access-control-expose-headers").len(), 1);
    assert!(browser_cors_check(h, APP, true));
    // a handler cannot widen the allow-list by accident
    let res = send_to(
        &l,
        &Inner::with(StatusCode::OK, &set),
        get("https://evil.example"),
    )
    .await;
    assert!(cors_headers(res.headers()).is_empty());

    // Keep: the handler's own decide, Vary still merged
    let keep = credentialed()
        .inner_headers(InnerHeaders::Keep)
        .build()
        .unwrap();
    let set = [("access-control-allow-origin", "https://own.example")];
    let res = send_to(&keep, &Inner::with(StatusCode::OK, &set), get(APP)).await;
    assert_eq!(
        all(res.headers(), "access-control-allow-origin"),
        ["https://own.example"]
    );
    assert!(
        !res.headers()
            .contains_key("access-control-allow-credentials")
    );
    assert_eq!(one(res.headers(), "vary"), "origin");
    let res = send(&keep, get(APP)).await;
    assert_eq!(one(res.headers(), "access-control-allow-origin"), APP);
}

#[tokio::test]
async fn nested_cors_layers_still_send_one_acao_and_one_vary_origin() {
    let app = ServiceBuilder::new()
        .layer(layer())
        .layer(layer())
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let res = app.oneshot(get(APP)).await.unwrap();
    assert_eq!(all(res.headers(), "access-control-allow-origin"), [APP]);
    assert_eq!(all(res.headers(), "vary"), ["origin"]);
}

#[tokio::test]
async fn error_responses_of_inner_services_carry_cors_headers() {
    let set = [
        ("retry-after", "30"),
        ("content-type", "application/problem+json"),
    ];
    let res = send_to(
        &layer(),
        &Inner::with(StatusCode::TOO_MANY_REQUESTS, &set),
        get(APP),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(browser_cors_check(res.headers(), APP, true));
    assert!(one(res.headers(), "access-control-expose-headers").contains("Retry-After"));
}

#[cfg(feature = "rate-limit")]
#[tokio::test]
async fn a_real_429_from_the_rate_limit_layer_inside_is_readable_cross_origin() {
    use std::net::SocketAddr;
    use tower_shield::limiter::Quota;
    use tower_shield::rate_limit::{Policy, RateLimit, Scope};

    let app = ServiceBuilder::new()
        .layer(layer())
        .layer(
            RateLimit::builder()
                .policy(Policy::new(
                    "ip",
                    Quota::per_minute(1).unwrap(),
                    Scope::ip(),
                ))
                .build()
                .unwrap(),
        )
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let mut req = get(APP);
        req.extensions_mut().insert(peer);
        let res = app.clone().oneshot(req).await.unwrap();
        statuses.push(res.status());
        assert!(browser_cors_check(res.headers(), APP, true));
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            assert!(one(res.headers(), "access-control-expose-headers").contains("Retry-After"));
            assert_eq!(one(res.headers(), "vary"), "origin");
        }
    }
    assert_eq!(statuses, [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
}

#[tokio::test]
async fn works_as_an_axum_router_layer() {
    use axum::Router;
    use axum::routing::get as route_get;

    let app = Router::new()
        .route("/search", route_get(|| async { "[]" }))
        .layer(layer());
    let res = app
        .clone()
        .oneshot(preflight(APP, "GET", None).map(|()| axum::body::Body::empty()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let req = Request::get("/search")
        .header("origin", APP)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(browser_cors_check(res.headers(), APP, true));
}

// ---------------------------------------------------------------- configuration errors

fn problems(b: CorsBuilder) -> Vec<(String, String)> {
    b.build()
        .unwrap_err()
        .problems()
        .iter()
        .map(|p| (p.setting().to_owned(), p.message().to_owned()))
        .collect()
}

#[test]
fn invalid_configurations_are_errors_never_panics() {
    let creds = || Cors::builder().allow_credentials(true);
    let cases: Vec<(CorsBuilder, &str)> = vec![
        (creds().allow_any_origin(), "can never work"),
        (creds().allow_origin("*"), "can never work"),
        (creds(), "no origin is allowed"),
        (Cors::builder(), "no origin is allowed"),
        (creds().allow_origin("http://app.example.com"), "plain http"),
        (creds().allow_origin("http://*.example.com"), "plain http"),
        (creds().allow_origin("https://*.com"), "public suffix `com`"),
        (
            creds().allow_origin("https://*.co.uk"),
            "public suffix `co.uk`",
        ),
        (creds().allow_origin("https://*.github.io"), "public suffix"),
        (
            creds().allow_origin("https://*.herokuapp.com"),
            "public suffix",
        ),
        (Cors::builder().allow_origin("null"), "`null`"),
        (creds().allow_origin("null"), "`null`"),
        (
            Cors::builder().allow_origin("https://app.example.com/"),
            "did you mean `https://app.example.com`?",
        ),
        (
            Cors::builder().allow_origin("https://*example.com"),
            "did you mean `https://*.example.com`?",
        ),
        (
            Cors::builder().allow_origin("https://a*.example.com"),
            "whole leading label",
        ),
        (
            Cors::builder().allow_origin("file://"),
            "only `http` and `https`",
        ),
        (
            Cors::builder().allow_any_origin().allow_origin(APP),
            "together with a list",
        ),
        (
            creds().allow_origin(APP).allow_origin_fn(|_| true),
            "dangerously_allow_origin_fn_with_credentials",
        ),
        (
            Cors::builder().allow_origin(APP).allow_methods(["get"]),
            "did you mean `GET`?",
        ),
        (
            Cors::builder().allow_origin(APP).allow_methods(["TRACE"]),
            "never send",
        ),
        (
            Cors::builder().allow_origin(APP).allow_methods(["CONNECT"]),
            "never send",
        ),
        (
            Cors::builder().allow_origin(APP).allow_methods(["*"]),
            "not a method",
        ),
        (
            Cors::builder()
                .allow_origin(APP)
                .allow_methods(["BAD METHOD"]),
            "not a method",
        ),
        (
            Cors::builder()
                .allow_origin(APP)
                .allow_headers(["bad header"]),
            "not a header name",
        ),
        (
            Cors::builder()
                .allow_origin(APP)
                .allow_headers(["Access-Control-Allow-Origin"]),
            "CORS protocol header",
        ),
        (creds().allow_origin(APP).expose_headers(["*"]), "literally"),
        (
            Cors::builder()
                .allow_origin(APP)
                .expose_headers(["access-control-allow-origin"]),
            "CORS protocol header",
        ),
        (
            Cors::builder().allow_origin(APP).expose_headers(["x y"]),
            "not a header name",
        ),
    ];
    for (builder, needle) in cases {
        let found = problems(builder);
        assert!(
            found.iter().any(|(_, m)| m.contains(needle)),
            "{needle:?} not in {found:?}"
        );
    }
    // without credentials, http origins, public-suffix wildcards and `*` are allowed
    assert!(
        Cors::builder()
            .allow_origin("http://app.example.com")
            .build()
            .is_ok()
    );
    assert!(
        Cors::builder()
            .allow_origin("https://*.github.io")
            .build()
            .is_ok()
    );
    assert!(
        Cors::builder()
            .allow_any_origin()
            .expose_headers(["*"])
            .build()
            .is_ok()
    );
    assert!(
        Cors::builder()
            .allow_origin(APP)
            .allow_credentials(true)
            .allow_origin_fn(|o| o.ends_with(".example.com"))
            .dangerously_allow_origin_fn_with_credentials()
            .build()
            .is_ok()
    );
    // loopback may use http with credentials
    assert!(
        Cors::builder()
            .allow_origins([
                "http://localhost:*",
                "http://127.0.0.1:3000",
                "http://[::1]:3000",
                "http://*.localhost"
            ])
            .allow_credentials(true)
            .build()
            .is_ok()
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        Cors::builder()
            .allow_credentials(true)
            .allow_origins(["https://a.example/", "http://b.example", "*", "null"])
            .allow_methods(["get", "TRACE"])
            .expose_headers(["*"])
            .max_age(MaxAge::seconds(100_000))
            .preflight_status(StatusCode::ACCEPTED),
    );
    assert!(found.len() >= 9, "{found:#?}");
    assert!(found.iter().any(|(s, _)| s == "cors.allow_origin"));
    assert!(found.iter().any(|(s, _)| s == "cors.allow_methods"));
    assert!(found.iter().any(|(s, _)| s == "cors.max_age"));
}

#[test]
fn origin_predicate_is_a_last_resort_after_the_list() {
    let l = Cors::builder()
        .allow_origin(APP)
        .allow_origin_fn(|o| o == "https://partner.example")
        .build()
        .unwrap();
    assert!(l.allows(APP));
    assert!(l.allows("https://partner.example"));
    assert!(!l.allows("https://other.example"));
}

/// The CORS layer the configuration adapter asks for.
fn cors_from_config(config: &Config) -> Result<Option<CorsLayer>, tower_shield::ConfigError> {
    config
        .cors_builder()
        .map(|b| b.map(|b| b.build().expect("checked by the adapter")))
}

#[tokio::test]
async fn from_config_reads_the_echotuner_variables() {
    assert!(cors_from_config(&config(&[])).unwrap().is_none());
    assert!(
        cors_from_config(&config(&[
            ("CORS_ENABLED", "false"),
            ("ALLOWED_ORIGINS", "*")
        ]))
        .unwrap()
        .is_none()
    );

    let l = cors_from_config(&config(&[
        ("CORS_ENABLED", "true"),
        (
            "ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:*",
        ),
    ]))
    .unwrap()
    .unwrap();
    assert!(l.allows_credentials());
    assert!(l.allows("http://localhost:3000"));
    // EchoTuner's paging headers are exposed by the adapter, before the rate limit's
    let res = send(&l, get(APP)).await;
    assert_eq!(
        one(res.headers(), "access-control-expose-headers"),
        "X-Total-Count, X-Page-Count, Retry-After, RateLimit, RateLimit-Policy"
    );
    // the EchoTuner admin API takes a key in Authorization: allowed explicitly
    let res = send(
        &l,
        preflight(APP, "POST", Some("authorization,content-type,x-device-id")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let public = cors_from_config(&config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", "*"),
        ("CORS_ALLOW_CREDENTIALS", "false"),
    ]))
    .unwrap()
    .unwrap();
    assert!(!public.allows_credentials());
    let res = send(&public, get("https://x.example")).await;
    assert_eq!(one(res.headers(), "access-control-allow-origin"), "*");

    for (origins, needle) in [
        ("*", "can never work"),
        ("", "no origin is allowed"),
        (
            "https://app.example.com/",
            "did you mean `https://app.example.com`?",
        ),
        ("http://app.example.com", "plain http"),
        ("https://*.github.io", "public suffix"),
    ] {
        let err = cors_from_config(&config(&[
            ("CORS_ENABLED", "true"),
            ("ALLOWED_ORIGINS", origins),
        ]))
        .unwrap_err();
        let p = &err.problems()[0];
        assert_eq!(p.setting(), "ALLOWED_ORIGINS", "{origins}");
        assert!(p.message().contains(needle), "{origins}: {}", p.message());
        if !origins.is_empty() && origins != "*" {
            assert!(err.to_string().contains(origins), "{err}");
        }
    }
    let err = cors_from_config(&config(&[
        ("CORS_ENABLED", "true"),
        ("ALLOWED_ORIGINS", "*"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("CORS_ALLOW_CREDENTIALS"));
}

// ---------------------------------------------------------------- the typed origin

#[test]
fn origins_parse_to_their_parts_and_mistakes_suggest_a_fix() {
    let o: Origin = "https://app.example.com:8443".parse().unwrap();
    assert_eq!(o.host(), "app.example.com");
    assert_eq!(o.port(), Some(8443));
    for (input, fix) in [
        ("https://app.example.com/", "https://app.example.com"),
        ("https://App.Example.com", "https://app.example.com"),
        ("app.example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("https://user@app.example.com", "https://app.example.com"),
        ("https://app.example.com/path?q", "https://app.example.com"),
    ] {
        let err = Origin::parse(input).unwrap_err();
        assert_eq!(err.suggestion(), Some(fix), "{input}");
        assert!(err.to_string().contains(&format!("did you mean `{fix}`?")));
    }
}

// ---------------------------------------------------------------- properties

/// Hosts built from a few labels, some of them near-misses of `example.com`.
fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("example".to_owned()),
            Just("com".to_owned()),
            Just("evil".to_owned()),
            Just("".to_owned()),
            "[a-z0-9-]{1,6}",
            "[a-zA-Z0-9_.*-]{0,8}",
        ],
        1..5,
    )
    .prop_map(|labels| labels.join("."))
}

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}", t in "(https?://)?[a-zA-Z0-9.:*@/\\[\\]_-]{0,30}") {
        let _ = Origin::parse(&s);
        let _ = OriginPattern::parse(&s);
        let _ = Origin::parse(&t);
        if let Ok(p) = OriginPattern::parse(&t) {
            let _ = p.matches(&s);
            let _ = p.matches(&t);
        }
    }

    #[test]
    fn a_parsed_origin_serialises_to_itself(
        scheme in prop_oneof![Just("http"), Just("https")],
        host in host(),
        port in prop::option::of(1u16..),
    ) {
        let text = match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        };
        if let Ok(origin) = Origin::parse(&text) {
            prop_assert_eq!(origin.as_str(), text.as_str());
            let again = Origin::parse(&origin.to_string()).unwrap();
            prop_assert_eq!(&again, &origin);
            // an exact pattern matches exactly its origin
            let pattern = OriginPattern::parse(origin.as_str()).unwrap();
            prop_assert!(pattern.matches(origin.as_str()));
        }
    }

    #[test]
    fn a_wildcard_only_matches_hosts_ending_in_dot_suffix(
        suffix in "[a-z]{1,6}\\.[a-z]{2,4}",
        host in host(),
        any_port in any::<bool>(),
        port in prop::option::of(1u16..),
    ) {
        let pattern_text = if any_port {
            format!("https://*.{suffix}:*")
        } else {
            format!("https://*.{suffix}")
        };
        let pattern = OriginPattern::parse(&pattern_text).unwrap();
        for host in [host.clone(), format!("{host}.{suffix}"), format!("{host}{suffix}")] {
            let origin = match port {
                Some(p) => format!("https://{host}:{p}"),
                None => format!("https://{host}"),
            };
            if pattern.matches(&origin) {
                let dotted = format!(".{suffix}");
                prop_assert!(host.ends_with(&dotted), "{} matched {}", origin, pattern_text);
                prop_assert!(host.len() > dotted.len());
                prop_assert!(Origin::parse(&origin).is_ok(), "{} is not an origin", origin);
            }
        }
    }

    #[test]
    fn every_acao_sent_passes_the_browser_check_and_is_never_doubled(
        origin in prop_oneof![
            Just(APP.to_owned()),
            host().prop_map(|h| format!("https://{h}")),
            host().prop_map(|h| format!("https://{h}.tenant.example.com")),
            "\\PC{0,30}",
        ],
        inner_acao in any::<bool>(),
    ) {
        let Ok(value) = http::HeaderValue::from_str(&origin) else { return Ok(()) };
        let set: &[(&'static str, &'static str)] =
            if inner_acao { &[("access-control-allow-origin", "*")] } else { &[] };
        let l = layer();
        let res = block_on(async {
            let mut req = Request::get("/").body(()).unwrap();
            req.headers_mut().insert("origin", value);
            send_to(&l, &Inner::with(StatusCode::OK, set), req).await
        });
        let acao = all(res.headers(), "access-control-allow-origin");
        prop_assert!(acao.len() <= 1);
        if !acao.is_empty() {
            prop_assert!(l.allows(&origin));
            prop_assert!(browser_cors_check(res.headers(), &origin, true));
            prop_assert!(Origin::parse(&origin).is_ok());
        }
        prop_assert_eq!(all(res.headers(), "vary"), ["origin"]);
    }
}

// ---------------------------------------------------------------- helpers

/// Runs `f` to completion on a fresh runtime with a capturing subscriber; its output and the
/// events it emitted.
fn capture<F, Fut, T>(f: F) -> (T, Vec<Captured>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    common::capture(|| block_on(f()))
}

// ---------------------------------------------------------------- allocations

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

#[test]
fn the_allowed_simple_request_path_makes_no_allocation_of_its_own() {
    use tower::Layer;
    // the handler's map has room for the CORS headers, so only the layer's own allocations
    // could show
    let handler = service_fn(|_req: Request<()>| async {
        let mut res = Response::new(String::new());
        res.headers_mut().reserve(16);
        Ok::<_, Infallible>(res)
    });
    let request = |origin: &'static str| {
        Request::get("/search")
            .header("origin", http::HeaderValue::from_static(origin))
            .body(())
            .unwrap()
    };
    let mut bare = handler;
    let mut svc = layer().layer(handler);
    for origin in [
        APP,
        "https://acme.tenant.example.com",
        "https://evil.example",
    ] {
        // warm up (lazy statics, thread-locals), then measure
        let _ = allocations(&mut svc, request(origin));
        let _ = allocations(&mut bare, request(origin));
        let baseline = allocations(&mut bare, request(origin));
        let with_layer = allocations(&mut svc, request(origin));
        assert_eq!(with_layer, baseline, "{origin}");
    }
    // and the headers really are there
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut fut = std::pin::pin!(tower::Service::call(&mut svc, request(APP)));
    let std::task::Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) else {
        panic!("not ready")
    };
    assert!(browser_cors_check(res.headers(), APP, true));
}
