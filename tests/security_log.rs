//! Black-box tests of the SecurityLog layer and the SecurityEvent vocabulary: events are
//! captured with a recording `tracing` layer (scoped with `with_default`, so tests do not see
//! each other's events), and with `tracing_subscriber`'s JSON and text formatters.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::client_ip::{ClientIpError, ClientIpStrategy, ForwardingHeader, PeerAddr};
use tower_shield::limiter::ManualClock;
use tower_shield::security_log::escape::{TRUNCATION_MARKER, escape, needs_escape};
use tower_shield::security_log::{
    AuthOutcome, Coalescer, EventLogged, Malicious, RequestId, SecurityEvent, SecurityLog,
    SecurityLogBuilder, subject_hash,
};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

mod common;
// Into a map: a span's later `record` overwrites the value it was opened with.
use common::{FieldVisitor, block_on};

// ---------------------------------------------------------------------------------------
// A recording subscriber.

/// One span or event as a subscriber saw it, every field as the string it was recorded as.
#[derive(Clone, Debug)]
struct Rec {
    kind: &'static str, // "span" or "event"
    target: String,
    level: tracing::Level,
    name: String,
    fields: BTreeMap<String, String>,
    /// For an event: the `request_id` of the span it happened in.
    span_request_id: Option<String>,
}

