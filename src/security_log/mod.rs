//! Security logging: one typed [`SecurityEvent`] vocabulary for every layer, and the
//! [`SecurityLog`] layer that puts each request in a span with a request id.
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::client_ip::{ClientIpStrategy, PeerAddr};
//! use tower_shield::security_log::{AuthOutcome, RequestId, SecurityLog};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Logs go wherever your `tracing` subscriber sends them: here one JSON object per line.
//! let _logs = tracing::subscriber::set_default(tracing_subscriber::fmt().json().finish());
//! let app = ServiceBuilder::new()
//!     .layer(SecurityLog::builder().client_ip(ClientIpStrategy::peer()).build()?)
//!     .service(service_fn(|req: Request<()>| async move {
//!         // Handlers can read the request id, e.g. to quote it in an error body.
//!         let id = req.extensions().get::<RequestId>().map(|id| id.as_str().to_owned());
//!         let mut res = Response::new(id.unwrap_or_default());
//!         if req.headers().get("x-api-key").is_none() {
//!             // An authentication failure: logged as `auth_attempt`, `authn_login_fail`.
//!             *res.status_mut() = StatusCode::UNAUTHORIZED;
//!         } else {
//!             // An auth layer reports success (and the key's public id) like this.
//!             res.extensions_mut().insert(AuthOutcome::success(Some("ts_live_3f9a".into())));
//!         }
//!         Ok::<_, Infallible>(res)
//!     }));
//!
//! // A valid incoming X-Request-Id is kept and echoed; otherwise one is generated.
//! let req = Request::get("/search?q=jazz&api_key=never-logged")
//!     .header("x-request-id", "req-42")
//!     .header("user-agent", "curl/8.5\u{2028}INFO forged line") // logged escaped: one line
//!     .extension(PeerAddr("203.0.113.7:4711".parse::<SocketAddr>()?))
//!     .body(())?;
//! let res = app.clone().oneshot(req).await?;
//! assert_eq!(res.headers()["x-request-id"], "req-42");
//! assert_eq!(res.into_body(), "req-42");
//!
//! let req = Request::get("/").header("x-request-id", "bad id!").body(())?;
//! let res = app.oneshot(req).await?;
//! assert_eq!(res.headers()["x-request-id"].len(), 32); // 128 random bits, hex
//! # Ok(())
//! # }
//! ```
//!
//! # The request span
//!
//! Every request runs inside an INFO span named `request` with target
//! [`REQUEST_TARGET`] (`tower_shield::request`), so you can route request logs and
//! [security events](TARGET) (`tower_shield::security`) to different places with
//! `tracing_subscriber::filter::Targets`. Its fields:
//!
//! | field | value |
//! |---|---|
//! | `request_id` | the incoming `X-Request-Id` if it matches `^[A-Za-z0-9._-]{1,64}$`, else 128 random bits in hex; echoed on the response and put in the request's extensions as a [`RequestId`] |
//! | `method` | the method |
//! | `path` | the path, **without the query** (queries carry `api_key=`, `token=`…) |
//! | `client_ip` | from the [`ClientIpStrategy`] you give, the same one the rate limit uses |
//! | `client_ip_error` | when the address cannot be determined: `missing_peer`, `malformed`, `obfuscated`, `too_many_entries` or `missing_hops`, never the header's content (`missing_peer`, the server's set-up error, is also reported as a `client_unidentified` ERROR event, coalesced) |
//! | `user_agent` | the `User-Agent`, escaped and cut to 256 bytes |
//! | `device_hash` | when `X-Device-ID` is one value matching `^[A-Za-z0-9_-]{1,64}$`: 8 hex digits of its keyed hash ([`subject_hash`]), never the id |
//!
//! When the response is ready, one INFO event `request_completed` (target
//! `tower_shield::request`, fields `event = "request_completed"`, `status` and `latency_us`)
//! is logged inside the span (`request_failed`, with `latency_us`, when the inner service
//! fails). Status and latency are recorded on that event rather than re-recorded on the span:
//! a JSON formatter re-parses a span's fields on every late `record`, which would cost more
//! than the rest of the layer. Every security event a layer logs while handling the request is
//! inside the span too, so a JSON subscriber (`with_current_span`, the default) prints the
//! request id, method, path and client address on each.
//!
//! The span's fields are computed only when a subscriber wants the span; with no subscriber
//! the layer only sets the request id.
//!
//! # Authentication outcomes
//!
//! After the inner service answers, the layer logs one `auth_attempt` event from the
//! response, unless the response carries [`EventLogged`] (the layer that refused it logged
//! it already):
//!
//! - an [`AuthOutcome`] response extension: `authn_login_success` (INFO) or
//!   `authn_login_fail`, with its `key_prefix`;
//! - otherwise a `401`: `authn_login_fail`; a `403`: `authz_fail`.
//!
//! # What is never logged
//!
//! Header values other than `User-Agent` (and the validated request id), so never
//! `Authorization`, `Cookie`, `Set-Cookie` or `X-API-Key`; the query string, so never
//! `?api_key=`; bodies. Every logged string is escaped (see [`escape`]), so control
//! characters, ANSI sequences, line separators and bidi controls cannot forge a log line or
//! attack a terminal, whatever the subscriber's format. [`redact`] holds the list of
//! credential headers and parameters, for your own logging.
//!
//! # Floods
//!
//! Identical security events beyond 5 a minute, and distinct events of one kind beyond 100 a
//! minute, are counted instead of logged, and reported by one summary event with
//! `suppressed = N` ([`Coalescer`]), so a flood cannot fill the disk or bury other lines.
//! Call the layer's [`coalescer`](SecurityLogLayer::coalescer)`().flush()` on shutdown.
//!
//! # Setting up `tracing-subscriber`
//!
//! This crate only emits; the subscriber decides the format. With `LOG_FORMAT` (the
//! reference server's choice): JSON is one object per line (field
//! values are JSON-escaped, on top of this crate's own escaping), pretty is for people.
//!
//! ```
//! use tower_shield::config::LogFormat;
//! use tracing_subscriber::fmt;
//!
//! /// Installs the process's subscriber: INFO and up, on stdout.
//! fn init_logging(format: LogFormat) {
//!     let builder = fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::stdout);
//!     let installed = match format {
//!         // One JSON object per line; the request span's fields (request id, client ip…)
//!         // on every event, once.
//!         LogFormat::Json => builder
//!             .json()
//!             .flatten_event(true)
//!             .with_current_span(true)
//!             .with_span_list(false)
//!             .try_init(),
//!         LogFormat::Pretty => builder.pretty().try_init(),
//!     };
//!     if let Err(error) = installed {
//!         eprintln!("logging is not set up: {error}");
//!     }
//! }
//! # let _ = init_logging; // a test process must not install a global subscriber
//! ```

