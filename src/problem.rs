//! RFC 9457 `application/problem+json` responses, and the response body of every layer.
//!
//! Every response a tower-shield layer makes itself (429 Too Many Requests, 400, 403, 413,
//! 401…) is a [`Problem`]: a small JSON object that says what went wrong in a form both people
//! and programs can read ([RFC 9457]). Such a response is never cached
//! (`Cache-Control: no-store`), and its body never says more than the layer chose to put
//! into it.
//!
//! Because a layer answers either with the inner service's response or with one of its own,
//! its response body is a [`ShieldBody`]: the inner body passed through untouched, or a
//! complete buffer of bytes.
//!
//! ```
//! use http::{StatusCode, header};
//! use http_body_util::{BodyExt, Empty};
//! use bytes::Bytes;
//! use tower_shield::problem::Problem;
//!
//! let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
//!     .type_uri("https://iana.org/assignments/http-problem-types#quota-exceeded")
//!     .detail("10 requests per 300 s per device; try again in 30 s")
//!     .extension("violated-policies", serde_json::json!(["generate"]))
//!     .header(header::RETRY_AFTER, http::HeaderValue::from(30u64))
//!     // The inner service's body type; `Empty<Bytes>` stands in for it here.
//!     .into_response::<Empty<Bytes>>();
//!
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
//! assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
//! assert_eq!(response.headers()[header::RETRY_AFTER], "30");
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let body = runtime.block_on(response.into_body().collect())?.to_bytes();
//! let json: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(json["status"], 429);
//! assert_eq!(json["title"], "Too Many Requests");
//! assert_eq!(json["violated-policies"][0], "generate");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [RFC 9457]: https://www.rfc-editor.org/rfc/rfc9457

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde_json::Value;

/// The media type of a problem document ([RFC 9457 §3]).
///
/// [RFC 9457 §3]: https://www.rfc-editor.org/rfc/rfc9457#section-3
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The member names RFC 9457 defines; an [extension](Problem::extension) cannot take them.
const RESERVED: [&str; 5] = ["type", "title", "status", "detail", "instance"];

/// An RFC 9457 problem document, built up and then turned into a response.
///
/// - `type` defaults to `about:blank`, which RFC 9457 defines as "nothing more than the
///   status code says".
/// - `title` defaults to the status code's canonical reason phrase (`Too Many Requests`), and
///   is left out for a status code that has none.
/// - `status` is always the response's status code.
/// - `detail`, `instance` and extension members appear only when set.
///
/// The response carries `Content-Type: application/problem+json` and
/// `Cache-Control: no-store`, plus any [headers](Problem::header) added (such as
/// `Retry-After`).
///
/// See the [module documentation](self) for an example.
#[derive(Clone)]
pub struct Problem(Box<Fields>);

/// The members and headers of a [`Problem`], boxed so that a `Result<_, Problem>` stays small.
#[derive(Clone)]
struct Fields {
    status: StatusCode,
    type_uri: Cow<'static, str>,
    title: Option<Cow<'static, str>>,
    detail: Option<String>,
    instance: Option<String>,
    extensions: Vec<(String, Value)>,
    headers: HeaderMap,
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.0.status)
            .field("type", &self.0.type_uri)
            .field("title", &self.title_or_reason())
            .field("detail", &self.0.detail)
            .field("instance", &self.0.instance)
            .field("extensions", &self.0.extensions)
            .field("headers", &self.0.headers)
            .finish()
    }
}

impl Problem {
    /// A problem with the given status, type `about:blank` and the status's reason phrase as
    /// its title.
    pub fn new(status: StatusCode) -> Self {
        Problem(Box::new(Fields {
            status,
            type_uri: Cow::Borrowed("about:blank"),
            title: None,
            detail: None,
            instance: None,
            extensions: Vec::new(),
            headers: HeaderMap::new(),
        }))
    }

    /// Sets the `type` member: a URI that identifies the kind of problem, such as
    /// `https://iana.org/assignments/http-problem-types#quota-exceeded`.
    pub fn type_uri(mut self, type_uri: impl Into<Cow<'static, str>>) -> Self {
        self.0.type_uri = type_uri.into();
        self
    }

