//! JSON-body field rules through the `InputSanitizer` layer, on a hand-polled future: the
//! layer never answers 5xx, never echoes a refused value, and what it lets through keeps
//! every rule.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_shield::sanitize::{
    Field, InputSanitizer, InputSanitizerLayer, Pattern, UrlRule, validate_plain_text,
};

const BODY_LIMIT: usize = 2048;
const NAMES: &[&str] = &[
    "name",
    "/address/city",
    "device_id",
    "bio",
    "homepage",
    "tags",
];

fn layer() -> &'static InputSanitizerLayer {
    static LAYER: OnceLock<InputSanitizerLayer> = OnceLock::new();
    LAYER.get_or_init(|| {
        InputSanitizer::builder()
            .json_body(
                Method::POST,
                "/items/*",
                [
                    Field::new("name")
                        .required()
                        .length(1, 20)
                        .plain_text()
                        .single_line(),
                    Field::new("/address/city").length(1, 30).plain_text(),
                    Field::new("device_id").pattern(Pattern::ascii_id(1, 16)),
                    Field::new("bio").length(0, 40).plain_text().sanitize(),
                    Field::new("homepage").url(UrlRule::https()),
                    Field::new("tags").length(0, 10),
                ],
            )
            .body_limit(BODY_LIMIT)
            .max_depth(6)
            .max_keys(24)
            .build()
            .expect("the rules build")
    })
}

/// Keys and strings that reach the rules (and their corners) often.
const KEYS: &[&str] = &[
    "name",
    "address",
    "city",
    "device_id",
    "bio",
    "homepage",
    "tags",
    "",
];
const STRINGS: &[&str] = &[
    "Ada",
    "O'Brian",
    "<img src=x onerror=alert(1)>",
    "java&#x09;script:alert(1)",
    "https://example.com/x",
    "javascript:alert(1)",
    "dev_1",
    " padded ",
    "line\nbreak",
    "\u{202e}evil",
    "＜script＞",
    "",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Free(String),
}

impl Text {
    fn get(&self, table: &[&str]) -> String {
        match self {
            Text::Known(i) => table[usize::from(*i) % table.len()].to_owned(),
            Text::Free(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(i64),
    Float(f64),
    String(Text),
    Array(Vec<Json>),
    /// Written member by member, so a key may come twice.
    Object(Vec<(Text, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::Float(f) => out.push_str(&serde_json::to_string(f).unwrap()),
            Json::String(t) => out.push_str(&Value::String(t.get(STRINGS)).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.get(KEYS)).to_string());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    Json(Json),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Length {
    None,
    Exact,
    Other(u32),
    Garbage,
}

#[derive(Arbitrary, Debug)]
struct Input {
    content_type: u8,
    length: Length,
    body: Body,
}

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/merge-patch+json; charset=utf-8"),
    Some("text/plain"),
    None,
];

/// Polls a future that has everything it needs: nothing here waits on I/O.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the layer's future never completes");
}

/// Characters a problem document is written in when it names no value.
fn in_problem_alphabet(c: char) -> bool {
    c.is_ascii_alphanumeric() || " :,._/()'+-\"{}[]".contains(c)
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn check_passed(body: &[u8]) {
    let value: Value = serde_json::from_slice(body).expect("the handler gets JSON");
    let object = value.as_object().expect("the handler gets an object");
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let name = text("/name").expect("`name` is required");
    let count = name.trim().chars().count();
    assert!((1..=20).contains(&count), "name of {count} characters");
    assert!(!name.contains(['\r', '\n', '\t']));
    assert!(validate_plain_text(name).is_ok(), "name {name:?} passed");
    if let Some(city) = text("/address/city") {
        assert!(validate_plain_text(city).is_ok(), "city {city:?} passed");
    }
    if let Some(id) = text("/device_id") {
        assert!(
            (1..=16).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "device_id {id:?} passed"
        );
    }
    if let Some(bio) = text("/bio") {
        assert!(bio.chars().count() <= 40, "bio {bio:?} is not cut");
        assert!(
            !bio.contains(['<', '>', '"', '\'']),
            "bio {bio:?} is not escaped"
        );
    }
    if let Some(url) = text("/homepage") {
        let scheme = url::Url::parse(url).map(|u| u.scheme().to_owned());
        assert_eq!(scheme.as_deref(), Ok("https"), "homepage {url:?} passed");
    }
    for (key, field) in [
        ("device_id", "device_id"),
        ("homepage", "homepage"),
        ("tags", "tags"),
    ] {
        if let Some(v) = object.get(key) {
            assert!(v.is_string() || v.is_null(), "{field} passed as {v}");
        }
    }
}

fn check_refused(status: StatusCode, body: &[u8], request: &[u8]) {
    let problem: Value = serde_json::from_slice(body).expect("a problem document");
    assert_eq!(problem["status"], status.as_u16());
    let params = problem["invalid-params"]
        .as_array()
        .expect("invalid-params");
    assert!(!params.is_empty());
    for p in params {
        let name = p["name"].as_str().unwrap();
        assert!(
            NAMES.contains(&name) || ["body", "content-type", "content-length"].contains(&name),
            "a name not from the configuration: {name:?}"
        );
        assert!(["body", "header", "query"].contains(&p["in"].as_str().unwrap()));
        assert!(
            p["rule"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
    }
    let text = String::from_utf8(body.to_vec()).expect("UTF-8 problem");
    let mut values = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(request) {
        strings(&v, &mut values);
    }
    for v in values {
        let v = v.trim();
        if v.chars().count() < 2 || v.chars().all(in_problem_alphabet) {
            continue;
        }
        let escaped = Value::String(v.to_owned()).to_string();
        assert!(
            !text.contains(v) && !text.contains(&escaped[1..escaped.len() - 1]),
            "the problem echoes {v:?}: {text}"
        );
    }
}

fuzz_target!(|input: Input| {
    let body = match &input.body {
        Body::Json(j) => {
            let mut s = String::new();
            j.write(&mut s);
            s.into_bytes()
        }
        Body::Raw(bytes) => bytes.clone(),
    };
    let mut request = Request::builder().method(Method::POST).uri("/items/1");
    if let Some(ct) = CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()] {
        request = request.header("content-type", ct);
    }
    request = match input.length {
        Length::None => request,
        Length::Exact => request.header("content-length", body.len()),
        Length::Other(n) => request.header("content-length", n),
        Length::Garbage => request.header("content-length", "12, 13"),
    };
    let request = request.body(Full::new(Bytes::from(body.clone()))).unwrap();

    let inner = service_fn(|req: Request<Full<Bytes>>| async move {
        let declared = req
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(req.headers().get("transfer-encoding").is_none());
        let seen = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            declared,
            Some(seen.len().to_string()),
            "a wrong Content-Length"
        );
        Ok::<_, Infallible>(Response::new(Full::new(seen)))
    });
    let mut service = layer().layer(inner);
    let response = run(async {
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map(|c| c.to_bytes());
        (parts, bytes)
    });
    let (parts, bytes) = response;
    let bytes = bytes.unwrap_or_else(|_| panic!("the response body failed"));
    let status = parts.status;
    assert!(
        [200, 400, 413, 415, 422].contains(&status.as_u16()),
        "status {status}"
    );
    if status == StatusCode::OK {
        check_passed(&bytes);
    } else {
        assert_eq!(
            parts.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        check_refused(status, &bytes, &body);
    }
});