pub mod coalesce;
pub mod escape;
mod event;
mod future;
mod layer;
pub mod redact;
mod service;

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

pub use coalesce::Coalescer;
#[cfg(feature = "rate-limit")]
pub(crate) use coalesce::listened;
#[cfg(any(feature = "rate-limit", feature = "api-key"))]
pub(crate) use event::Hex8;
#[cfg(feature = "rate-limit")]
pub(crate) use event::IpText;
pub use event::{Malicious, SecurityEvent, TARGET};
pub use future::ResponseFuture;
pub use layer::SecurityLogLayer;
pub use service::SecurityLogService;

use crate::ConfigError;
use crate::client_ip::ClientIpStrategy;
use crate::error::ConfigErrors;
use crate::limiter::KeyHasher;

/// The `tracing` target of the request span and its `request_completed` event.
pub const REQUEST_TARGET: &str = "tower_shield::request";

/// The default request-id header, `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// 32 bits of `hasher`'s keyed hash of an identifier (a device or session id): enough to tell
/// subjects apart in the logs, useless to recover the id. The log and the rate limit agree on
/// a subject when they hash with the same hasher (the `Shield` gives the log the rate limit
/// store's).
pub fn subject_hash(hasher: &KeyHasher, id: &[u8]) -> u32 {
    (hasher.hash(id).to_u128() >> 96) as u32
}

