//! Black-box tests of the SecureHeaders layer through `tower::ServiceExt::oneshot`.
#![cfg(feature = "secure-headers")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, SERVER};
use http::{HeaderMap, Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::client_ip::ClientIpStrategy;
use tower_shield::secure_headers::{
    Csp, CspNonce, Hsts, Merge, OWASP_REMOVE_LIST, SecureHeaders, SecureHeadersBuilder,
    SkipSecureHeaders,
};

/// Sends `req` through `builder`'s layer around a handler that answers `status` with the
/// headers in `set` (and the `Server`/`X-Powered-By` banners).
async fn run_with(
    builder: SecureHeadersBuilder,
    req: Request<()>,
    status: StatusCode,
    set: Vec<(&'static str, &'static str)>,
    extension: Option<SkipSecureHeaders>,
) -> Response<String> {
    let layer = builder.build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |_req: Request<()>| {
            let set = set.clone();
            let extension = extension.clone();
            async move {
                let mut res = Response::new(String::from("body"));
                *res.status_mut() = status;
                res.headers_mut()
                    .insert(SERVER, HeaderValue::from_static("hyper/1.0"));
                res.headers_mut()
                    .insert("x-powered-by", HeaderValue::from_static("Rust"));
                for (k, v) in set {
                    res.headers_mut().append(k, HeaderValue::from_static(v));
                }
                if let Some(e) = extension {
                    res.extensions_mut().insert(e);
                }
                Ok::<_, Infallible>(res)
            }
        }));
    svc.oneshot(req).await.unwrap()
}

async fn run(builder: SecureHeadersBuilder, req: Request<()>) -> Response<String> {
    run_with(builder, req, StatusCode::OK, vec![], None).await
}

fn https(path: &str) -> Request<()> {
    Request::get(format!("https://api.example.com{path}"))
        .body(())
        .unwrap()
}

fn plain(host: &str) -> Request<()> {
    Request::get("/").header("host", host).body(()).unwrap()
}

/// The response's headers as sorted `(name, value)` pairs, each value once per occurrence.
fn listing(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

const DEFAULT_CSP: &str = "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' https: 'unsafe-inline'; upgrade-insecure-requests";

fn default_set() -> Vec<(&'static str, &'static str)> {
    vec![
        ("content-security-policy", DEFAULT_CSP),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-dns-prefetch-control", "off"),
        ("x-download-options", "noopen"),
        ("x-frame-options", "DENY"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-xss-protection", "0"),
    ]
}

#[tokio::test]
async fn default_set_exactly_once_on_success_and_errors_with_banners_removed() {
    for status in [
        StatusCode::OK,
        StatusCode::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        let res = run_with(SecureHeaders::builder(), https("/"), status, vec![], None).await;
        assert_eq!(res.status(), status);
        assert_eq!(listing(res.headers()), expect(&default_set()), "{status}");
        assert_eq!(res.into_body(), "body", "the body passes through untouched");
    }
}

#[tokio::test]
async fn golden_helmet_8() {
    let res = run(SecureHeaders::helmet(), https("/")).await;
    assert_eq!(
        listing(res.headers()),
        expect(&[
            (
                "content-security-policy",
                "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
            ),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("origin-agent-cluster", "?1"),
            ("referrer-policy", "no-referrer"),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains"
            ),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-download-options", "noopen"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-permitted-cross-domain-policies", "none"),
            ("x-xss-protection", "0"),
            // helmet removes X-Powered-By only
            ("server", "hyper/1.0"),
        ])
    );
}

#[tokio::test]
async fn golden_owasp() {
    let res = run_with(
        SecureHeaders::owasp(),
        https("/"),
        StatusCode::OK,
        vec![
            ("x-aspnet-version", "4.0"),
            ("x-envoy-upstream-service-time", "3"),
            ("sourcemap", "/a.map"),
        ],
        None,
    )
    .await;
    assert_eq!(
        listing(res.headers()),
        expect(&[
            ("cache-control", "no-store, max-age=0"),
            (
                "content-security-policy",
                "default-src 'self'; form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; upgrade-insecure-requests"
            ),
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            (
                "permissions-policy",
                "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(self), usb=(), web-share=(), xr-spatial-tracking=(), clipboard-read=(), clipboard-write=(), gamepad=(), hid=(), idle-detection=(), interest-cohort=(), serial=(), unload=()"
            ),
            ("referrer-policy", "no-referrer"),
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains"
            ),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-frame-options", "deny"),
            ("x-permitted-cross-domain-policies", "none"),
        ])
    );
    assert!(!res.headers().contains_key("clear-site-data"));
    let layer = SecureHeaders::owasp().build().unwrap();
    assert_eq!(layer.removed_headers().len(), OWASP_REMOVE_LIST.len());
}