impl Rec {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Recorder {
    recs: Arc<Mutex<Vec<Rec>>>,
    spans: Arc<Mutex<BTreeMap<u64, usize>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        let meta = attrs.metadata();
        let mut recs = self.recs.lock().unwrap();
        self.spans.lock().unwrap().insert(id.into_u64(), recs.len());
        recs.push(Rec {
            kind: "span",
            target: meta.target().to_owned(),
            level: *meta.level(),
            name: meta.name().to_owned(),
            fields,
            span_request_id: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let index = self.spans.lock().unwrap()[&id.into_u64()];
        let mut recs = self.recs.lock().unwrap();
        values.record(&mut FieldVisitor(&mut recs[index].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        let span_index = ctx
            .event_span(event)
            .and_then(|s| self.spans.lock().unwrap().get(&s.id().into_u64()).copied());
        let mut recs = self.recs.lock().unwrap();
        let span_request_id = span_index.and_then(|i| recs[i].fields.get("request_id").cloned());
        let meta = event.metadata();
        recs.push(Rec {
            kind: "event",
            target: meta.target().to_owned(),
            level: *meta.level(),
            name: meta.name().to_owned(),
            fields,
            span_request_id,
        });
    }
}

/// Runs `f` with only the recorder listening, and returns what it recorded.
fn capture(f: impl FnOnce()) -> Vec<Rec> {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::with_default(subscriber, f);
    recorder.recs.lock().unwrap().clone()
}

/// A coalescer that lets everything through, so tests never depend on each other.
fn open_coalescer() -> Arc<Coalescer> {
    Arc::new(Coalescer::new(u32::MAX, Duration::from_secs(60), 1024).unwrap())
}

fn builder() -> SecurityLogBuilder {
    SecurityLog::builder().coalescer(open_coalescer())
}

/// Sends `req` through a SecurityLog built by `builder` around a handler answering `status`
/// (and `outcome`/`logged` extensions), while recording.
fn run(
    builder: SecurityLogBuilder,
    req: Request<()>,
    status: StatusCode,
    outcome: Option<AuthOutcome>,
    logged: bool,
) -> (Response<Option<String>>, Vec<Rec>) {
    let layer = builder.build().unwrap();
    let mut out = None;
    let recs = capture(|| {
        let svc = ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(move |req: Request<()>| {
                let outcome = outcome.clone();
                async move {
                    tracing::info!(target: "app", "handler ran");
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .map(|id| id.as_str().to_owned());
                    let mut res = Response::new(id);
                    *res.status_mut() = status;
                    if let Some(o) = outcome {
                        res.extensions_mut().insert(o);
                    }
                    if logged {
                        res.extensions_mut().insert(EventLogged);
                    }
                    Ok::<_, Infallible>(res)
                }
            }));
        out = Some(block_on(svc.oneshot(req)).unwrap());
    });
    (out.unwrap(), recs)
}

fn peer() -> PeerAddr {
    PeerAddr("203.0.113.7:4711".parse::<SocketAddr>().unwrap())
}

fn security(recs: &[Rec]) -> Vec<&Rec> {
    recs.iter()
        .filter(|r| r.kind == "event" && r.target == "tower_shield::security")
        .collect()
}

/// Every recorded string is free of anything a terminal or log reader could act on.
fn assert_inert(recs: &[Rec]) {
    for rec in recs {
        for (name, value) in &rec.fields {
            if let Some(c) = value.chars().find(|&c| needs_escape(c) && c != '\\') {
                panic!("field {name} of {rec:?} holds raw {c:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Table 6.4: hostile inputs.

const SECRETS: [&str; 4] = [
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "session=8f14e45fceea167a5a36dedd4bea2543",
    "ts_live_secretpart_XYZ",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
];

fn hostile_strings() -> Vec<String> {
    vec![
        "x\r\n2026-01-01T00:00:00Z INFO authn_login_success:admin".to_owned(),
        "\u{1b}]0;pwned\u{7} \u{1b}[31mRED".to_owned(),
        "a\u{2028}b\u{2029}c".to_owned(),
        "x".repeat(100 * 1024),
        "\"}{\"event\":\"authz_fail\"".to_owned(),
        "\u{202e}gnp.exe\u{2066}\u{85}\u{9b}31m\u{0}".to_owned(),
    ]
}

#[test]
fn hostile_event_fields_make_one_inert_record_each() {
    let coalescer = open_coalescer();
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    for input in hostile_strings() {
        let recs = capture(|| {
            SecurityEvent::cors_refused(input.as_str(), input.as_str())
                .client_ip(ip)
                .emit_via(&coalescer);
            SecurityEvent::input_validation_fail(input.as_str(), input.as_str())
                .emit_via(&coalescer);
            SecurityEvent::rate_limit_exceeded(input.as_str(), "ip", Some(ip), Some(7), false)
                .emit_via(&coalescer);
            SecurityEvent::auth_attempt(false, Some(input.as_str())).emit_via(&coalescer);
            SecurityEvent::suspicious_activity(Malicious::Sqli, input.as_str())
                .emit_via(&coalescer);
        });
        assert_eq!(recs.len(), 5, "one record per event, no forged record");
        assert_inert(&recs);
        let names: Vec<_> = recs.iter().map(|r| r.get("owasp").unwrap()).collect();
        assert_eq!(
            names,
            [
                "malicious_cors",
                "input_validation_fail",
                "excess_rate_limit_exceeded",
                "authn_login_fail",
                "malicious_sqli"
            ]
        );
        let origin = recs[0].get("origin").unwrap();
        if input.len() > 1000 {
            assert!(origin.ends_with(TRUNCATION_MARKER), "cut with a marker");
            assert!(origin.len() <= 256 + TRUNCATION_MARKER.len());
        }
        assert_eq!(origin, escape(&input, 256));
        assert_eq!(recs[0].get("client_ip"), Some("198.51.100.9"));
    }
}

/// A request carrying the header-legal hostile inputs and every kind of credential.
fn hostile_request(user_agent: &[u8]) -> Request<()> {
    Request::get("/admin/rate-limits?q=1&api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc")
        .header("user-agent", HeaderValue::from_bytes(user_agent).unwrap())
        .header("authorization", format!("Bearer {}", SECRETS[0]))
        .header("cookie", SECRETS[1])
        .header("x-api-key", SECRETS[2])
        .header("x-device-id", "device_123")
        .extension(peer())
        .body(())
        .unwrap()
}

/// Header values cannot hold CR, LF or ESC, but they can hold any byte >= 0x80: U+2028,
/// C1 controls (U+009B is a one-character CSI), bidi controls, invalid UTF-8, 100 KB.
fn hostile_user_agents() -> Vec<Vec<u8>> {
    vec![
        "x INFO authn_login_success:admin".into(),
        "a\u{2028}b\u{2029}c".into(),
        "\u{9b}31mRED\u{85}NEL".into(),
        "\u{202e}txt.exe".into(),
        b"bad\xff\xfeutf8".to_vec(),
        "\"}{\"event\":\"authz_fail\"".into(),
        vec![b'u'; 100 * 1024],
    ]
}

#[test]
fn hostile_requests_log_one_span_one_completion_one_auth_event_and_no_secret() {
    let subjects = tower_shield::limiter::KeyHasher::random();
    for ua in hostile_user_agents() {
        let (res, recs) = run(
            builder().subject_hasher(subjects),
            hostile_request(&ua),
            StatusCode::UNAUTHORIZED,
            None,
            false,
        );
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_inert(&recs);
        let spans: Vec<_> = recs.iter().filter(|r| r.kind == "span").collect();
        assert_eq!(spans.len(), 1);
        let span = spans[0];
        assert_eq!(
            (span.target.as_str(), span.name.as_str()),
            ("tower_shield::request", "request")
        );
        assert_eq!(span.get("path"), Some("/admin/rate-limits"), "no query");
        assert_eq!(span.get("method"), Some("GET"));
        assert_eq!(span.get("client_ip"), Some("203.0.113.7"));
        let logged_ua = span.get("user_agent").unwrap();
        assert!(logged_ua.len() <= 256 + TRUNCATION_MARKER.len());
        if ua.len() > 256 {
            assert!(logged_ua.ends_with(TRUNCATION_MARKER));
        }
        let device = span.get("device_hash").unwrap();
        assert_eq!(device.len(), 8);
        assert_eq!(
            device,
            format!("{:08x}", subject_hash(&subjects, b"device_123"))
        );

        let completed: Vec<_> = recs
            .iter()
            .filter(|r| r.get("event") == Some("request_completed"))
            .collect();
        assert_eq!(completed.len(), 1);
        assert_eq!(completed[0].get("status"), Some("401"));
        assert!(completed[0].get("latency_us").is_some());
        assert_eq!(
            completed[0].span_request_id.as_deref(),
            span.get("request_id")
        );
        let auth = security(&recs);
        assert_eq!(auth.len(), 1, "one auth event: {recs:#?}");
        assert_eq!(auth[0].get("event"), Some("auth_attempt"));
        assert_eq!(auth[0].get("owasp"), Some("authn_login_fail"));
        assert_eq!(auth[0].get("success"), Some("false"));
        assert_eq!(auth[0].get("client_ip"), Some("203.0.113.7"));
        assert_eq!(auth[0].level, tracing::Level::WARN);
        assert_eq!(auth[0].get("status"), Some("401"));
        assert_eq!(auth[0].span_request_id.as_deref(), span.get("request_id"));

        let all = format!("{recs:?}");
        for secret in SECRETS {
            assert!(!all.contains(secret), "{secret} leaked");
        }
        assert!(!all.contains("device_123"), "the raw device id leaked");
        assert!(!all.contains("api_key"));
    }
}

/// A writer into a shared buffer, for `tracing_subscriber::fmt().with_writer`.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Emits every hostile event and sends every hostile request; returns how many lines a
/// formatter should write (one per event: the request's completion and auth events, and the
/// handler's own event).
fn hostile_workload() -> usize {
    let coalescer = open_coalescer();
    let mut expected = 0;
    for input in hostile_strings() {
        SecurityEvent::cors_refused(input.as_str(), input.as_str()).emit_via(&coalescer);
        SecurityEvent::input_validation_fail(input.as_str(), "rule").emit_via(&coalescer);
        expected += 2;
    }
    let layer = builder().build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req: Request<()>| async {
            tracing::info!(target: "app", "handler ran");
            let mut res = Response::new(());
            *res.status_mut() = StatusCode::FORBIDDEN;
            Ok::<_, Infallible>(res)
        }));
    for ua in hostile_user_agents() {
        block_on(svc.clone().oneshot(hostile_request(&ua))).unwrap();
        expected += 3;
    }
    expected
}

#[test]
fn json_output_is_one_object_per_line_for_hostile_input() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(buffer.clone())
        .finish();
    let expected = tracing::subscriber::with_default(subscriber, hostile_workload);
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), expected, "{out}");
    let mut owasp = Vec::new();
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
        assert!(value.is_object());
        if let Some(name) = value["fields"]["owasp"].as_str() {
            owasp.push(name.to_owned());
        }
        assert!(
            !line.chars().any(|c| c.is_control()),
            "raw control in {line}"
        );
    }
    assert!(owasp.iter().any(|o| o == "malicious_cors"));
    assert!(owasp.iter().any(|o| o == "authz_fail"));
    for secret in SECRETS {
        assert!(!out.contains(secret));
    }
    // The request id is on the security events of a request (the span's fields).
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"authz_fail\"") && l.contains("\"request_id\""))
    );
}

