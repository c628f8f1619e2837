//! CORS done as the Fetch standard says, with origins checked at build time and the unsafe
//! configurations impossible.
//!
//! ```
//! use http::{Method, Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::cors::Cors;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cors = Cors::builder()
//!     .allow_origins(["https://app.example.com", "https://*.tenants.example.com"])
//!     .allow_credentials(true)
//!     .build()?;
//! let app = ServiceBuilder::new().layer(cors).service(service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(String::from("[]")))
//! }));
//!
//! // a preflight from an allowed origin: 204 and the policy
//! let preflight = Request::builder()
//!     .method(Method::OPTIONS)
//!     .uri("/playlist/generate")
//!     .header("origin", "https://acme.tenants.example.com")
//!     .header("access-control-request-method", "POST")
//!     .header("access-control-request-headers", "content-type,x-device-id")
//!     .body(())?;
//! let res = app.clone().oneshot(preflight).await?;
//! assert_eq!(res.status(), StatusCode::NO_CONTENT);
//! assert_eq!(res.headers()["access-control-allow-origin"], "https://acme.tenants.example.com");
//! assert_eq!(res.headers()["access-control-allow-credentials"], "true");
//! assert_eq!(res.headers()["access-control-max-age"], "600");
//!
//! // the actual request: the one origin back, and `Vary: Origin`
//! let get = Request::get("/search?q=jazz").header("origin", "https://app.example.com").body(())?;
//! let res = app.clone().oneshot(get).await?;
//! assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
//! assert_eq!(res.headers()["vary"], "origin");
//!
//! // a look-alike origin gets no CORS headers at all (the browser blocks the read)
//! let evil = Request::get("/search").header("origin", "https://tenants.example.com.evil.io").body(())?;
//! let res = app.clone().oneshot(evil).await?;
//! assert!(!res.headers().contains_key("access-control-allow-origin"));
//!
//! // a mistyped origin stops start-up, and says what was meant
//! let err = Cors::builder().allow_origin("https://app.example.com/").build().unwrap_err();
//! assert!(err.to_string().contains("did you mean `https://app.example.com`?"));
//!
//! // `*` with credentials can never work, so it is an error, not a panic
//! assert!(Cors::builder().allow_any_origin().allow_credentials(true).build().is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Origins
//!
//! Every origin is parsed into an [`Origin`] when the layer is built; a trailing slash, a
//! path, upper-case letters, a default port or whitespace is an error that names the entry and
//! says what it should be (rather than an entry that silently never matches). Besides exact
//! origins, two safe [patterns](OriginPattern) exist: `https://*.example.com` (one or more
//! labels, dot-anchored: never `example.com.evil.io`, never `evilexample.com`) and
//! `http://localhost:*` (any port). There is no regex. For anything else,
//! [`CorsBuilder::allow_origin_fn`] takes a predicate, clearly named, that is refused together
//! with credentials unless [`CorsBuilder::dangerously_allow_origin_fn_with_credentials`] is
//! called too.
//!
//! With [credentials](CorsBuilder::allow_credentials), these are configuration errors: `*`
//! (browsers refuse it), an empty list, an `http://` origin other than loopback (anyone on
//! the network path could inject script there and read the API as the user), and a wildcard
//! over a public suffix (`https://*.github.io`, `https://*.co.uk`: anyone can register a
//! sibling). `null` is refused in every mode unless [`CorsBuilder::dangerously_allow_null_origin`]:
//! sandboxed frames and `file:`/`data:` documents all send it.
//!
//! The public-suffix check uses a small built-in list (every single-label TLD, the common
//! second-level registries such as `co.uk`, and hosting platforms such as `github.io`,
//! `herokuapp.com`, `vercel.app`), not the full Public Suffix List: a wildcard over a suffix it
//! does not know passes. Check wildcards over hosting platforms by hand.
//!
//! # Preflights
//!
//! A preflight is exactly what Fetch says: `OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`. Any other `OPTIONS` request reaches the inner service. A
//! preflight is checked in full (origin; method byte for byte, `GET`/`HEAD`/`POST` always
//! allowed; every requested header case-insensitively) and answered here:
//!
//! - allowed: `204 No Content` ([200 if asked](CorsBuilder::preflight_status)) with
//!   `Access-Control-Allow-Origin` (the one origin), `-Allow-Credentials`, `-Allow-Methods`,
//!   `-Allow-Headers` and `-Max-Age` ([`MaxAge`], 600 s by default, at most 86400 s);
//! - refused: `403` with an `application/problem+json` body and **no** CORS headers, and one
//!   `tracing` event on target `tower_shield::security` (`event = "cors_refused"`,
//!   `owasp = "malicious_cors"`, `reason`). The browser reports the failure either way; the 403
//!   tells people reading logs and network panels what happened, and advertises nothing.
//!
//! `Authorization` is never covered by "any header" (Fetch never lets `*` cover it): list it.
//!
//! # Actual responses
//!
//! The layer decorates whatever response comes back from the service it wraps, so responses
//! made by layers inside it (a 429 from rate limiting, a 400 from validation) carry CORS
//! headers when the origin is allowed, and browser code can read `Retry-After` and the problem
//! details (`Retry-After`, `RateLimit` and `RateLimit-Policy` are exposed by default). Put it
//! outside those layers. An inner `Err` has no response to decorate: turn errors into
//! responses inside this layer (axum's `HandleErrorLayer`).
//!
//! - `Access-Control-Allow-Origin` is the request's origin when it is allowed, `*` in public
//!   mode ([`CorsBuilder::allow_any_origin`]), and absent otherwise. `ACAC: true` only goes
//!   with an allowed origin.
//! - `Vary: Origin` goes on every response whose `Access-Control-Allow-Origin` depends on the
//!   origin, refused and origin-less requests included, merged into the response's own `Vary`
//!   without duplicates (`Vary: *` is left alone). Public mode sends none.
//! - Access-Control-* headers the inner service set are replaced ([`InnerHeaders::Replace`]),
//!   so a response never carries two `Access-Control-Allow-Origin` values and a handler cannot
//!   widen the allow-list by accident; [`InnerHeaders::Keep`] lets a handler's own decide.
//!
//! CORS is not access control: a simple request from a refused origin still reaches the
//! handler (only reading the response is blocked). Authenticate requests on their own.
//!
//! # Cost
//!
//! Every header value is rendered once, in [`CorsBuilder::build`]. An allowed simple request
//! costs one origin lookup (a few byte comparisons, or one hash for long lists) and a few
//! `HeaderMap` inserts of shared values; the layer makes no heap allocation of its own. The
//! one exception is merging `Origin` into a `Vary` the response already has, which renders one
//! combined value.

