//! Black-box tests of the sanitising functions and the InputSanitizer layer.
#![cfg(feature = "sanitize")]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::problem::ShieldBody;
use tower_shield::sanitize::{
    Field, HeaderRule, ID_PATTERN, InputSanitizer, InputSanitizerLayer, Pattern, PlainTextError,
    UrlRule, escape_html, sanitize_filename, sanitize_text, validate_plain_text,
};

mod common;

// ---------------------------------------------------------------------------------------
// The payload corpus (research table 6.1) and the benign texts that must pass.

/// Table 6.1 rows 1–23 (and the `ıframe` variant of 16): refused as plain text, each with the
/// rule it breaks.
const HOSTILE: &[(&str, PlainTextError)] = &[
    ("<script>alert(1)</script>", PlainTextError::Markup),
    ("<ScRiPt>alert(1)</ScRiPt>", PlainTextError::Markup),
    ("<scr<script>ipt>alert(1)</script>", PlainTextError::Markup),
    ("<img src=x onerror=alert(1)>", PlainTextError::Markup),
    ("<svg/onload=alert(1)>", PlainTextError::Markup),
    ("<details open ontoggle=alert(1)>", PlainTextError::Markup),
    (
        "<a href=\"java\tscript:alert(1)\">x</a>",
        PlainTextError::Markup,
    ),
    (
        "<a href=\"java&#x09;script:alert(1)\">x</a>",
        PlainTextError::Markup,
    ),
    (
        "<a href=\"&#106;avascript:alert(1)\">x</a>",
        PlainTextError::Markup,
    ),
    (
        "<a href=\"&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A alert(1)\">",
        PlainTextError::Markup,
    ),
    (
        "<a href=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)\">",
        PlainTextError::Markup,
    ),
    (
        "<a href=\" &#14;  javascript:alert(1)\">x</a>",
        PlainTextError::Markup,
    ),
    ("<a href=\"JaVaScRiPt:alert(1)\">", PlainTextError::Markup),
    (
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
        PlainTextError::Markup,
    ),
    ("＜script＞alert(1)＜/script＞", PlainTextError::Markup),
    ("<ſvg onload=alert(1)>", PlainTextError::Markup),
    ("<ıframe onload=alert(1)>", PlainTextError::Markup),
    (
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
        PlainTextError::Markup,
    ),
    (
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        PlainTextError::Markup,
    ),
    (
        "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>",
        PlainTextError::Markup,
    ),
    (
        "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\">",
        PlainTextError::Markup,
    ),
    (
        "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
        PlainTextError::Markup,
    ),
    (
        "<iframe src=\"javascript:alert(1)\"></iframe>",
        PlainTextError::Markup,
    ),
    (
        "<IMG SRC=java\0script:alert(\"XSS\")>",
        PlainTextError::Control,
    ),
];

/// The same vectors without any tag: what reaches an unquoted attribute or an `href`.
const HOSTILE_WITHOUT_TAGS: &[(&str, PlainTextError)] = &[
    ("x onerror=alert(1)", PlainTextError::EventHandler),
    ("x\nonerror=alert(1)", PlainTextError::EventHandler),
    ("x&#10;onerror=alert(1)", PlainTextError::EventHandler),
    ("x/onerror=alert(1)", PlainTextError::EventHandler),
    ("\"onmouseover =alert(1)", PlainTextError::EventHandler),
    ("ＯＮＬＯＡＤ＝alert(1)", PlainTextError::EventHandler),
    ("javascript:alert(1)", PlainTextError::ScriptUrl),
    ("java\tscript:alert(1)", PlainTextError::ScriptUrl),
    ("java&#x09;script:alert(1)", PlainTextError::ScriptUrl),
    ("jav&#x0A;ascript:alert(1)", PlainTextError::ScriptUrl),
    ("&#106;avascript:alert(1)", PlainTextError::ScriptUrl),
    // No semicolons; `&#x3A` must not run into a hex letter (`&#x3Aa` is U+03AA in a browser too).
    (
        "&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3Aprompt(1)",
        PlainTextError::ScriptUrl,
    ),
    (" &#14;  javascript:alert(1)", PlainTextError::ScriptUrl),
    ("JaVaScRiPt:alert(1)", PlainTextError::ScriptUrl),
    ("javascript&colon;alert(1)", PlainTextError::ScriptUrl),
    ("ｊａｖａｓｃｒｉｐｔ：alert(1)", PlainTextError::ScriptUrl),
    ("vbscript:msgbox(1)", PlainTextError::ScriptUrl),
    (
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        PlainTextError::ScriptUrl,
    ),
    ("DATA:,hello", PlainTextError::ScriptUrl),
    (
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        PlainTextError::Markup,
    ),
    ("&#xFF1C;script&#xFF1E;", PlainTextError::Markup),
    ("<!-- comment -->", PlainTextError::Markup),
    ("</textarea>", PlainTextError::Markup),
    ("<?xml version=1?>", PlainTextError::Markup),
];