#[test]
fn text_output_is_one_line_per_event_without_raw_escapes() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    let expected = tracing::subscriber::with_default(subscriber, hostile_workload);
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert_eq!(out.lines().count(), expected, "{out}");
    assert!(
        !out.chars()
            .any(|c| c != '\n' && needs_escape(c) && c != '\\')
    );
    assert!(!out.contains("\n2026-01-01"), "no forged line");
}

// ---------------------------------------------------------------------------------------
// Request ids.

fn is_generated(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn a_valid_incoming_request_id_is_kept_logged_and_echoed() {
    let req = Request::get("/")
        .header("x-request-id", "edge-7f.3_a")
        .extension(peer())
        .body(())
        .unwrap();
    let (res, recs) = run(builder(), req, StatusCode::OK, None, false);
    assert_eq!(res.headers()["x-request-id"], "edge-7f.3_a");
    assert_eq!(
        res.body().as_deref(),
        Some("edge-7f.3_a"),
        "in the extensions"
    );
    let span = recs.iter().find(|r| r.kind == "span").unwrap();
    assert_eq!(span.get("request_id"), Some("edge-7f.3_a"));
    let handler = recs.iter().find(|r| r.target == "app").unwrap();
    assert_eq!(handler.span_request_id.as_deref(), Some("edge-7f.3_a"));
    assert!(security(&recs).is_empty(), "a 200 is no auth event");
}

#[test]
fn an_invalid_or_absent_request_id_is_replaced_by_a_random_one() {
    let mut seen = Vec::new();
    for incoming in [
        None,
        Some("has space"),
        Some("semi;colon"),
        Some(&*"a".repeat(65)),
        Some(""),
    ] {
        let mut req = Request::get("/").extension(peer());
        if let Some(v) = incoming {
            req = req.header("x-request-id", v);
        }
        let (res, recs) = run(
            builder(),
            req.body(()).unwrap(),
            StatusCode::OK,
            None,
            false,
        );
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(is_generated(&id), "{id}");
        assert_eq!(res.body().as_deref(), Some(id.as_str()));
        let span = recs.iter().find(|r| r.kind == "span").unwrap();
        assert_eq!(span.get("request_id"), Some(id.as_str()));
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "ids are fresh");

    let req = Request::get("/")
        .header("x-request-id", "client-chosen")
        .body(())
        .unwrap();
    let (res, _) = run(
        builder().accept_request_id(false),
        req,
        StatusCode::OK,
        None,
        false,
    );
    assert!(is_generated(
        res.headers()["x-request-id"].to_str().unwrap()
    ));
}

#[test]
fn the_request_id_is_echoed_with_no_subscriber_at_all() {
    let layer = builder().build().unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let req = Request::get("/")
        .header("x-request-id", "abc")
        .body(())
        .unwrap();
    let res = block_on(svc.oneshot(req)).unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc");
}

// ---------------------------------------------------------------------------------------
// Authentication outcomes, client address, device id.

#[test]
fn auth_outcomes_are_logged_once() {
    let req = || Request::get("/").extension(peer()).body(()).unwrap();

    let ok = AuthOutcome::success(Some("ts_live_3f9a".into()));
    let (_, recs) = run(builder(), req(), StatusCode::OK, Some(ok), false);
    let ev = security(&recs);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].get("owasp"), Some("authn_login_success"));
    assert_eq!(ev[0].get("success"), Some("true"));
    assert_eq!(ev[0].get("key_prefix"), Some("ts_live_3f9a"));
    assert_eq!(ev[0].level, tracing::Level::INFO);

    let fail = AuthOutcome::failure(Some("ts_live_3f9a".into()));
    let (_, recs) = run(
        builder(),
        req(),
        StatusCode::UNAUTHORIZED,
        Some(fail),
        false,
    );
    let ev = security(&recs);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].get("owasp"), Some("authn_login_fail"));
    assert_eq!(ev[0].get("key_prefix"), Some("ts_live_3f9a"));

    let (_, recs) = run(builder(), req(), StatusCode::FORBIDDEN, None, false);
    let ev = security(&recs);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].get("event"), ev[0].get("owasp")),
        (Some("auth_attempt"), Some("authz_fail"))
    );

    // Already logged by the layer that refused it: nothing more.
    let (_, recs) = run(builder(), req(), StatusCode::UNAUTHORIZED, None, true);
    assert!(security(&recs).is_empty());

    let (_, recs) = run(
        builder().auth_events(false),
        req(),
        StatusCode::UNAUTHORIZED,
        None,
        false,
    );
    assert!(security(&recs).is_empty());
}