mod future;
mod layer;
mod origin;
mod preflight;
mod service;

use std::fmt;
use std::sync::Arc;

use http::StatusCode;

pub use future::ResponseFuture;
pub use layer::CorsLayer;
pub use origin::{Origin, OriginError, OriginPattern, Scheme};
pub use preflight::is_preflight;
pub use service::CorsService;

use crate::error::ConfigError;
use crate::security_log::Coalescer;

/// A predicate over a request's `Origin` value, the escape hatch of
/// [`CorsBuilder::allow_origin_fn`].
pub(crate) type OriginFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The response headers exposed by default: the rate limit's, so that browser code can read
/// when to retry.
pub const DEFAULT_EXPOSED_HEADERS: [&str; 3] = ["Retry-After", "RateLimit", "RateLimit-Policy"];

/// Entry point: [`Cors::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Cors;

impl Cors {
    /// A builder with no origin allowed yet, no credentials, the methods
    /// `GET, POST, PUT, DELETE, OPTIONS`, any request header but `Authorization`, the
    /// [`DEFAULT_EXPOSED_HEADERS`] exposed, a max age of 600 s and `204` preflights.
    pub fn builder() -> CorsBuilder {
        CorsBuilder {
            origins: Vec::new(),
            origin_fn: None,
            origin_fn_with_credentials: false,
            allow_null: false,
            credentials: false,
            methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
                .map(String::from)
                .into(),
            headers: Vec::new(),
            any_header: true,
            expose: DEFAULT_EXPOSED_HEADERS.map(String::from).into(),
            max_age: MaxAge::DEFAULT,
            preflight_status: StatusCode::NO_CONTENT,
            inner_headers: InnerHeaders::Replace,
            coalescer: None,
        }
    }
}