    /// Sets the `title` member: a short, human-readable summary of the kind of problem. It
    /// should not change from occurrence to occurrence; put the specifics in
    /// [`detail`](Problem::detail).
    pub fn title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.0.title = Some(title.into());
        self
    }

    /// Sets the `detail` member: an explanation specific to this occurrence, written for
    /// the client (never an internal error message or anything secret).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Sets the `instance` member: a URI reference that identifies this occurrence.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.0.instance = Some(instance.into());
        self
    }

    /// Adds an extension member, such as `violated-policies` for a 429.
    ///
    /// Setting the same name again replaces the earlier value. The names RFC 9457 defines
    /// (`type`, `title`, `status`, `detail`, `instance`) cannot be set this way: such a call is
    /// ignored, so an extension can never contradict the status code or the type. Use the
    /// dedicated methods for those members.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if RESERVED.contains(&name.as_str()) {
            return self;
        }
        let value = value.into();
        match self.0.extensions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.extensions.push((name, value)),
        }
        self
    }

    /// Adds a header to the response, such as `Retry-After` or `RateLimit`.
    ///
    /// Headers are appended, so a name may be given more than once. `Content-Type` and
    /// `Cache-Control` are always `application/problem+json` and `no-store`: values given for
    /// them here are replaced.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.append(name, value);
        self
    }

    /// The status code of the response.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The `title` member as it will be sent: the one set, else the status's reason phrase.
    fn title_or_reason(&self) -> Option<&str> {
        match &self.0.title {
            Some(title) => Some(title),
            None => self.0.status.canonical_reason(),
        }
    }

    /// The problem document as JSON bytes.
    pub fn to_json(&self) -> Bytes {
        match self.write_json() {
            Ok(json) => Bytes::from(json),
            // Writing strings, integers and `Value`s into a `Vec` does not fail; should it
            // ever, the client still gets a well-formed document with the status.
            Err(_) => Bytes::from(format!(
                "{{\"type\":\"about:blank\",\"status\":{}}}",
                self.0.status.as_u16()
            )),
        }
    }

    fn write_json(&self) -> serde_json::Result<Vec<u8>> {
        /// Writes `{"name":` or `,"name":`.
        fn key(out: &mut Vec<u8>, name: &str) -> serde_json::Result<()> {
            out.push(if out.is_empty() { b'{' } else { b',' });
            serde_json::to_writer(&mut *out, name)?;
            out.push(b':');
            Ok(())
        }

        let mut out = Vec::with_capacity(128);
        key(&mut out, "type")?;
        serde_json::to_writer(&mut out, &*self.0.type_uri)?;
        if let Some(title) = self.title_or_reason() {
            key(&mut out, "title")?;
            serde_json::to_writer(&mut out, title)?;
        }
        key(&mut out, "status")?;
        serde_json::to_writer(&mut out, &self.0.status.as_u16())?;
        if let Some(detail) = &self.0.detail {
            key(&mut out, "detail")?;
            serde_json::to_writer(&mut out, detail)?;
        }
        if let Some(instance) = &self.0.instance {
            key(&mut out, "instance")?;
            serde_json::to_writer(&mut out, instance)?;
        }
        for (name, value) in &self.0.extensions {
            key(&mut out, name)?;
            serde_json::to_writer(&mut out, value)?;
        }
        out.push(b'}');
        Ok(out)
    }

    /// The response: this status, the problem document as its body, the headers added, and
    /// `Content-Type: application/problem+json` and `Cache-Control: no-store`.
    ///
    /// `B` is the body type of the inner service the layer wraps.
    pub fn into_response<B>(self) -> Response<ShieldBody<B>> {
        let body = self.to_json();
        let mut response = Response::new(ShieldBody::full(body));
        *response.status_mut() = self.0.status;
        let headers = response.headers_mut();
        *headers = self.0.headers;
        set_problem_headers(headers);
        response
    }
}

/// Marks `headers` as those of a problem response: its media type, and `no-store` (one
/// client's refusal is not another's answer). Every problem response of the crate, the rate
/// limit's prepared 429s included, gets these two from here.
pub(crate) fn set_problem_headers(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pin_project! {
    /// The response body of every tower-shield layer.
    ///
    /// A layer either passes the inner service's response on, with its body `B` untouched
    /// ([`ShieldBody::inner`]), or answers by itself with a complete buffer of bytes
    /// ([`ShieldBody::full`], as [`Problem::into_response`] does). Both are the same type, so a
    /// layer's service has one response type whatever it decides.
    ///
    /// - Frames, trailers, [`size_hint`](Body::size_hint) and
    ///   [`is_end_stream`](Body::is_end_stream) of an inner body are those of `B`.
    /// - A full body yields its bytes as one data frame (none when empty), has an exact size
    ///   hint, and never fails.
    /// - The error type is `B::Error`, so wrapping a body in a `ShieldBody` changes nothing
    ///   for error handling.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body::Body;
    /// use http_body_util::Empty;
    /// use tower_shield::problem::ShieldBody;
    ///
    /// let ours: ShieldBody<Empty<Bytes>> = ShieldBody::full(Bytes::from_static(b"{}"));
    /// assert_eq!(ours.size_hint().exact(), Some(2));
    ///
    /// let theirs = ShieldBody::inner(Empty::<Bytes>::new());
    /// assert!(theirs.is_end_stream());
    /// ```
    #[derive(Debug)]
    pub struct ShieldBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
        },
        Full {
            // `None` once the bytes have been yielded.
            data: Option<Bytes>,
        },
    }
}

impl<B> ShieldBody<B> {
    /// The inner service's body, passed through untouched.
    pub fn inner(body: B) -> Self {
        ShieldBody {
            kind: Kind::Inner { body },
        }
    }

    /// A complete body of the given bytes: a response the layer makes itself.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        ShieldBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty body (a full body of no bytes).
    pub fn empty() -> Self {
        ShieldBody {
            kind: Kind::Full { data: None },
        }
    }
}

/// A complete body, so that `ShieldBody<B>` can carry a request body the sanitizer has read
/// and checked: wrap a body type without `From<Bytes>` (hyper's `Incoming`) with
/// [`ShieldBody::inner`] to put the sanitizer, or the whole [`Shield`](crate::Shield), in
/// front of it.
impl<B> ShieldBody<ShieldBody<B>> {
    /// One body out of a body nested by two layers: the inner layer's, or the outer one's
    /// own bytes.
    #[cfg_attr(not(feature = "shield"), allow(dead_code))]
    pub(crate) fn flatten(self) -> ShieldBody<B> {
        match self.kind {
            Kind::Inner { body } => body,
            Kind::Full { data } => ShieldBody {
                kind: Kind::Full { data },
            },
        }
    }
}

impl<B> From<Bytes> for ShieldBody<B> {
    fn from(data: Bytes) -> Self {
        ShieldBody::full(data)
    }
}

impl<B: Default> Default for ShieldBody<B> {
    /// The inner body type's default, passed through.
    fn default() -> Self {
        ShieldBody::inner(B::default())
    }
}

impl<B> Body for ShieldBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