#[test]
fn an_unresolvable_client_is_recorded_as_an_error_kind() {
    let req = Request::get("/").body(()).unwrap(); // no peer address
    let (_, recs) = run(builder(), req, StatusCode::OK, None, false);
    let span = recs.iter().find(|r| r.kind == "span").unwrap();
    assert_eq!(span.get("client_ip"), None);
    assert_eq!(span.get("client_ip_error"), Some("missing_peer"));
    let ev = security(&recs);
    assert_eq!(ev.len(), 1, "the operator is told");
    assert_eq!(ev[0].get("event"), Some("client_unidentified"));
    assert_eq!(ev[0].level, tracing::Level::ERROR);

    let strategy = ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap();
    let req = Request::get("/")
        .header("x-forwarded-for", "\u{1b}[31mnot-an-ip")
        .extension(PeerAddr("10.0.0.5:1".parse::<SocketAddr>().unwrap()))
        .body(());
    // A header value cannot hold ESC; use what a header can hold.
    assert!(req.is_err());
    let req = Request::get("/")
        .header("x-forwarded-for", "not-an-ip")
        .extension(PeerAddr("10.0.0.5:1".parse::<SocketAddr>().unwrap()))
        .body(())
        .unwrap();
    let (_, recs) = run(
        builder().client_ip(strategy),
        req,
        StatusCode::OK,
        None,
        false,
    );
    let span = recs.iter().find(|r| r.kind == "span").unwrap();
    assert_eq!(span.get("client_ip_error"), Some("malformed"));
    assert!(!format!("{recs:?}").contains("not-an-ip"));
}