/// The setting name of problems with the allowed origins.
pub(crate) const CORS_ALLOW_ORIGIN_SETTING: &str = "cors.allow_origin";
/// The setting name of problems with credentials.
pub(crate) const CORS_ALLOW_CREDENTIALS_SETTING: &str = "cors.allow_credentials";

/// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`).
///
/// Browsers cap it (Chromium at 7200 s, Firefox at 86400 s); more than 86400 s is a build
/// error. Without the header, browsers cache for 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(Option<u32>);

impl MaxAge {
    /// The EchoTuner guide's 600 s, the default.
    pub const DEFAULT: MaxAge = MaxAge(Some(600));
    /// The largest value accepted: 86400 s (one day, Firefox's cap).
    pub const MAX_SECONDS: u32 = 86_400;
    /// No header: browsers cache each preflight for 5 s.
    pub const UNSET: MaxAge = MaxAge(None);

    /// This many seconds (at most [`MaxAge::MAX_SECONDS`], checked when the layer is built).
    pub const fn seconds(seconds: u32) -> MaxAge {
        MaxAge(Some(seconds))
    }

    /// `0`: browsers send a preflight before every request that needs one.
    pub const fn disable_cache() -> MaxAge {
        MaxAge(Some(0))
    }

    /// The seconds sent, if any.
    pub const fn as_seconds(self) -> Option<u32> {
        self.0
    }
}

impl Default for MaxAge {
    fn default() -> Self {
        MaxAge::DEFAULT
    }
}

/// What happens to Access-Control-* headers the inner service put on its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InnerHeaders {
    /// Removed, and this layer's put in their place (the default): never two
    /// `Access-Control-Allow-Origin` values, never a handler widening the allow-list.
    #[default]
    Replace,
    /// When the response has its own `Access-Control-Allow-Origin`, its Access-Control-*
    /// headers stay and this layer adds only `Vary: Origin`.
    Keep,
}

/// Builds a [`CorsLayer`]; see the [module documentation](self). [`CorsBuilder::build`] checks
/// every setting and reports every problem at once.
#[must_use]
#[derive(Clone)]
pub struct CorsBuilder {
    origins: Vec<String>,
    origin_fn: Option<OriginFn>,
    origin_fn_with_credentials: bool,
    allow_null: bool,
    credentials: bool,
    methods: Vec<String>,
    headers: Vec<String>,
    any_header: bool,
    expose: Vec<String>,
    max_age: MaxAge,
    preflight_status: StatusCode,
    inner_headers: InnerHeaders,
    coalescer: Option<Arc<Coalescer>>,
}

impl fmt::Debug for CorsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsBuilder")
            .field("origins", &self.origins)
            .field("origin_fn", &self.origin_fn.is_some())
            .field("allow_null", &self.allow_null)
            .field("credentials", &self.credentials)
            .field("methods", &self.methods)
            .field("headers", &self.headers)
            .field("any_header", &self.any_header)
            .field("expose", &self.expose)
            .field("max_age", &self.max_age)
            .field("preflight_status", &self.preflight_status)
            .field("inner_headers", &self.inner_headers)
            .finish()
    }
}

impl CorsBuilder {
    /// The coalescer of the security events this layer emits (default: a
    /// [`Coalescer::default`] of this layer's own); pass the log layer's
    /// ([`SecurityLogLayer::coalescer`](crate::security_log::SecurityLogLayer::coalescer)) to
    /// share its flood control and flushing.
    pub fn coalescer(mut self, coalescer: Arc<Coalescer>) -> Self {
        self.coalescer = Some(coalescer);
        self
    }