/// The control-character list of §6.1: refused in plain text.
const CONTROLS: &[&str] = &[
    "a\0b",
    "bell\x07",
    "\x1b[2J clear",
    "del\x7f",
    "c1\u{85}",
    "line\u{2028}sep",
    "para\u{2029}sep",
    "bidi \u{202E}override",
    "isolate \u{2066}x\u{2069}",
    "lone\rcr",
];

/// Ordinary text that must be accepted: a false positive is a bug too.
const BENIGN: &[&str] = &[
    "O'Brian",
    "a < b",
    "x<y",
    "x < y and y < z",
    "I <3 jazz",
    "<3 <3 <3",
    "5 > 3 && x",
    "rock & roll",
    "Tom & Jerry's \"best\" hits",
    "“curly quotes” and ‘single’ ones, «guillemets»",
    "moody piano for a rainy Sunday",
    "日本語の歌、静かな夜",
    "中文流行音乐",
    "한국어 발라드",
    "موسيقى عربية هادئة",
    "שירים בעברית",
    "हिंदी गाने",
    "ελληνική μουσική",
    "русский рок",
    "เพลงไทย\u{200B}สบายๆ",
    "emoji 🎷🎸🥁 and flags 🇧🇷🇯🇵",
    "family 👩‍👩‍👧‍👦, skin tones 👋🏽, ZWJ 🏳️‍🌈",
    "Persian ZWNJ: می‌خواهم",
    "math: x<y, 2 ≤ 3, a ≠ b, ∑ x²",
    "email me at a@example.com",
    "my data: 42 songs",
    "metadata:text/plain",
    "the mission: fun",
    "on = off",
    "on the road again",
    "turn it on=",
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
    "%3Cscript%3E (percent-encoded text in a JSON string is inert)",
    "multi\nline\r\nwith\ttab",
    "C# & F#; 100% = all",
    "ＡＢＣ fullwidth letters",
    "",
];

#[test]
fn every_hostile_payload_is_refused_with_its_rule() {
    for (payload, rule) in HOSTILE.iter().chain(HOSTILE_WITHOUT_TAGS) {
        assert_eq!(validate_plain_text(payload), Err(*rule), "{payload:?}");
    }
    for payload in CONTROLS {
        assert_eq!(
            validate_plain_text(payload),
            Err(PlainTextError::Control),
            "{payload:?}"
        );
    }
}

#[test]
fn every_benign_text_is_accepted() {
    for text in BENIGN {
        assert_eq!(validate_plain_text(text), Ok(()), "{text:?}");
    }
}

#[test]
fn validation_is_linear_on_hostile_shapes() {
    // A quadratic scan would take minutes on these.
    assert_eq!(validate_plain_text(&"<a".repeat(200_000)), Ok(()));
    let closed = format!("{}>", "<a".repeat(200_000));
    assert_eq!(validate_plain_text(&closed), Err(PlainTextError::Markup));
    assert_eq!(validate_plain_text(&"on ".repeat(200_000)), Ok(()));
    assert_eq!(validate_plain_text(&"&#".repeat(200_000)), Ok(()));
    assert_eq!(validate_plain_text(&"data:".repeat(200_000)), Ok(()));
}

#[test]
fn naive_strip_output_is_caught_too() {
    // Row 3 and 19: what a single-pass `<script>` strip leaves behind.
    for s in ["<script>alert(1)</script>", "<alert(\"XSS\");//<</SCRIPT>"] {
        assert!(validate_plain_text(s).is_err(), "{s}");
    }
}

// ---------------------------------------------------------------------------------------
// The pure functions.

#[test]
fn sanitize_text_canonicalises_drops_controls_cuts_and_escapes() {
    assert_eq!(sanitize_text("＜script＞", 100), "&lt;script&gt;");
    assert_eq!(
        sanitize_text("a\0b\x1b[2Jc\u{202E}d\u{2028}e", 100),
        "ab[2Jcde"
    );
    assert_eq!(sanitize_text("tab\tnew\nline\r\n", 100), "tab\tnew\nline\n");
    assert_eq!(sanitize_text("日本語の歌", 3), "日本語");
    assert_eq!(sanitize_text("👩‍👩‍👧", 2), "👩\u{200D}");
    assert_eq!(sanitize_text("O'Brian", 100), "O&#x27;Brian");
    assert_eq!(sanitize_text("ﬁne", 100), "fine");
    assert_eq!(sanitize_text("", 10), "");
}

