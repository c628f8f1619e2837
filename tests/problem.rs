//! RFC 9457 problem responses and the shared response body, seen from outside.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, VARY};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use tower_shield::problem::{Problem, ShieldBody};

mod common;
use common::block_on;

fn json_of(response: Response<ShieldBody<Empty<Bytes>>>) -> Value {
    let bytes = block_on(response.into_body().collect())
        .expect("a full body never fails")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("the body is JSON")
}

#[test]
fn status_content_type_and_cache_control() {
    let response = Problem::new(StatusCode::TOO_MANY_REQUESTS).into_response::<Empty<Bytes>>();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(response.headers().get_all(CONTENT_TYPE).iter().count(), 1);
    assert_eq!(response.headers().get_all(CACHE_CONTROL).iter().count(), 1);
}

#[test]
fn defaults_are_about_blank_and_the_reason_phrase() {
    let json = json_of(Problem::new(StatusCode::PAYLOAD_TOO_LARGE).into_response());
    assert_eq!(
        json,
        json!({"type": "about:blank", "title": "Payload Too Large", "status": 413})
    );
}

#[test]
fn a_status_without_reason_phrase_has_no_title() {
    let status = StatusCode::from_u16(599).expect("valid status");
    let json = json_of(Problem::new(status).into_response());
    assert_eq!(json, json!({"type": "about:blank", "status": 599}));
}

#[test]
fn every_member_set_is_in_the_json() {
    let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .type_uri("https://iana.org/assignments/http-problem-types#quota-exceeded")
        .title("Quota exceeded")
        .detail(String::from("10 per 300 s; \"retry\" in 30 s </script>"))
        .instance("/playlist/generate")
        .into_response();
    let json = json_of(response);
    assert_eq!(
        json["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(json["title"], "Quota exceeded");
    assert_eq!(json["status"], 429);
    assert_eq!(json["detail"], "10 per 300 s; \"retry\" in 30 s </script>");
    assert_eq!(json["instance"], "/playlist/generate");
    assert_eq!(json.as_object().map(|o| o.len()), Some(5));
}

#[test]
fn members_come_in_rfc_order_then_extensions_in_insertion_order() {
    let body = Problem::new(StatusCode::BAD_REQUEST)
        .extension("zeta", 1)
        .extension("alpha", 2)
        .detail("bad")
        .to_json();
    assert_eq!(
        std::str::from_utf8(&body).expect("UTF-8"),
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad","zeta":1,"alpha":2}"#
    );
}

#[test]
fn extensions_are_kept_and_a_repeated_name_replaces_the_value() {
    let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .extension("violated-policies", json!(["ip", "device"]))
        .extension("retry_after", 30)
        .extension("retry_after", 31)
        .into_response();
    let json = json_of(response);
    assert_eq!(json["violated-policies"], json!(["ip", "device"]));
    assert_eq!(json["retry_after"], 31);
    assert_eq!(json.as_object().map(|o| o.len()), Some(5));
}

#[test]
fn reserved_names_cannot_be_overridden_by_extensions() {
    let response = Problem::new(StatusCode::FORBIDDEN)
        .type_uri("https://example.com/probs/forbidden")
        .detail("no")
        .extension("type", "https://evil.example/")
        .extension("title", "OK")
        .extension("status", 200)
        .extension("detail", "yes")
        .extension("instance", "/elsewhere")
        .into_response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let json = json_of(response);
    assert_eq!(
        json,
        json!({
            "type": "https://example.com/probs/forbidden",
            "title": "Forbidden",
            "status": 403,
            "detail": "no",
        })
    );
}

#[test]
fn extra_headers_are_sent_but_cannot_replace_content_type_or_cache_control() {
    let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .header(RETRY_AFTER, HeaderValue::from(30u64))
        .header(VARY, HeaderValue::from_static("origin"))
        .header(VARY, HeaderValue::from_static("x-device-id"))
        .header(CONTENT_TYPE, HeaderValue::from_static("text/html"))
        .header(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        )
        .into_response::<Empty<Bytes>>();
    let headers = response.headers();
    assert_eq!(headers[RETRY_AFTER], "30");
    let vary: Vec<_> = headers.get_all(VARY).iter().collect();
    assert_eq!(vary, ["origin", "x-device-id"]);
    let content_types: Vec<_> = headers.get_all(CONTENT_TYPE).iter().collect();
    assert_eq!(content_types, ["application/problem+json"]);
    let cache: Vec<_> = headers.get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(cache, ["no-store"]);
}

#[test]
fn full_body_has_an_exact_size_hint_and_one_frame() {
    let response = Problem::new(StatusCode::UNAUTHORIZED)
        .detail("missing API key")
        .into_response::<Empty<Bytes>>();
    let mut body = response.into_body();
    let expected = Problem::new(StatusCode::UNAUTHORIZED)
        .detail("missing API key")
        .to_json();
    assert_eq!(body.size_hint().exact(), Some(expected.len() as u64));
    assert!(!body.is_end_stream());

    let frame = block_on(body.frame())
        .expect("one frame")
        .expect("never fails");
    assert_eq!(frame.into_data().ok(), Some(expected));
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(block_on(body.frame()).is_none());
}

#[test]
fn empty_full_body_is_at_its_end_from_the_start() {
    for mut body in [
        ShieldBody::<Empty<Bytes>>::full(Bytes::new()),
        ShieldBody::<Empty<Bytes>>::empty(),
    ] {
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(block_on(body.frame()).is_none());
    }
}

/// An inner body with scripted frames, size hint and an error at the end.
struct Scripted {
    frames: VecDeque<Result<Frame<Bytes>, &'static str>>,
    hint: SizeHint,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.frames.pop_front())
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

#[test]
fn inner_body_passes_through_untouched() {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut hint = SizeHint::new();
    hint.set_lower(3);
    hint.set_upper(1000);
    let mut body = ShieldBody::inner(Scripted {
        frames: VecDeque::from([
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"de"))),
            Ok(Frame::trailers(trailers.clone())),
            Err("inner failure"),
        ]),
        hint,
    });

    assert_eq!(body.size_hint().lower(), 3);
    assert_eq!(body.size_hint().upper(), Some(1000));
    assert!(!body.is_end_stream());

    let first = block_on(body.frame()).expect("frame").expect("ok");
    assert_eq!(first.into_data().ok(), Some(Bytes::from_static(b"abc")));
    let second = block_on(body.frame()).expect("frame").expect("ok");
    assert_eq!(second.into_data().ok(), Some(Bytes::from_static(b"de")));
    let third = block_on(body.frame()).expect("frame").expect("ok");
    assert_eq!(third.into_trailers().ok(), Some(trailers));
    assert!(!body.is_end_stream());
    let error = block_on(body.frame()).expect("frame");
    assert_eq!(error.err(), Some("inner failure"));
    assert!(body.is_end_stream());
    assert!(block_on(body.frame()).is_none());
}

#[test]
fn inner_body_end_of_stream_and_exact_hint_are_the_inner_ones() {
    let body = ShieldBody::inner(Empty::<Bytes>::new());
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));

    let full = ShieldBody::inner(http_body_util::Full::new(Bytes::from_static(b"hello")));
    assert!(!full.is_end_stream());
    assert_eq!(full.size_hint().exact(), Some(5));
    let collected = block_on(full.collect()).expect("infallible").to_bytes();
    assert_eq!(collected, Bytes::from_static(b"hello"));
}

#[test]
fn default_body_is_the_inner_default() {
    let body: ShieldBody<Empty<Bytes>> = ShieldBody::default();
    assert!(body.is_end_stream());
}