#[test]
fn client_ip_errors_become_the_right_events() {
    let coalescer = open_coalescer();
    let recs = capture(|| {
        SecurityEvent::client_unidentified(&ClientIpError::MissingPeer).emit_via(&coalescer);
        SecurityEvent::client_unidentified(&ClientIpError::Malformed {
            header: ForwardingHeader::XForwardedFor,
            entry_index: 0,
        })
        .emit_via(&coalescer);
    });
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].get("event"), Some("client_unidentified"));
    assert_eq!(recs[0].level, tracing::Level::ERROR);
    assert_eq!(recs[0].get("error"), Some("missing_peer"));
    assert_eq!(recs[1].get("event"), Some("input_validation_fail"));
    assert_eq!(recs[1].get("field"), Some("X-Forwarded-For"));
    assert_eq!(recs[1].get("rule"), Some("client_ip.malformed"));
}

#[test]
fn an_invalid_device_id_is_not_logged_at_all() {
    for bad in ["has space", "a/b", &"d".repeat(65)] {
        let req = Request::get("/")
            .header("x-device-id", bad)
            .extension(peer())
            .body(())
            .unwrap();
        let (_, recs) = run(builder(), req, StatusCode::OK, None, false);
        let span = recs.iter().find(|r| r.kind == "span").unwrap();
        assert_eq!(span.get("device_hash"), None);
        assert!(!format!("{recs:?}").contains(bad));
    }
}