#[test]
fn escape_html_covers_text_and_quoted_attributes() {
    assert_eq!(escape_html("<>&\"'"), "&lt;&gt;&amp;&quot;&#x27;");
    assert_eq!(escape_html("日本 🎷"), "日本 🎷");
    assert_eq!(
        escape_html("\" onmouseover=\"alert(1)"),
        "&quot; onmouseover=&quot;alert(1)"
    );
}

#[test]
fn sanitize_filename_rules() {
    let cases = [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "_._etc_passwd"),
        ("..\\..\\windows\\system32", "_._windows_system32"),
        ("／etc／passwd", "_etc_passwd"),
        ("a‥b", "a.b"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("LPT1.tar.gz", "_LPT1.tar.gz"),
        ("COM¹", "_COM1"),
        ("console.log", "console.log"),
        (".htaccess", "htaccess"),
        ("name. . .", "name"),
        ("  spaced  ", "spaced"),
        ("a\0b\nc\x7f.txt", "abc.txt"),
        ("photo\u{202E}gpj.exe", "photogpj.exe"),
        ("what?<>:*|\".txt", "what_______.txt"),
        ("歌.mp3", "歌.mp3"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            sanitize_filename(input).as_deref(),
            Ok(expected),
            "{input:?}"
        );
    }
    for empty in ["", ".", "..", "...", " . ", "\0\x01", "\u{202E}"] {
        assert!(sanitize_filename(empty).is_err(), "{empty:?}");
    }
    let long = "é".repeat(200);
    let out = sanitize_filename(&long).unwrap();
    assert!(out.len() <= 255 && out.chars().all(|c| c == 'é'));
    assert_eq!(out.chars().count(), 127);
}

#[test]
fn url_rule_uses_the_whatwg_parser_and_an_allow_list() {
    let web = UrlRule::web();
    assert!(web.check("https://example.com/path?q=1#x").is_ok());
    assert!(web.check("HTTP://EXAMPLE.COM").is_ok());
    for bad in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "\u{1} javascript:alert(1)",
        "data:text/html;base64,AAAA",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example",
        "/relative",
        "https://user:pw@evil.example",
        "https://exa mple.com",
        "",
    ] {
        assert!(web.check(bad).is_err(), "{bad:?}");
    }
    assert!(
        InputSanitizer::builder()
            .json_body(
                Method::POST,
                "/x",
                [Field::new("u").url(UrlRule::schemes(["javascript"]))]
            )
            .build()
            .is_err()
    );
}

#[cfg(feature = "rich-text")]
#[test]
fn rich_text_is_cleaned_by_ammonia() {
    use tower_shield::sanitize::RichText;
    let cleaner = RichText::default();
    assert_eq!(cleaner.clean("<script>alert(1)</script>"), "");
    assert_eq!(
        cleaner.clean("<a href=\"java&#x09;script:alert(1)\">x</a>"),
        "<a rel=\"noopener noreferrer\">x</a>"
    );
}