#[tokio::test]
async fn golden_api() {
    let res = run(SecureHeaders::api(), https("/")).await;
    assert_eq!(
        listing(res.headers()),
        expect(&[
            ("cache-control", "no-store"),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'"
            ),
            ("cross-origin-resource-policy", "same-origin"),
            ("referrer-policy", "no-referrer"),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains"
            ),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
        ])
    );
}

#[tokio::test]
async fn hsts_only_over_known_https_and_never_for_localhost() {
    let has = |res: &Response<String>| res.headers().contains_key("strict-transport-security");
    // plain HTTP: no
    assert!(!has(&run(
        SecureHeaders::builder(),
        plain("api.example.com")
    )
    .await));
    // https URI: yes
    assert!(has(&run(SecureHeaders::builder(), https("/")).await));
    // https but localhost / loopback: never
    for host in [
        "localhost",
        "localhost:8443",
        "127.0.0.1",
        "[::1]:8443",
        "dev.localhost",
    ] {
        let req = Request::get(format!("https://{host}/")).body(()).unwrap();
        assert!(!has(&run(SecureHeaders::builder(), req).await), "{host}");
        let req = Request::get(format!("https://{host}/")).body(()).unwrap();
        assert!(
            !has(&run(SecureHeaders::builder().hsts(Hsts::new().always()), req).await),
            "{host} always"
        );
    }
    // always: yes over plain HTTP too
    assert!(has(&run(
        SecureHeaders::builder().hsts(Hsts::new().always()),
        plain("api.example.com")
    )
    .await));
    // disabled
    assert!(!has(&run(
        SecureHeaders::builder().without("strict-transport-security"),
        https("/")
    )
    .await));
}

fn proxied(peer: &str, proto: &str) -> Request<()> {
    let mut r = Request::get("/")
        .header("host", "api.example.com")
        .header("x-forwarded-proto", proto)
        .body(())
        .unwrap();
    r.extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    r
}

#[tokio::test]
async fn hsts_believes_x_forwarded_proto_only_from_trusted_proxies() {
    let has = |res: &Response<String>| res.headers().contains_key("strict-transport-security");
    let trusting = || {
        SecureHeaders::builder()
            .client_ip(ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap())
    };
    assert!(has(
        &run(trusting(), proxied("10.1.2.3:4000", "https")).await
    ));
    assert!(!has(
        &run(trusting(), proxied("10.1.2.3:4000", "http")).await
    ));
    // the header from anyone else is ignored
    assert!(!has(
        &run(trusting(), proxied("203.0.113.9:4000", "https")).await
    ));
    // no trusted proxies configured: ignored even from 10/8
    assert!(!has(&run(
        SecureHeaders::builder(),
        proxied("10.1.2.3:4000", "https")
    )
    .await));
    // IPv4-mapped IPv6 peer of a trusted proxy
    assert!(has(&run(
        trusting(),
        proxied("[::ffff:10.1.2.3]:4000", "https")
    )
    .await));
    // no peer address at all
    let mut r = proxied("10.1.2.3:4000", "https");
    r.extensions_mut().remove::<SocketAddr>();
    assert!(!has(&run(trusting(), r).await));
    // the rightmost X-Forwarded-Proto element is the nearest proxy's word
    let mut r = proxied("10.1.2.3:4000", "https");
    r.headers_mut()
        .append("x-forwarded-proto", "http".parse().unwrap());
    assert!(!has(&run(trusting(), r).await));
    assert!(has(&run(
        trusting(),
        proxied("10.1.2.3:4000", "http, HTTPS")
    )
    .await));
}