/// The request id of a request: put in its extensions by [`SecurityLog`] and echoed in the
/// response's `X-Request-Id`.
///
/// Either the client's (or a proxy's) `X-Request-Id`, when it matches
/// `^[A-Za-z0-9._-]{1,64}$`, or 128 random bits as 32 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A request id from a header value, if it is 1 to 64 of `A-Z a-z 0-9 . _ -`.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use tower_shield::security_log::RequestId;
    ///
    /// assert!(RequestId::parse(&HeaderValue::from_static("req-42.a_b")).is_some());
    /// assert!(RequestId::parse(&HeaderValue::from_static("x\ty")).is_none());
    /// assert!(RequestId::parse(&HeaderValue::from_static("")).is_none());
    /// ```
    pub fn parse(value: &HeaderValue) -> Option<RequestId> {
        let bytes = value.as_bytes();
        let valid = (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| RequestId(value.clone()))
    }

    /// A new random request id: 128 bits from the thread's CSPRNG, as 32 hex digits.
    pub fn generate() -> RequestId {
        // One draw of 128 bits (an array of bytes would draw each byte on its own).
        let bits: u128 = rand::random();
        let mut buf = [0u8; 32];
        // Cannot fail: 16 bytes are 32 digits.
        let _ = hex::encode_to_slice(bits.to_be_bytes(), &mut buf);
        // One allocation, shared without another by the request's extension and the response
        // header (a `Vec`-backed value would allocate again on its first clone). Hex digits
        // are a valid header value.
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf));
        RequestId(value.unwrap_or_else(|_| HeaderValue::from_static("0")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ever built from checked ASCII.
        self.0.to_str().unwrap_or("")
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as an owned header value.
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }
}

/// A response extension by which an authentication layer (or handler) tells
/// [`SecurityLog`] how authentication went, so it logs one `auth_attempt` event
/// (`authn_login_success` at INFO or `authn_login_fail` at WARN) with the client's address
/// and the request id.
///
/// `key_prefix` is the public, non-secret id of the credential used (an API key's id part),
/// never the credential. A layer that logs its refusals itself also inserts [`EventLogged`],
/// and then `SecurityLog` logs nothing more for that response.
///
/// ```
/// use http::Response;
/// use tower_shield::security_log::AuthOutcome;
///
/// let mut res = Response::new(());
/// res.extensions_mut().insert(AuthOutcome::success(Some("ts_live_3f9a".into())));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthOutcome {
    /// Whether the request authenticated.
    pub success: bool,
    /// The public identifier of the credential presented, if it could be parsed.
    pub key_prefix: Option<String>,
}

impl AuthOutcome {
    /// Authenticated, with the credential's public id.
    pub fn success(key_prefix: Option<String>) -> Self {
        AuthOutcome {
            success: true,
            key_prefix,
        }
    }

    /// Not authenticated, with the public id of the credential presented, if any.
    pub fn failure(key_prefix: Option<String>) -> Self {
        AuthOutcome {
            success: false,
            key_prefix,
        }
    }
}

/// A response extension saying "the security event of this response is already logged":
/// [`SecurityLog`] then derives no `auth_attempt` event from its status or
/// [`AuthOutcome`]. Layers that emit a [`SecurityEvent`] when they refuse a request (a 401,
/// a 403) put it on their response so the refusal is logged once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventLogged;

/// The security logging layer: see the [module documentation](self).
///
/// ```
/// use tower_shield::security_log::SecurityLog;
///
/// let layer = SecurityLog::builder().build()?;
/// # let _ = layer;
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SecurityLog;

impl SecurityLog {
    /// A builder with the defaults: client address from the peer
    /// ([`ClientIpStrategy::peer`]), `X-Request-Id` accepted when valid, `X-Device-ID`
    /// hashed, fields cut at 256 bytes, auth outcomes logged, a [`Coalescer`] of its own.
    pub fn builder() -> SecurityLogBuilder {
        SecurityLogBuilder::default()
    }
}