// ---------------------------------------------------------------------------------------
// Property tests.

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn functions_never_panic(s in any::<String>()) {
        let _ = validate_plain_text(&s);
        let _ = sanitize_filename(&s);
        let _ = sanitize_text(&s, 50);
        let _ = escape_html(&s);
        let _ = UrlRule::web().check(&s);
    }

    #[test]
    fn text_without_markup_characters_is_always_accepted(
        s in "[\\p{L}\\p{M}\\p{N}\\p{Zs}\\p{So} .,!?;'\"()\n-]{0,80}"
    ) {
        // Letters, marks, digits, spaces, symbols (emoji) and punctuation of every script:
        // without `<`, `=`, `:` or `&` nothing is markup, a handler or a scheme.
        prop_assume!(!s.contains(['\u{2028}', '\u{2029}']));
        prop_assert_eq!(validate_plain_text(&s), Ok(()), "{:?}", s);
    }

    #[test]
    fn hostile_payloads_stay_refused_inside_benign_text(
        pre in "[\\p{L}\\p{N} ,.!?'-]{0,20}",
        post in "[\\p{L}\\p{N} ,.!?'-]{0,20}",
        index in 0usize..1000,
    ) {
        let all: Vec<_> = HOSTILE.iter().chain(HOSTILE_WITHOUT_TAGS).collect();
        let (payload, _) = all[index % all.len()];
        let text = format!("{pre} {payload} {post}");
        prop_assert!(validate_plain_text(&text).is_err(), "{:?}", text);
    }

    #[test]
    fn markup_like_strings_never_panic(s in "[<>&#;=:xXa-z0-9 \t\n/!?'\"]{0,40}") {
        let _ = validate_plain_text(&s);
        let _ = sanitize_filename(&s);
    }

    #[test]
    fn sanitize_text_is_bounded_and_control_free(s in any::<String>(), max in 0usize..64) {
        let out = sanitize_text(&s, max);
        prop_assert!(out.chars().count() <= max);
        prop_assert!(out.chars().all(|c| !c.is_control() || c == '\t' || c == '\n'));
        prop_assert!(!out.contains(['<', '>', '"', '\'']));
    }

    #[test]
    fn escape_html_output_is_inert_and_round_trips(s in any::<String>()) {
        let out = escape_html(&s);
        prop_assert!(!out.contains(['<', '>', '"', '\'']));
        // Every `&` starts one of the five entities.
        for (i, _) in out.match_indices('&') {
            let rest = &out[i..];
            prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;"].iter().any(|e| rest.starts_with(e)));
        }
        prop_assert_eq!(unescape(&out), s);
    }

    #[test]
    fn sanitize_filename_is_one_safe_component(s in any::<String>()) {
        if let Ok(name) = sanitize_filename(&s) {
            prop_assert!(!name.is_empty() && name.len() <= 255);
            prop_assert!(!name.contains(['/', '\\']));
            prop_assert!(!name.contains(".."));
            prop_assert!(!name.starts_with('.') && !name.ends_with('.') && !name.ends_with(' '));
            let base = name.split('.').next().unwrap().trim_end().to_ascii_uppercase();
            let reserved = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"].contains(&base.as_str())
                || (base.len() == 4 && (base.starts_with("COM") || base.starts_with("LPT"))
                    && base.as_bytes()[3].is_ascii_digit());
            prop_assert!(!reserved, "{name}");
        }
    }

    #[test]
    fn sanitize_filename_of_paths(parts in prop::collection::vec("[a-z.]{0,4}|\\.\\.|CON|nul", 0..6), sep in "[/\\\\]") {
        let path = parts.join(&sep);
        if let Ok(name) = sanitize_filename(&path) {
            prop_assert!(!name.contains(['/', '\\']) && !name.contains(".."));
        }
    }

    #[test]
    fn pattern_matches_like_the_regex(s in prop::collection::vec(any::<u8>(), 0..80)) {
        let expected = (1..=64).contains(&s.len())
            && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
        prop_assert_eq!(ID_PATTERN.matches(&s), expected);
    }
}

// ---------------------------------------------------------------------------------------
// The layer.

/// A request body for tests: chunks without a declared length (`known` off) or with one,
/// and optionally one that fails the test if it is ever polled.
#[derive(Debug, Default)]
struct TestBody {
    chunks: VecDeque<Bytes>,
    exact: Option<u64>,
    explode: bool,
}

impl TestBody {
    fn streamed(chunks: impl IntoIterator<Item = Vec<u8>>) -> TestBody {
        TestBody {
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            ..TestBody::default()
        }
    }

    fn explosive() -> TestBody {
        TestBody {
            explode: true,
            ..TestBody::default()
        }
    }
}

impl From<Bytes> for TestBody {
    fn from(bytes: Bytes) -> Self {
        TestBody {
            exact: Some(bytes.len() as u64),
            chunks: VecDeque::from([bytes]),
            explode: false,
        }
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        assert!(!self.explode, "the body was read");
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

type Seen = Arc<Mutex<Vec<(Option<HeaderValue>, Bytes)>>>;

/// The layer around a handler that records the content length and body it was given.
async fn call(
    layer: &InputSanitizerLayer,
    req: Request<TestBody>,
    seen: &Seen,
) -> (StatusCode, Value) {
    let seen = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(move |req: Request<TestBody>| {
            let seen = seen.clone();
            async move {
                let length = req.headers().get("content-length").cloned();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push((length, body));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
            }
        }));
    let res: Response<ShieldBody<Full<Bytes>>> = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res.headers().get("content-type").cloned();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    if status != StatusCode::OK {
        assert_eq!(ct.unwrap(), "application/problem+json");
    }
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn echotuner() -> InputSanitizerLayer {
    tower_shield::config::echotuner_input_rules()
        .build()
        .unwrap()
}

fn post_json(body: impl Into<Bytes>) -> Request<TestBody> {
    Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .body(TestBody::from(body.into()))
        .unwrap()
}

fn playlist(prompt: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"prompt": prompt, "session_id": "s_1", "device_id": "dev_123-A"}))
        .unwrap()
}

fn rule_of(problem: &Value) -> (&str, &str) {
    let p = &problem["invalid-params"][0];
    (p["name"].as_str().unwrap(), p["rule"].as_str().unwrap())
}

