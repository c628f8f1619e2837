//! Bounded body collection: counted while streaming, never more than the limit buffered.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body::Body;

/// Why collecting stopped early.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CollectError {
    /// More bytes than the limit arrived.
    TooLarge,
    /// The body itself failed (the connection broke, a frame was malformed…).
    Failed,
}

/// Polls `body` to its end, appending data frames to `buf`, and fails as soon as more than
/// `limit` bytes have arrived. Trailers are dropped.
pub(crate) fn poll_collect<B>(
    mut body: Pin<&mut B>,
    buf: &mut BytesMut,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<Result<(), CollectError>>
where
    B: Body,
    B::Data: Buf,
{
    loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            None => return Poll::Ready(Ok(())),
            Some(Err(_)) => return Poll::Ready(Err(CollectError::Failed)),
            Some(Ok(frame)) => {
                if let Ok(mut data) = frame.into_data() {
                    if data.remaining() > limit - buf.len() {
                        return Poll::Ready(Err(CollectError::TooLarge));
                    }
                    buf.reserve(data.remaining());
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        let n = chunk.len();
                        buf.put_slice(chunk);
                        data.advance(n);
                    }
                }
            }
        }
    }
}

/// The declared length: `Ok(None)` when there is none, `Err` when it is not one decimal
/// number (several different values, or garbage).
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| ())?;
        let n = parse_length(text.trim()).ok_or(())?;
        if found.is_some_and(|f| f != n) {
            return Err(());
        }
        found = Some(n);
    }
    Ok(found)
}

fn parse_length(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether the body is declared JSON: `application/json` or `application/…+json`, any
/// parameters (`; charset=utf-8`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.is_char_boundary(subtype.len() - 5)
                && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn json_media_types() {
        let mut h = HeaderMap::new();
        for (v, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("application/+json", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), ok, "{v}");
        }
        h.remove(CONTENT_TYPE);
        assert!(!is_json(&h));
    }

    #[test]
    fn lengths() {
        let mut h = HeaderMap::new();
        assert_eq!(content_length(&h), Ok(None));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(content_length(&h), Ok(Some(12)));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("13"));
        assert!(content_length(&h).is_err());
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("+1"));
        assert!(content_length(&h).is_err());
    }
}