/// Builds a [`SecurityLogLayer`]; start from [`SecurityLog::builder`].
#[derive(Clone, Debug)]
pub struct SecurityLogBuilder {
    client_ip: ClientIpStrategy,
    request_id_header: HeaderName,
    accept_request_id: bool,
    device_header: Option<HeaderName>,
    max_field_len: usize,
    auth_events: bool,
    coalescer: Option<Arc<Coalescer>>,
    subjects: Option<KeyHasher>,
}

impl Default for SecurityLogBuilder {
    fn default() -> Self {
        SecurityLogBuilder {
            client_ip: ClientIpStrategy::peer(),
            request_id_header: X_REQUEST_ID,
            accept_request_id: true,
            device_header: Some(crate::DEVICE_ID_HEADER),
            max_field_len: escape::DEFAULT_MAX_LEN,
            auth_events: true,
            coalescer: None,
            subjects: None,
        }
    }
}

impl SecurityLogBuilder {
    /// How the client address is found: use the same strategy as the rate limit.
    pub fn client_ip(mut self, strategy: ClientIpStrategy) -> Self {
        self.client_ip = strategy;
        self
    }

    /// The request-id header read and echoed (default `x-request-id`).
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = name;
        self
    }

    /// Whether a valid incoming request id is kept (default `true`, so ids from your proxy
    /// or the client correlate). With `false` every request gets a fresh id.
    pub fn accept_request_id(mut self, accept: bool) -> Self {
        self.accept_request_id = accept;
        self
    }

    /// The device-id header whose hash is logged (default `x-device-id`); `None` logs none.
    pub fn device_header(mut self, name: Option<HeaderName>) -> Self {
        self.device_header = name;
        self
    }

    /// The most bytes of the path and user agent logged before the truncation marker
    /// (default 256; 16 to 8192).
    pub fn max_field_len(mut self, len: usize) -> Self {
        self.max_field_len = len;
        self
    }

    /// Whether `auth_attempt` events are derived from responses (default `true`).
    pub fn auth_events(mut self, on: bool) -> Self {
        self.auth_events = on;
        self
    }

    /// The coalescer of the events this layer emits (default: a [`Coalescer::default`] of
    /// this layer's own).
    pub fn coalescer(mut self, coalescer: Arc<Coalescer>) -> Self {
        self.coalescer = Some(coalescer);
        self
    }

    /// The keyed hash of the `device_hash` field (default: a random key of this layer's own).
    /// Give it the rate limit store's hasher
    /// ([`MemoryStore::key_hasher`](crate::limiter::MemoryStore::key_hasher)) so that a
    /// device's hash in the request span and in the rate limit's events and monitor agree.
    pub fn subject_hasher(mut self, hasher: KeyHasher) -> Self {
        self.subjects = Some(hasher);
        self
    }

    /// The layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every problem: a `max_field_len` outside 16 to 8192, and a
    /// request-id or device header that carries credentials (`authorization`, `cookie`…),
    /// which would put a secret in the logs or echo it.
    pub fn build(self) -> Result<SecurityLogLayer, ConfigError> {
        let mut errors = ConfigErrors::default();
        if !(16..=8192).contains(&self.max_field_len) {
            errors.push(
                "security_log.max_field_len",
                format!(
                    "{} bytes: use 16 to 8192 (256 keeps a log line readable)",
                    self.max_field_len
                ),
            );
        }
        if redact::is_sensitive_header(&self.request_id_header) {
            errors.push(
                "security_log.request_id_header",
                format!(
                    "{} carries credentials; it would be logged and echoed",
                    self.request_id_header
                ),
            );
        }
        if let Some(name) = self
            .device_header
            .as_ref()
            .filter(|n| redact::is_sensitive_header(n))
        {
            errors.push(
                "security_log.device_header",
                format!("{name} carries credentials; only a hash is logged, but use an id header"),
            );
        }
        errors.finish(|| SecurityLogLayer {
            shared: Arc::new(layer::Shared {
                client_ip: self.client_ip,
                request_id_header: self.request_id_header,
                accept_request_id: self.accept_request_id,
                device_header: self.device_header,
                max_field_len: self.max_field_len,
                auth_events: self.auth_events,
                coalescer: self.coalescer.unwrap_or_default(),
                subjects: self.subjects.unwrap_or_else(KeyHasher::random),
            }),
        })
    }
}