#[tokio::test]
async fn hsts_believes_forwarded_proto_with_a_forwarded_strategy_only() {
    use tower_shield::client_ip::ForwardingHeader;
    let has = |res: &Response<String>| res.headers().contains_key("strict-transport-security");
    let strategy = ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap();
    let forwarded = |value: &'static str| {
        let mut r = Request::get("/").body(()).unwrap();
        r.headers_mut()
            .insert("host", "api.example.com".parse().unwrap());
        r.headers_mut().insert("forwarded", value.parse().unwrap());
        r.extensions_mut()
            .insert("10.1.2.3:4000".parse::<SocketAddr>().unwrap());
        r
    };
    let by_forwarded =
        || SecureHeaders::builder().client_ip(strategy.clone().header(ForwardingHeader::Forwarded));
    let last_https = "for=192.0.2.1;proto=http, for=192.0.2.2;proto=\"https\"";
    assert!(has(&run(by_forwarded(), forwarded(last_https)).await));
    assert!(!has(&run(
        by_forwarded(),
        forwarded("for=192.0.2.1;proto=https, for=192.0.2.2")
    )
    .await));
    // a malformed element is nobody's word
    assert!(!has(&run(
        by_forwarded(),
        forwarded("for=192.0.2.2;proto=https;proto=https")
    )
    .await));
    // a strategy that reads X-Forwarded-For believes X-Forwarded-Proto, not Forwarded
    assert!(!has(&run(
        SecureHeaders::builder().client_ip(strategy.clone()),
        forwarded(last_https)
    )
    .await));
}

#[tokio::test]
async fn hsts_preload_only_when_asked_and_valid() {
    let res = run(
        SecureHeaders::builder().hsts(Hsts::new().preload()),
        https("/"),
    )
    .await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains; preload"
    );
    let err = SecureHeaders::builder()
        .hsts(Hsts::new().max_age(Duration::from_secs(60)).preload())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("preload"));
}

#[tokio::test]
async fn build_reports_every_problem_at_once() {
    let err = SecureHeaders::builder()
        .csp(Csp::builder().script_src(["self"]).report_to("csp"))
        .header("bad header", "x")
        .header("x-ok", "line\nbreak")
        .header("content-security-policy", "default-src *")
        .remove("x-frame-options")
        .reporting_endpoint("Bad Name", "https://r.example/\"x")
        .merge("x-frame-option", Merge::Override)
        .build()
        .unwrap_err();
    let messages: Vec<String> = err
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.setting(), p.message()))
        .collect();
    let all = messages.join("\n");
    for needle in [
        "did you mean 'self'",
        "no `default-src`",
        "not a valid header name",
        "not a valid header value",
        "with `csp(",
        "both sent and removed",
        "not an endpoint name",
        "not a URL",
        "`report-to csp` names no endpoint",
        "a merge rule for `x-frame-option`, which this layer does not send",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[tokio::test]
async fn report_only_beside_enforcing_and_reporting_endpoints() {
    let res = run(
        SecureHeaders::builder()
            .csp(Csp::api())
            .csp_report_only(
                Csp::api()
                    .replace("default-src", ["'none'"])
                    .directive("require-trusted-types-for", ["'script'"])
                    .report_to("csp"),
            )
            .reporting_endpoint("csp", "https://reports.example.com/csp"),
        https("/"),
    )
    .await;
    let h = res.headers();
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(
        h["content-security-policy-report-only"],
        "default-src 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; report-to csp"
    );
    assert_eq!(
        h["reporting-endpoints"],
        "csp=\"https://reports.example.com/csp\""
    );
}

fn nonce_policy() -> SecureHeadersBuilder {
    SecureHeaders::builder()
        .csp(
            Csp::recommended()
                .replace("script-src", ["'strict-dynamic'"])
                .replace("style-src", ["'self'"])
                .nonce("script-src")
                .nonce("style-src"),
        )
        .csp_report_only(
            Csp::builder()
                .default_src(["'none'"])
                .script_src(["'self'"])
                .nonce("script-src"),
        )
}

#[tokio::test]
async fn nonce_is_fresh_reaches_the_handler_and_is_spliced_into_the_policy() {
    let layer = nonce_policy().build().unwrap();
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<()>| async move {
                let nonce = req
                    .extensions()
                    .get::<CspNonce>()
                    .copied()
                    .expect("nonce extension");
                Ok::<_, Infallible>(Response::new(nonce.to_string()))
            }));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let res = svc.clone().oneshot(https("/")).await.unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let ro = res.headers()["content-security-policy-report-only"]
            .to_str()
            .unwrap()
            .to_string();
        let nonce = res.into_body();
        assert_eq!(nonce.len(), 24);
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        );
        assert!(
            csp.contains(&format!("script-src 'strict-dynamic' 'nonce-{nonce}';")),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src 'self' 'nonce-{nonce}';")),
            "{csp}"
        );
        assert_eq!(csp.matches("'nonce-").count(), 2);
        assert_eq!(
            ro,
            format!("default-src 'none'; script-src 'self' 'nonce-{nonce}'")
        );
        assert!(seen.insert(nonce), "a nonce repeated");
    }
}