#[tokio::test]
async fn payload_table_through_the_layer_both_directions() {
    let layer = echotuner();
    let seen = Seen::default();
    for (payload, _) in HOSTILE.iter().chain(HOSTILE_WITHOUT_TAGS) {
        let (status, problem) = call(&layer, post_json(playlist(payload)), &seen).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{payload:?}");
        assert_eq!(rule_of(&problem), ("prompt", "plain_text"), "{payload:?}");
        assert_eq!(problem["status"], 422);
        // The value is never echoed: not even a fragment of it.
        let text = problem.to_string();
        assert!(
            !text.contains("alert") && !text.contains("script:"),
            "{text}"
        );
    }
    for payload in CONTROLS {
        let (status, _) = call(&layer, post_json(playlist(payload)), &seen).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{payload:?}");
    }
    assert!(seen.lock().unwrap().is_empty());
    for text in BENIGN.iter().filter(|t| !t.trim().is_empty()) {
        let body = playlist(text);
        let (status, _) = call(&layer, post_json(body.clone()), &seen).await;
        assert_eq!(status, StatusCode::OK, "{text:?}");
        // Passed on unchanged, with an exact length.
        let (length, got) = seen.lock().unwrap().pop().unwrap();
        assert_eq!(got, body);
        assert_eq!(length.unwrap(), body.len().to_string().as_str());
    }
}