#[test]
fn every_event_has_the_same_core_fields() {
    let coalescer = open_coalescer();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let recs = capture(|| {
        for event in [
            SecurityEvent::rate_limit_exceeded("search", "session", Some(ip), Some(1), true),
            SecurityEvent::device_rotation_refused(ip, false),
            SecurityEvent::blocked_address(ip),
            SecurityEvent::input_validation_fail("prompt", "max_length"),
            SecurityEvent::auth_attempt(true, None),
            SecurityEvent::access_denied(None),
            SecurityEvent::auth_lockout(300, Some("ts_live_3f9a")),
            SecurityEvent::cors_refused("https://evil.example", "origin not allowed"),
            SecurityEvent::suspicious_activity(Malicious::AttackTool, "sqlmap user agent"),
            SecurityEvent::auth_attempt(false, Some("ts_live_3f9a"))
                .attempts_left(2)
                .status(StatusCode::UNAUTHORIZED),
            SecurityEvent::cors_refused("https://evil.example", "method not allowed")
                .method("PUT\u{1b}[2J"),
            SecurityEvent::auth_unavailable(None),
        ] {
            event.emit_via(&coalescer);
        }
    });
    assert_eq!(recs.len(), 12);
    assert_inert(&recs);
    assert_eq!(recs[9].get("attempts_left"), Some("2"));
    assert_eq!(recs[9].get("status"), Some("401"));
    assert_eq!(recs[10].get("method"), Some(r"PUT\u{1b}[2J"));
    assert_eq!(recs[11].level, tracing::Level::ERROR);
    for rec in &recs {
        assert_eq!(rec.target, "tower_shield::security");
        assert!(
            rec.get("event").is_some() && rec.get("owasp").is_some(),
            "{rec:?}"
        );
    }
    assert_eq!(recs[0].get("subject_hash"), Some("00000001"));
    assert_eq!(recs[0].get("dry_run"), Some("true"));
    assert_eq!(recs[1].get("policy"), Some("device-rotation"));
    assert_eq!(recs[6].get("retry_after_secs"), Some("300"));
    assert_eq!(recs[6].get("reason"), Some("maxretries"));
    assert_eq!(recs[6].get("owasp"), Some("authn_login_lock"));
}

// ---------------------------------------------------------------------------------------
// Flood coalescing.

#[test]
fn a_flood_of_identical_events_is_k_records_and_one_summary() {
    const N: u64 = 1000;
    const K: u32 = 3;
    let clock = ManualClock::new();
    let coalescer = Coalescer::new(K, Duration::from_secs(10), 1024)
        .unwrap()
        .with_clock(clock.clone());
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    let event = SecurityEvent::auth_attempt(false, None).client_ip(ip);
    let other = SecurityEvent::cors_refused("https://evil.example", "origin not allowed");

    let recs = capture(|| {
        for _ in 0..N {
            event.emit_via(&coalescer);
        }
        other.emit_via(&coalescer); // a different event is not suppressed
        clock.advance(Duration::from_secs(10));
        event.emit_via(&coalescer); // the summary, then this one
    });
    assert_eq!(recs.len(), K as usize + 1 + 1 + 1, "{recs:#?}");
    let summary = &recs[K as usize + 1];
    assert_eq!(
        summary.get("suppressed"),
        Some(&*(N - u64::from(K)).to_string())
    );
    assert_eq!(summary.get("owasp"), Some("authn_login_fail"));
    assert_eq!(summary.get("client_ip"), Some("198.51.100.9"));
    assert_eq!(recs[K as usize + 2].get("suppressed"), None);
    assert!(
        recs[..K as usize]
            .iter()
            .all(|r| r.get("suppressed").is_none())
    );

    // flush() reports what is pending without waiting for the window.
    let recs = capture(|| {
        for _ in 0..10 {
            event.emit_via(&coalescer);
        }
        coalescer.flush();
    });
    // 2 more pass in this window (1 already did), 8 are suppressed, then one summary.
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2].get("suppressed"), Some("8"));
    assert_eq!(coalescer.pending(), 0);
}

#[test]
fn the_table_is_bounded_and_evicted_counts_are_reported() {
    let clock = ManualClock::new();
    let coalescer = Coalescer::new(1, Duration::from_secs(60), 4)
        .unwrap()
        .with_class_budget(u32::MAX)
        .with_clock(clock.clone());
    let recs = capture(|| {
        for i in 0..100u32 {
            let rule = i.to_string();
            let event = SecurityEvent::input_validation_fail("field", rule.as_str());
            event.emit_via(&coalescer);
            event.emit_via(&coalescer); // suppressed
            clock.advance(Duration::from_millis(1));
        }
    });
    assert!(coalescer.tracked() <= 4);
    let summaries = recs
        .iter()
        .filter(|r| r.get("suppressed").is_some())
        .count();
    assert_eq!(summaries, 96, "every evicted entry reported its count");
    assert_eq!(coalescer.pending(), 4);
}