#[tokio::test]
async fn no_nonce_extension_unless_the_policy_asks() {
    let svc = ServiceBuilder::new()
        .layer(SecureHeaders::builder().build().unwrap())
        .service(service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(
                req.extensions().get::<CspNonce>().is_some().to_string(),
            ))
        }));
    let res = svc.oneshot(https("/")).await.unwrap();
    assert_eq!(res.into_body(), "false");
}

#[tokio::test]
async fn handler_value_wins_by_default() {
    let res = run_with(
        SecureHeaders::builder(),
        https("/"),
        StatusCode::OK,
        vec![
            ("x-frame-options", "SAMEORIGIN"),
            (
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'self'",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(
        res.headers()
            .get_all("x-frame-options")
            .iter()
            .collect::<Vec<_>>(),
        ["SAMEORIGIN"]
    );
    assert_eq!(
        res.headers()
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .count(),
        1
    );
    assert_eq!(
        res.headers()[CONTENT_SECURITY_POLICY],
        "default-src 'self'; frame-ancestors 'self'"
    );
    // the nonce policy also leaves the handler's own CSP alone
    let res = run_with(
        nonce_policy(),
        https("/"),
        StatusCode::OK,
        vec![("content-security-policy", "default-src 'self'")],
        None,
    )
    .await;
    assert_eq!(res.headers()[CONTENT_SECURITY_POLICY], "default-src 'self'");
}

#[test]
fn append_is_refused_for_a_field_that_takes_one_value() {
    for (name, builder) in [
        (
            "x-frame-options",
            SecureHeaders::builder().merge("X-Frame-Options", Merge::Append),
        ),
        (
            "cross-origin-opener-policy",
            SecureHeaders::builder().merge("cross-origin-opener-policy", Merge::Append),
        ),
        (
            "strict-transport-security",
            SecureHeaders::builder().merge("strict-transport-security", Merge::Append),
        ),
    ] {
        let err = builder.build().unwrap_err();
        let problem = &err.problems()[0];
        assert_eq!(problem.setting(), "secure_headers.merge");
        assert!(problem.message().contains(name), "{}", problem.message());
        assert!(problem.message().contains("takes one value"));
    }
    // As the default, every such field of the set is named at once.
    let err = SecureHeaders::builder()
        .default_merge(Merge::Append)
        .build()
        .unwrap_err();
    let all = err.to_string();
    for name in [
        "x-frame-options",
        "x-content-type-options",
        "strict-transport-security",
    ] {
        assert!(all.contains(name), "{all}");
    }
    // Fields that are lists may be appended to.
    SecureHeaders::builder()
        .merge("content-security-policy", Merge::Append)
        .merge("referrer-policy", Merge::Append)
        .build()
        .unwrap();
}

#[tokio::test]
async fn override_and_append_merges() {
    let handler = vec![
        ("x-frame-options", "SAMEORIGIN"),
        ("content-security-policy", "script-src https://cdn.example"),
    ];
    let res = run_with(
        SecureHeaders::builder()
            .merge("X-Frame-Options", Merge::Override)
            .merge("content-security-policy", Merge::Append),
        https("/"),
        StatusCode::OK,
        handler.clone(),
        None,
    )
    .await;
    assert_eq!(
        res.headers()
            .get_all("x-frame-options")
            .iter()
            .collect::<Vec<_>>(),
        ["DENY"]
    );
    assert_eq!(
        res.headers()
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .collect::<Vec<_>>(),
        ["script-src https://cdn.example", DEFAULT_CSP]
    );
    // default_merge applies to all
    let res = run_with(
        SecureHeaders::builder().default_merge(Merge::Override),
        https("/"),
        StatusCode::OK,
        handler,
        None,
    )
    .await;
    assert_eq!(listing(res.headers()), expect(&default_set()));
}

#[tokio::test]
async fn a_route_can_skip_some_or_all_headers() {
    let res = run_with(
        SecureHeaders::builder().default_merge(Merge::Override),
        https("/"),
        StatusCode::OK,
        vec![("content-security-policy", "default-src *")],
        Some(SkipSecureHeaders::only([CONTENT_SECURITY_POLICY])),
    )
    .await;
    assert_eq!(res.headers()[CONTENT_SECURITY_POLICY], "default-src *");
    assert_eq!(res.headers()["x-frame-options"], "DENY");

    let res = run_with(
        SecureHeaders::builder(),
        https("/"),
        StatusCode::OK,
        vec![],
        Some(SkipSecureHeaders::all()),
    )
    .await;
    assert!(res.headers().is_empty(), "{:?}", res.headers());
}

#[tokio::test]
async fn custom_headers_removals_and_without() {
    let res = run_with(
        SecureHeaders::builder()
            .header("Permissions-Policy", "camera=(), geolocation=()")
            .header("X-Frame-Options", "SAMEORIGIN")
            .without("x-download-options")
            .without("content-security-policy")
            .remove("x-request-debug")
            .remove_owasp_banners(),
        https("/"),
        StatusCode::OK,
        vec![
            ("x-request-debug", "1"),
            ("x-generator", "cms"),
            (CONTENT_TYPE.as_str(), "text/plain"),
        ],
        None,
    )
    .await;
    let h = res.headers();
    assert_eq!(h["permissions-policy"], "camera=(), geolocation=()");
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert_eq!(h[CONTENT_TYPE], "text/plain");
    for gone in [
        "x-download-options",
        "content-security-policy",
        "x-request-debug",
        "x-generator",
        "server",
        "x-powered-by",
    ] {
        assert!(!h.contains_key(gone), "{gone}");
    }
}

#[tokio::test]
async fn inner_errors_pass_through() {
    let svc = ServiceBuilder::new()
        .layer(SecureHeaders::builder().build().unwrap())
        .service(service_fn(|_req: Request<()>| async {
            Err::<Response<String>, _>("boom")
        }));
    assert_eq!(svc.oneshot(https("/")).await.unwrap_err(), "boom");
}

#[tokio::test]
async fn axum_router_404_and_nonce_extractor() {
    use axum::{Extension, Router, routing::get};
    let app = Router::new()
        .route(
            "/page",
            get(|Extension(nonce): Extension<CspNonce>| async move { nonce.to_string() }),
        )
        .route(
            "/embed",
            get(|| async {
                (
                    Extension(SkipSecureHeaders::only([http::header::X_FRAME_OPTIONS])),
                    [(
                        CONTENT_SECURITY_POLICY,
                        "default-src 'self'; frame-ancestors https://partner.example",
                    )],
                    "embeddable",
                )
            }),
        )
        .layer(nonce_policy().build().unwrap());

    let res = app
        .clone()
        .oneshot(
            Request::get("https://example.com/nope")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("'nonce-")
    );

    let res = app
        .clone()
        .oneshot(
            Request::get("https://example.com/page")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let csp = res.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    let nonce = std::str::from_utf8(&body).unwrap();
    assert!(csp.contains(&format!("'nonce-{nonce}'")));

    let res = app
        .oneshot(
            Request::get("https://example.com/embed")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(!res.headers().contains_key("x-frame-options"));
    assert_eq!(
        res.headers()[CONTENT_SECURITY_POLICY],
        "default-src 'self'; frame-ancestors https://partner.example"
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Arbitrary Host, X-Forwarded-Proto and Forwarded bytes never panic, and HSTS never
        /// goes out over plain HTTP from an untrusted peer.
        #[test]
        fn hostile_request_headers_never_panic(host in proptest::collection::vec(any::<u8>(), 0..40),
                                               proto in proptest::collection::vec(any::<u8>(), 0..40),
                                               fwd in proptest::collection::vec(any::<u8>(), 0..40)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut req = Request::get("/").body(()).unwrap();
            for (name, v) in [("host", &host), ("x-forwarded-proto", &proto), ("forwarded", &fwd)] {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    req.headers_mut().insert(name, v);
                }
            }
            req.extensions_mut().insert("198.51.100.1:1".parse::<SocketAddr>().unwrap());
            let res = rt.block_on(run(SecureHeaders::builder().client_ip(ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap()), req));
            prop_assert!(!res.headers().contains_key("strict-transport-security"));
            prop_assert_eq!(res.headers()["x-xss-protection"].as_bytes(), b"0");
        }
    }
}