#[tokio::test]
async fn field_rules_required_lengths_types_patterns() {
    let layer = echotuner();
    let seen = Seen::default();
    let cases: &[(Value, (&str, &str))] = &[
        (
            json!({"session_id": "s", "device_id": "d"}),
            ("prompt", "required"),
        ),
        (
            json!({"prompt": null, "session_id": "s", "device_id": "d"}),
            ("prompt", "required"),
        ),
        (
            json!({"prompt": "   ", "session_id": "s", "device_id": "d"}),
            ("prompt", "min_length"),
        ),
        (
            json!({"prompt": "é".repeat(501), "session_id": "s", "device_id": "d"}),
            ("prompt", "max_length"),
        ),
        (
            json!({"prompt": 5, "session_id": "s", "device_id": "d"}),
            ("prompt", "type"),
        ),
        (
            json!({"prompt": "ok", "session_id": "s p", "device_id": "d"}),
            ("session_id", "pattern"),
        ),
        (
            json!({"prompt": "ok", "session_id": "s", "device_id": "x".repeat(65)}),
            ("device_id", "pattern"),
        ),
        (
            json!({"prompt": "ok", "session_id": "s", "device_id": "ｄｅｖ"}),
            ("device_id", "pattern"),
        ),
        (
            json!({"prompt": "ok", "session_id": "s", "device_id": "abc\u{200B}"}),
            ("device_id", "pattern"),
        ),
        (
            json!({"prompt": "ok", "session_id": "s", "device_id": ["d"]}),
            ("device_id", "type"),
        ),
    ];
    for (body, expected) in cases {
        let (status, problem) =
            call(&layer, post_json(serde_json::to_vec(body).unwrap()), &seen).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(rule_of(&problem), *expected, "{body}");
    }
    // 500 characters after trimming (multi-byte ones count once) is fine.
    let prompt = format!("  {}  ", "é".repeat(500));
    let (status, _) = call(&layer, post_json(playlist(&prompt)), &seen).await;
    assert_eq!(status, StatusCode::OK);
    // Every broken field is reported at once.
    let (status, problem) = call(&layer, post_json(&b"{}"[..]), &seen).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["invalid-params"].as_array().unwrap().len(), 3);
    // Row 28: an escaped key is the same key; other members pass unchecked.
    let (status, problem) = call(
        &layer,
        post_json(
            &br#"{"pro\u006dpt":"<script>alert(1)</script>","session_id":"s","device_id":"d"}"#[..],
        ),
        &seen,
    )
    .await;
    assert_eq!(
        (status, rule_of(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, ("prompt", "plain_text"))
    );
    let (status, _) = call(
        &layer,
        post_json(
            &br#"{"prompt":"ok","session_id":"s","device_id":"d","__proto__":{"admin":true}}"#[..],
        ),
        &seen,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let layer = tower_shield::config::echotuner_input_rules()
        .max_depth(8)
        .max_keys(10)
        .build()
        .unwrap();
    let seen = Seen::default();
    let deep = format!(
        r#"{{"prompt":"ok","session_id":"s","device_id":"d","x":{}{}}}"#,
        "[".repeat(8),
        "]".repeat(8)
    );
    let many = format!(
        r#"{{"prompt":"ok","session_id":"s","device_id":"d",{}}}"#,
        (0..8)
            .map(|i| format!(r#""k{i}":1"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"prompt":"ok""#.to_vec(), "json"),
        (b"".to_vec(), "json"),
        (b"not json".to_vec(), "json"),
        (br#"{"prompt":"ok",}"#.to_vec(), "json"),
        (br#"["prompt"]"#.to_vec(), "object"),
        (br#""prompt""#.to_vec(), "object"),
        (b"{\"prompt\":\"\xff\"}".to_vec(), "utf8"),
        (b"{\"prompt\":\"%C0%BC\xc0\xbc\"}".to_vec(), "utf8"),
        (deep.into_bytes(), "depth"),
        (many.into_bytes(), "keys"),
        // Row 29: the same key twice; parsers disagree on which one wins.
        (
            br#"{"prompt":"ok","prompt":"<script>x</script>","session_id":"s","device_id":"d"}"#
                .to_vec(),
            "duplicate_key",
        ),
    ];
    for (body, rule) in cases {
        let (status, problem) = call(&layer, post_json(body.clone()), &seen).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            rule_of(&problem),
            ("body", rule),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // 100,000-deep nesting inside the limit is refused by the scan, without recursion.
    let layer = tower_shield::config::echotuner_input_rules()
        .body_limit(1 << 20)
        .build()
        .unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, problem) = call(&layer, post_json(deep), &seen).await;
    assert_eq!(
        (status, rule_of(&problem)),
        (StatusCode::BAD_REQUEST, ("body", "depth"))
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let layer = echotuner();
    let seen = Seen::default();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        None,
    ] {
        let mut b = Request::post("/playlist/refine");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let req = b.body(TestBody::explosive()).unwrap();
        let (status, problem) = call(&layer, req, &seen).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(rule_of(&problem), ("content-type", "content_type"));
    }
    for ct in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let req = Request::post("/playlist/refine")
            .header("content-type", ct)
            .body(TestBody::from(Bytes::from(playlist("ok"))))
            .unwrap();
        assert_eq!(call(&layer, req, &seen).await.0, StatusCode::OK, "{ct}");
    }
}

#[tokio::test]
async fn content_length_over_the_limit_is_413_before_reading() {
    let layer = tower_shield::config::echotuner_input_rules()
        .body_limit(100)
        .build()
        .unwrap();
    let seen = Seen::default();
    // The body panics if polled: a 413 proves it was not read.
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .header("content-length", "101")
        .body(TestBody::explosive())
        .unwrap();
    let (status, problem) = call(&layer, req, &seen).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(rule_of(&problem), ("body", "body_limit"));
    // Row 30 / §6.1: a 10 MB JSON string under the default 64 KiB limit, declared.
    let default = echotuner();
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .header("content-length", (10 << 20).to_string())
        .body(TestBody::explosive())
        .unwrap();
    assert_eq!(
        call(&default, req, &seen).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A body whose size hint says it is too large is refused unread too.
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .body(TestBody::from(Bytes::from(vec![b' '; 101])))
        .unwrap();
    assert_eq!(
        call(&layer, req, &seen).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Garbage or conflicting lengths are refused.
    for lengths in [&["abc"][..], &["10", "11"], &["-1"]] {
        let mut b = Request::post("/playlist/generate").header("content-type", "application/json");
        for l in lengths {
            b = b.header("content-length", *l);
        }
        let (status, problem) = call(&layer, b.body(TestBody::explosive()).unwrap(), &seen).await;
        assert_eq!(
            (status, rule_of(&problem)),
            (
                StatusCode::BAD_REQUEST,
                ("content-length", "content_length")
            )
        );
    }
    assert!(seen.lock().unwrap().is_empty());
    // A route without body rules: the body is passed on as it came, unread by the layer.
    let req = Request::post("/upload")
        .header("content-length", "1000")
        .body(TestBody::streamed([vec![b'x'; 1000]]))
        .unwrap();
    assert_eq!(call(&layer, req, &seen).await.0, StatusCode::OK);
    assert_eq!(seen.lock().unwrap().pop().unwrap().1.len(), 1000);
}

#[tokio::test]
async fn bodies_without_a_length_are_counted_while_streaming() {
    let layer = tower_shield::config::echotuner_input_rules()
        .body_limit(100)
        .build()
        .unwrap();
    let seen = Seen::default();
    // 101 bytes in chunks, no length: refused once the count passes the limit.
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .body(TestBody::streamed([vec![b' '; 60], vec![b' '; 41]]))
        .unwrap();
    let (status, problem) = call(&layer, req, &seen).await;
    assert_eq!(
        (status, rule_of(&problem)),
        (StatusCode::PAYLOAD_TOO_LARGE, ("body", "body_limit"))
    );
    // A lying Content-Length under the limit with a larger body: counted, refused.
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .header("content-length", "10")
        .body(TestBody::streamed([vec![b' '; 200]]))
        .unwrap();
    assert_eq!(
        call(&layer, req, &seen).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Exactly the limit, in chunks, split inside a multi-byte character: accepted, and handed
    // on whole with an exact Content-Length (replacing a lying one and Transfer-Encoding).
    let body = playlist("é");
    let mut padded = body.clone();
    padded.resize(100, b' ');
    let split = padded.iter().position(|&b| b == 0xC3).unwrap() + 1;
    let req = Request::post("/playlist/generate")
        .header("content-type", "application/json")
        .header("content-length", "7")
        .header("transfer-encoding", "chunked")
        .body(TestBody::streamed([
            padded[..split].to_vec(),
            padded[split..].to_vec(),
        ]))
        .unwrap();
    assert_eq!(call(&layer, req, &seen).await.0, StatusCode::OK);
    let (length, got) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(got, padded);
    assert_eq!(length.unwrap(), "100");
}

#[tokio::test]
async fn header_values_table_6_2() {
    let layer = echotuner();
    let seen = Seen::default();
    let get = |values: &[&[u8]]| {
        let mut r = Request::get("/config/health")
            .body(TestBody::default())
            .unwrap();
        for v in values {
            r.headers_mut()
                .append("x-device-id", HeaderValue::from_bytes(v).unwrap());
        }
        r
    };
    assert_eq!(
        call(&layer, get(&[b"dev_123-A"]), &seen).await.0,
        StatusCode::OK
    );
    assert_eq!(call(&layer, get(&[]), &seen).await.0, StatusCode::OK);
    let long = vec![b'a'; 65];
    let rejected: &[(&[&[u8]], &str)] = &[
        (&[b""], "pattern"),
        (&[&long], "pattern"),
        (&[b"abc def"], "pattern"),
        (&[b"a\tb"], "pattern"),
        (&[b"d\xc3\xa9v"], "pattern"),
        (&["ａｂｃ".as_bytes()], "pattern"),
        (&["abc\u{200B}".as_bytes()], "pattern"),
        (&[b"../../etc"], "pattern"),
        (&[b"%41%42"], "pattern"),
        (&[b"abc,def"], "pattern"),
        (&[b"dev_1", b"dev_2"], "multiple"),
        (&[b"dev_1", b"dev_1"], "multiple"),
    ];
    for (values, rule) in rejected {
        let (status, problem) = call(&layer, get(values), &seen).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{values:?}");
        assert_eq!(rule_of(&problem), ("x-device-id", *rule), "{values:?}");
        assert!(!problem.to_string().contains("etc"));
    }
    // Required on some routes only.
    let layer = InputSanitizer::builder()
        .header(
            HeaderRule::new("x-device-id", ID_PATTERN)
                .required()
                .on(Method::POST, "/playlist/*"),
        )
        .build()
        .unwrap();
    let post = Request::post("/playlist/generate")
        .body(TestBody::default())
        .unwrap();
    let (status, problem) = call(&layer, post, &seen).await;
    assert_eq!(
        (status, rule_of(&problem)),
        (StatusCode::BAD_REQUEST, ("x-device-id", "required"))
    );
    assert_eq!(call(&layer, get(&[]), &seen).await.0, StatusCode::OK);
}

#[tokio::test]
async fn query_rules_decode_once_and_want_one_instance() {
    let layer = echotuner();
    let seen = Seen::default();
    let get = |q: &str| {
        Request::get(format!("/search{q}"))
            .body(TestBody::default())
            .unwrap()
    };
    for ok in [
        "",
        "?q=jazz",
        "?q=rock+%26+roll",
        "?q=I+%3C3+jazz",
        "?q=%E6%97%A5%E6%9C%AC",
        "?page=2&q=x",
    ] {
        assert_eq!(call(&layer, get(ok), &seen).await.0, StatusCode::OK, "{ok}");
    }
    let bad: &[(&str, &str)] = &[
        // Row 24: percent-encoded markup is decoded, then judged.
        ("?q=%3Cscript%3Ealert(1)%3C/script%3E", "plain_text"),
        ("?q=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E", "plain_text"),
        // Row 25: overlong UTF-8 is not UTF-8.
        ("?q=%C0%BCscript%C0%BE", "utf8"),
        ("?q=%FF", "utf8"),
        // Row 29: the same parameter twice.
        ("?q=ok&q=%3Cscript%3E", "multiple"),
        ("?q=ok&%71=x", "multiple"),
        ("?q=a%00b", "plain_text"),
    ];
    for (q, rule) in bad {
        let (status, problem) = call(&layer, get(q), &seen).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(rule_of(&problem), ("q", *rule), "{q}");
        assert_eq!(problem["invalid-params"][0]["in"], "query");
    }
    let long = format!("?q={}", "a".repeat(201));
    assert_eq!(
        rule_of(&call(&layer, get(&long), &seen).await.1),
        ("q", "max_length")
    );
}

#[tokio::test]
async fn sanitize_mode_rewrites_the_field_and_the_length() {
    let layer = InputSanitizer::builder()
        .json_body(
            Method::POST,
            "/notes",
            [
                Field::new("title").required().length(1, 20).sanitize(),
                Field::new("/meta/tag").plain_text().sanitize(),
            ],
        )
        .build()
        .unwrap();
    let seen = Seen::default();
    let body = serde_json::to_vec(&json!({
        "title": "  ＜b＞O'Brian\u{0} & a very long tail  ",
        "meta": {"tag": "<i>x</i>"},
        "other": "<untouched>"
    }))
    .unwrap();
    let req = Request::post("/notes")
        .header("content-type", "application/json")
        .body(TestBody::from(Bytes::from(body)))
        .unwrap();
    assert_eq!(call(&layer, req, &seen).await.0, StatusCode::OK);
    let (length, got) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(length.unwrap(), got.len().to_string().as_str());
    let v: Value = serde_json::from_slice(&got).unwrap();
    // Escaped, then cut to 20 characters of output (an entity is never split).
    assert_eq!(v["title"], "&lt;b&gt;O&#x27;Bria");
    assert_eq!(v["meta"]["tag"], "&lt;i&gt;x&lt;/i&gt;");
    assert_eq!(v["other"], "<untouched>");
}

#[test]
fn configuration_errors_are_all_reported() {
    let err = InputSanitizer::builder()
        .header(HeaderRule::new("bad header", Pattern::ascii(1, 0)))
        .json_body(
            Method::POST,
            "no-slash",
            [
                Field::new("a").length(5, 2),
                Field::new("b").pattern(ID_PATTERN).sanitize(),
            ],
        )
        .query(Method::GET, "/s", [Field::new("q").sanitize()])
        .query(Method::GET, "/t", [])
        .body_limit(0)
        .max_depth(0)
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(err.problems().len() >= 8, "{text}");
    for needle in [
        "bad header",
        "no-slash",
        "5..=2",
        "cannot be sanitised",
        "cannot be rewritten",
        "no field rules",
        "body_limit",
        "max_depth",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert!(
        tower_shield::config::echotuner_input_rules()
            .build()
            .is_ok()
    );
}

#[test]
fn one_input_validation_fail_event_per_refusal_without_the_value() {
    let ((), events) = common::capture(|| {
        common::block_on(async {
            let layer = echotuner();
            let seen = Seen::default();
            call(
                &layer,
                post_json(playlist("<svg/onload=alert('SECRET')>")),
                &seen,
            )
            .await;
            call(&layer, post_json(playlist("fine")), &seen).await;
        })
    });
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.target, "tower_shield::security");
    assert_eq!(e.field("event"), Some("input_validation_fail"));
    assert_eq!(e.field("owasp"), Some("input_validation_fail"));
    assert_eq!(e.field("field"), Some("prompt"));
    assert_eq!(e.field("rule"), Some("plain_text"));
    assert!(!format!("{events:?}").contains("SECRET"));
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn works_as_an_axum_router_layer() {
    use axum::{Json, Router, body::Body, routing::post};

    let app = Router::new()
        .route(
            "/playlist/generate",
            post(|Json(g): Json<Value>| async move { Json(json!({"echo": g["prompt"]})) }),
        )
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(echotuner());

    let send = |body: Vec<u8>| {
        Request::post("/playlist/generate")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let res = app
        .clone()
        .oneshot(send(playlist("jazz & blues <3")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["echo"],
        "jazz & blues <3"
    );

    let res = app
        .clone()
        .oneshot(send(playlist("<script>x</script>")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let res = app
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The wiring of the reference server: the sanitizer inside the rate limit on one axum Router.
#[cfg(all(feature = "axum", feature = "rate-limit"))]
#[tokio::test]
async fn composes_with_the_rate_limit_on_an_axum_router() {
    use axum::{Router, body::Body, routing::post};
    use tower_shield::limiter::Quota;
    use tower_shield::rate_limit::{Policy, RateLimit, Scope};

    let limiter = RateLimit::builder()
        .policy(Policy::new(
            "ip",
            Quota::per_minute(60).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/playlist/generate",
            post(|body: String| async move { body }),
        )
        .layer(echotuner())
        .layer(limiter);
    let send = |prompt: &str| {
        let mut req = Request::post("/playlist/generate")
            .header("content-type", "application/json")
            .body(Body::from(playlist(prompt)))
            .unwrap();
        req.extensions_mut()
            .insert("198.51.100.7:4000".parse::<std::net::SocketAddr>().unwrap());
        req
    };
    let res = app.clone().oneshot(send("lofi beats")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("ratelimit"));
    let res = app
        .oneshot(send("<img src=x onerror=alert(1)>"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.headers().contains_key("ratelimit"));
}