#[test]
fn a_flood_of_distinct_events_is_held_to_the_class_budget() {
    let clock = ManualClock::new();
    let coalescer = Coalescer::new(5, Duration::from_secs(60), 1024)
        .unwrap()
        .with_class_budget(50)
        .with_clock(clock.clone());
    let recs = capture(|| {
        // 10 000 addresses, each refused once: every event distinct.
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            SecurityEvent::rate_limit_exceeded("ip", "ip", Some(ip), None, false)
                .emit_via(&coalescer);
        }
        // Another kind still gets through.
        SecurityEvent::auth_attempt(false, None).emit_via(&coalescer);
        clock.advance(Duration::from_secs(60));
        coalescer.flush_expired();
    });
    assert_eq!(recs.len(), 50 + 1 + 1, "bounded log");
    let summary = recs.last().unwrap();
    assert_eq!(summary.get("suppressed"), Some("9950"));
    assert_eq!(summary.get("event"), Some("rate_limit_exceeded"));
    assert_eq!(summary.get("client_ip"), None, "not one client's doing");
    assert!(summary.get("reason").unwrap().starts_with("flood"));
    assert!(coalescer.tracked() <= 1024);
}

#[test]
fn builder_and_coalescer_errors_list_every_problem() {
    let err = SecurityLog::builder()
        .max_field_len(0)
        .request_id_header(http::header::AUTHORIZATION)
        .device_header(Some(http::header::COOKIE))
        .build()
        .unwrap_err();
    assert_eq!(err.problems().len(), 3, "{err}");
    let err = Coalescer::new(0, Duration::ZERO, 0).unwrap_err();
    assert_eq!(err.problems().len(), 3, "{err}");
}

// ---------------------------------------------------------------------------------------
// Escaping, by property.

proptest! {
    #[test]
    fn escaped_text_is_inert_and_bounded(text in any::<String>(), max in 0usize..300) {
        let out = escape(&text, max);
        prop_assert!(!out.chars().any(|c| c.is_control()));
        prop_assert!(!out.chars().any(is_line_or_bidi));
        prop_assert!(out.len() <= max + TRUNCATION_MARKER.len());
        if text.len() <= max && !text.chars().any(needs_escape) {
            prop_assert_eq!(&*out, &*text);
        }
    }

    #[test]
    fn escaped_bytes_are_inert_and_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..400), max in 0usize..300) {
        let out = tower_shield::security_log::escape::escape_bytes(&bytes, max);
        prop_assert!(!out.chars().any(needs_escape_but_backslash));
        prop_assert!(out.len() <= max + TRUNCATION_MARKER.len());
    }

    #[test]
    fn untruncated_escapes_are_reversible(text in "[\\PC\\p{Cc}\u{2028}\u{202e}\\\\]{0,40}") {
        let out = escape(&text, 10_000);
        prop_assert_eq!(unescape(&out), text);
    }
}

fn is_line_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
    )
}

fn needs_escape_but_backslash(c: char) -> bool {
    needs_escape(c) && c != '\\'
}

/// The inverse of `escape` on untruncated text: a check that escaping loses nothing.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => panic!("bad escape {other:?}"),
        }
    }
    out
}

#[test]
fn a_layer_has_a_coalescer_of_its_own_with_the_default_settings() {
    let reason = format!("default-{}", std::process::id());
    let layer = SecurityLog::builder().build().unwrap();
    let recs = capture(|| {
        for _ in 0..20 {
            SecurityEvent::suspicious_activity(Malicious::Excess404, reason.as_str())
                .emit_via(layer.coalescer());
        }
    });
    let per_window = Coalescer::default().per_window() as usize;
    assert_eq!(layer.coalescer().per_window() as usize, per_window);
    assert_eq!(recs.len(), per_window.min(20));
    assert_eq!(recs[0].get("owasp"), Some("malicious_excess_404"));
    assert_eq!(recs[0].get("reason"), Some(reason.as_str()));
}