    /// Allows one origin or [pattern](OriginPattern): `https://app.example.com`,
    /// `https://*.example.com`, `http://localhost:*`. Checked in [`build`](Self::build).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Allows each of these origins or patterns (added to those already allowed). An entry
    /// `*` alone means public mode, as [`allow_any_origin`](Self::allow_any_origin).
    pub fn allow_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.origins
            .extend(origins.into_iter().map(|o| o.as_ref().to_owned()));
        self
    }

    /// Public mode: `Access-Control-Allow-Origin: *` on every response, for APIs anyone may
    /// read without credentials. An error together with credentials or with listed origins.
    pub fn allow_any_origin(self) -> Self {
        self.allow_origin("*")
    }

    /// The escape hatch: also allow every origin for which `predicate` returns `true`, after
    /// the listed origins and patterns have not matched. It gets the request's `Origin` value
    /// exactly as sent (any bytes a browser would never send are refused before it is asked).
    ///
    /// A predicate is easy to get wrong (`ends_with("example.com")` admits
    /// `evilexample.com`; ignoring the scheme admits `http://`), so prefer patterns. Together
    /// with credentials it is an error unless
    /// [`dangerously_allow_origin_fn_with_credentials`](Self::dangerously_allow_origin_fn_with_credentials)
    /// is called too.
    pub fn allow_origin_fn(
        mut self,
        predicate: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.origin_fn = Some(Arc::new(predicate));
        self
    }

    /// Accepts [`allow_origin_fn`](Self::allow_origin_fn) together with credentials: a
    /// predicate that says yes too often lets any site read your users' data.
    pub fn dangerously_allow_origin_fn_with_credentials(mut self) -> Self {
        self.origin_fn_with_credentials = true;
        self
    }

    /// Allows the origin `null`. Sandboxed iframes, `file:` and `data:` documents and some
    /// redirects all send `Origin: null`, so any attacker can: with credentials this gives
    /// every site on the web your users' data. Refused (a build error if listed) unless this
    /// is called.
    pub fn dangerously_allow_null_origin(mut self) -> Self {
        self.allow_null = true;
        self
    }

    /// Whether browsers may send cookies and HTTP authentication, and read the response
    /// (`Access-Control-Allow-Credentials: true`, only ever sent with an allowed origin).
    /// Default `false` here; `CORS_ALLOW_CREDENTIALS` defaults to `true`, as in the guide.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// The methods preflights may ask for (replacing the default list). Compared byte for
    /// byte, as browsers do: `put` is not `PUT`. `GET`, `HEAD` and `POST` are always allowed.
    pub fn allow_methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.methods = methods.into_iter().map(|m| m.as_ref().to_owned()).collect();
        self
    }

    /// The request headers preflights may ask for, compared case-insensitively; replaces the
    /// list and turns "any header" off. `*` in the list is
    /// [`allow_any_header`](Self::allow_any_header).
    pub fn allow_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.headers = headers.into_iter().map(|h| h.as_ref().to_owned()).collect();
        self.any_header = false;
        self
    }

    /// Any request header except `Authorization`, which Fetch never lets a wildcard cover:
    /// list it with [`allow_headers`](Self::allow_headers) (called before this) to allow it too.
    /// The preflight answer names the headers asked for.
    pub fn allow_any_header(mut self) -> Self {
        self.any_header = true;
        self
    }

    /// The response headers browser code may read beyond the safelisted ones (replaces the
    /// default list). `*` (all but `Set-Cookie`) is an error with credentials, where browsers
    /// take it literally.
    pub fn expose_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.expose = headers.into_iter().map(|h| h.as_ref().to_owned()).collect();
        self
    }

    /// How long browsers may cache a preflight's answer. Default 600 s.
    pub fn max_age(mut self, max_age: MaxAge) -> Self {
        self.max_age = max_age;
        self
    }

    /// The status of an allowed preflight: `204 No Content` (default) or `200 OK` (for old
    /// clients that choke on 204). Anything else is an error.
    pub fn preflight_status(mut self, status: StatusCode) -> Self {
        self.preflight_status = status;
        self
    }

    /// What happens to Access-Control-* headers the inner service sets. Default
    /// [`InnerHeaders::Replace`].
    pub fn inner_headers(mut self, policy: InnerHeaders) -> Self {
        self.inner_headers = policy;
        self
    }

    /// Checks every setting and builds the layer, or lists every problem.
    pub fn build(self) -> Result<CorsLayer, ConfigError> {
        layer::compile(self)
    }
}
