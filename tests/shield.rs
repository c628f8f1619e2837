//! The whole stack from one `Config`: which layers the configuration turns on, the order a
//! request meets them in, and every configuration problem reported at once.
#![cfg(feature = "shield")]

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Method, Request, Response, StatusCode};
use tower::ServiceExt;
use tower_shield::limiter::Quota;
use tower_shield::rate_limit::{Policy, Scope};
use tower_shield::sanitize::{Field, InputSanitizer};
use tower_shield::secure_headers::Csp;
use tower_shield::{Shield, ShieldLayer};

mod common;
use common::{block_on, config};

const ORIGIN: &str = "https://app.example";

fn app(shield: ShieldLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/notes", post(|body: String| async move { body }))
        .layer(shield)
}

fn request(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    common::req(method, path, "198.51.100.7:40000", headers).map(|_| Body::from(body.to_owned()))
}

/// The response's head and its body as text.
async fn respond(app: &Router, req: Request<Body>) -> (Response<()>, String) {
    let (parts, body) = common::send(app, req).await.into_parts();
    (
        Response::from_parts(parts, ()),
        common::body(Response::new(body)).await,
    )
}

#[tokio::test]
async fn the_defaults_turn_on_headers_limits_and_the_log_but_not_cors() {
    let app = app(Shield::from_config(&config(&[])).unwrap());
    let (res, body) = respond(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
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
        let (res, body) = respond(&app, request(Method::GET, "/", &[], "")).await;
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
        let (res, _) = respond(&app, request(Method::OPTIONS, "/notes", &preflight, "")).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
    }
    for _ in 0..2 {
        let (res, _) = respond(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let (res, body) = respond(&app, request(Method::GET, "/", &[("origin", ORIGIN)], "")).await;
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
    let shield = config(&[])
        .shield_builder()
        .map_rate_limit(|limits| {
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
    let (res, body) = respond(
        &app,
        request(Method::POST, "/notes", &json, r#"{"text":"<b>hi</b>"}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(body.contains("text") && !body.contains("<b>"), "{body}");
    // the one admission is spent: the next body is refused unread
    let (res, _) = respond(
        &app,
        request(Method::POST, "/notes", &json, "not even JSON"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_builder_adjusts_the_configured_headers() {
    let shield = config(&[])
        .shield_builder()
        .map_secure_headers(|headers| {
            headers.csp(Csp::builder().directive("default-src", ["'none'"]))
        })
        .build()
        .unwrap();
    let (res, _) = respond(&app(shield), request(Method::GET, "/", &[], "")).await;
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'"
    );
}

#[test]
fn every_problem_of_every_layer_is_reported_at_once() {
    let err = config(&[("CORS_ENABLED", "true"), ("ALLOWED_ORIGINS", "*")])
        .shield_builder()
        .map_secure_headers(|headers| headers.csp(Csp::builder().directive("script-src", ["self"])))
        .map_rate_limit(|limits| {
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

/// A handler's response as the shield gets it: `fields` in order (a repeated name is a further
/// value), optionally `SkipSecureHeaders`, and a header map either at its natural size or with
/// room for everything the layers add.
fn handler_response(
    fields: &[(&'static str, &'static str)],
    skip: Option<tower_shield::secure_headers::SkipSecureHeaders>,
    roomy: bool,
) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    if roomy {
        *res.headers_mut() = http::HeaderMap::with_capacity(64);
    }
    for (name, value) in fields {
        res.headers_mut()
            .append(*name, http::HeaderValue::from_static(value));
    }
    if let Some(skip) = skip {
        res.extensions_mut().insert(skip);
    }
    res
}

/// Every field but the request id (random), by name, values in order.
fn fields_by_name(headers: &http::HeaderMap) -> std::collections::BTreeMap<String, Vec<String>> {
    headers
        .keys()
        .filter(|name| *name != "x-request-id")
        .map(|name| {
            let values = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            (name.to_string(), values)
        })
        .collect()
}

/// The two ways the shield decorates a handler's response give the same fields: seeding a
/// small map with the prepared security headers (then putting the response's own back over
/// them), and inserting header by header into a map with room to spare.
#[test]
fn seeding_the_security_headers_changes_no_field() {
    use proptest::prelude::*;
    use tower::Layer;
    use tower_shield::secure_headers::SkipSecureHeaders;

    const NAMES: &[&str] = &[
        "content-security-policy",
        "x-frame-options",
        "cross-origin-opener-policy",
        "x-xss-protection",
        "referrer-policy",
        "x-permitted-cross-domain-policies",
        "server",
        "x-powered-by",
        "vary",
        "set-cookie",
        "content-type",
        "x-total-count",
    ];
    const VALUES: &[&str] = &["a", "b=1", "same-origin", "0", "SAMEORIGIN"];

    let run = |fields: &[(&'static str, &'static str)], skip: u8, roomy: bool| {
        let shield = Shield::from_config(&config(&[
            ("CORS_ENABLED", "true"),
            ("ALLOWED_ORIGINS", ORIGIN),
        ]))
        .unwrap();
        let fields = fields.to_vec();
        let handler = tower::service_fn(move |_req: Request<Body>| {
            let skip = match skip {
                0 => None,
                1 => Some(SkipSecureHeaders::all()),
                _ => Some(SkipSecureHeaders::only([http::header::X_FRAME_OPTIONS])),
            };
            let res = handler_response(&fields, skip, roomy);
            async move { Ok::<_, std::convert::Infallible>(res) }
        });
        let svc = shield.layer(handler);
        let res =
            block_on(svc.oneshot(request(Method::GET, "/", &[("origin", ORIGIN)], ""))).unwrap();
        fields_by_name(res.headers())
    };

    let field = (0..NAMES.len(), 0..VALUES.len()).prop_map(|(n, v)| (NAMES[n], VALUES[v]));
    proptest!(|(fields in proptest::collection::vec(field, 0..40), skip in 0u8..3)| {
        let seeded = run(&fields, skip, false);
        let inserted = run(&fields, skip, true);
        prop_assert_eq!(&seeded, &inserted);
        // and the response's own fields won, in their order, banners aside
        for (name, _) in &fields {
            if *name == "server" || *name == "x-powered-by" {
                prop_assert!(!seeded.contains_key(*name));
                continue;
            }
            let own: Vec<&str> = fields.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect();
            let got = &seeded[*name];
            if *name != "vary" {
                prop_assert_eq!(got, &own, "{}", name);
            }
        }
    });
}

/// A response that already carries some of the security headers, with the very values the
/// layer hands out (`static_headers`), still gets the others: only the shield's own seeding,
/// never a look-alike, spares the layer its work.
#[tokio::test]
async fn copies_of_the_security_headers_do_not_pass_for_a_seeded_response() {
    use tower::Layer;
    use tower_shield::secure_headers::SecureHeaders;

    let defaults = SecureHeaders::builder().build().unwrap();
    let copied: Vec<(http::HeaderName, http::HeaderValue)> = defaults
        .static_headers()
        .filter(|(name, _)| *name != http::header::X_FRAME_OPTIONS)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    assert!(copied.len() >= 2);
    let shield = Shield::from_config(&config(&[])).unwrap();
    let handler = tower::service_fn(move |_req: Request<Body>| {
        let mut res = Response::new(Body::empty());
        // room to spare, so the shield does not seed it
        *res.headers_mut() = http::HeaderMap::with_capacity(64);
        for (name, value) in &copied {
            res.headers_mut().insert(name.clone(), value.clone());
        }
        async move { Ok::<_, std::convert::Infallible>(res) }
    });
    let res = shield
        .layer(handler)
        .oneshot(request(Method::GET, "/", &[], ""))
        .await
        .unwrap();
    assert_eq!(res.headers()[http::header::X_FRAME_OPTIONS], "DENY");
    for (name, value) in defaults.static_headers() {
        assert_eq!(
            res.headers().get_all(name).iter().collect::<Vec<_>>(),
            [value]
        );
    }
}