#[test]
fn two_differently_configured_layers_do_not_share_coalescing_state() {
    let strict = SecurityLog::builder()
        .coalescer(Arc::new(
            Coalescer::new(1, Duration::from_secs(60), 16).unwrap(),
        ))
        .build()
        .unwrap();
    let lenient = SecurityLog::builder()
        .coalescer(Arc::new(
            Coalescer::new(3, Duration::from_secs(60), 16).unwrap(),
        ))
        .build()
        .unwrap();
    let default_a = SecurityLog::builder().build().unwrap();
    let default_b = SecurityLog::builder().build().unwrap();
    let event = SecurityEvent::suspicious_activity(Malicious::Excess404, "same event");
    let logged = |layer: &tower_shield::security_log::SecurityLogLayer| {
        capture(|| {
            for _ in 0..5 {
                event.emit_via(layer.coalescer());
            }
        })
        .len()
    };
    // The same five events: each layer counts them against its own settings and table.
    assert_eq!(logged(&strict), 1);
    assert_eq!(logged(&lenient), 3);
    assert_eq!(
        (strict.coalescer().pending(), lenient.coalescer().pending()),
        (4, 2)
    );
    // Two layers with the same settings do not share a table either.
    assert_eq!(logged(&default_a), 5);
    assert_eq!(logged(&default_b), 5);
    assert_eq!(default_b.coalescer().pending(), 0);
    assert!(!Arc::ptr_eq(default_a.coalescer(), default_b.coalescer()));
}

// ---------------------------------------------------------------------------------------
// With other layers and axum.

#[test]
fn another_layers_event_carries_the_request_id_of_the_span() {
    use tower_shield::limiter::Quota;
    use tower_shield::rate_limit::{Policy, RateLimit, Scope};

    let limit = RateLimit::builder()
        .policy(Policy::new(
            "ip",
            Quota::per(1, Duration::from_secs(60)).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(builder().build().unwrap())
        .layer(limit)
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
        }));
    let mut last = None;
    let recs = capture(|| {
        for _ in 0..2 {
            let req = Request::get("/search?api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc")
                .extension(peer())
                .body(())
                .unwrap();
            last = Some(block_on(svc.clone().oneshot(req)).unwrap());
        }
    });
    let res = last.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let id = res.headers()["x-request-id"].to_str().unwrap();
    let refused: Vec<_> = security(&recs)
        .into_iter()
        .filter(|r| r.get("event") == Some("rate_limit_exceeded"))
        .collect();
    assert_eq!(refused.len(), 1, "{recs:#?}");
    assert_eq!(refused[0].span_request_id.as_deref(), Some(id));
    assert!(
        security(&recs)
            .iter()
            .all(|r| r.get("event") != Some("auth_attempt")),
        "a 429 is not an authentication failure"
    );
    assert!(!format!("{recs:?}").contains("sk_live"));
}

#[test]
fn it_is_an_axum_layer() {
    use axum::Router;
    use axum::routing::get;

    let app: Router = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(builder().build().unwrap());
    let req = Request::get("/")
        .header("x-request-id", "axum-1")
        .extension(peer())
        .body(axum::body::Body::empty())
        .unwrap();
    let res = block_on(app.oneshot(req)).unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "axum-1");
}

#[test]
fn the_recommended_json_setup_puts_the_request_fields_on_each_event() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(buffer.clone())
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let layer = builder().build().unwrap();
        let svc =
            ServiceBuilder::new()
                .layer(layer)
                .service(service_fn(|_req: Request<()>| async {
                    let mut res = Response::new(());
                    *res.status_mut() = StatusCode::UNAUTHORIZED;
                    Ok::<_, Infallible>(res)
                }));
        block_on(svc.oneshot(hostile_request(b"curl/8.5"))).unwrap();
    });
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in &lines {
        assert_eq!(line["span"]["path"], "/admin/rate-limits");
        assert_eq!(line["span"]["client_ip"], "203.0.113.7");
        assert_eq!(line["span"]["request_id"].as_str().map(str::len), Some(32));
    }
    assert_eq!(lines[0]["event"], "request_completed");
    assert_eq!(lines[1]["event"], "auth_attempt");
    assert_eq!(lines[1]["owasp"], "authn_login_fail");
    assert_eq!(lines[1]["level"], "WARN");
}
