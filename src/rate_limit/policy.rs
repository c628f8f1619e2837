//! What is limited: policies (a name, a quota, a scope) and the routes they apply to.

use std::fmt;
use std::sync::Arc;

use http::header::HeaderName;
use http::{Extensions, HeaderMap, Method, Request, Uri};

use crate::DEVICE_ID_HEADER;
use crate::limiter::{Key, Quota};
use crate::route::Route;

/// A key function over the request, for [`Scope::custom`]. `None` means the policy does not
/// apply to this request.
pub type KeyFn = Arc<dyn Fn(&RequestHead<'_>) -> Option<Key> + Send + Sync>;

/// What a [`Scope::custom`] key function sees of a request: its head, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (for instance an identity an earlier layer inserted).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// Whose allowance a request spends.
#[derive(Clone)]
pub enum Scope {
    /// The client IP address (IPv6 grouped by prefix, /64 by default).
    Ip,
    /// A session identifier header, falling back to the client IP when the header is absent
    /// or not a valid identifier.
    Session(HeaderName),
    /// A device identifier header, required: a request without exactly one valid instance is
    /// refused with 400.
    Device(HeaderName),
    /// Everyone together: one allowance for the whole service.
    Global,
    /// A key computed from the request.
    Custom(KeyFn),
}

impl Scope {
    /// Per client IP.
    pub fn ip() -> Scope {
        Scope::Ip
    }

    /// Per session, identified by `X-Device-ID` as the EchoTuner guide has it, else per IP.
    pub fn session() -> Scope {
        Scope::Session(DEVICE_ID_HEADER)
    }

    /// Per device, identified by the required `X-Device-ID` header.
    pub fn device() -> Scope {
        Scope::Device(DEVICE_ID_HEADER)
    }

    /// One allowance shared by every client.
    pub fn global() -> Scope {
        Scope::Global
    }

    /// Per key computed by `key` from the request head.
    pub fn custom(key: impl Fn(&RequestHead<'_>) -> Option<Key> + Send + Sync + 'static) -> Scope {
        Scope::Custom(Arc::new(key))
    }

    /// The name of the scope as it appears in events and responses.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Session(_) => "session",
            Scope::Device(_) => "device",
            Scope::Global => "global",
            Scope::Custom(_) => "custom",
        }
    }

    /// Whether `self` and `other` key every request by the same client identity (same kind,
    /// same header), so that a client's keys under both can share that identity as their
    /// Redis Cluster hash tag.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn keys_like(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Ip, Scope::Ip) => true,
            (Scope::Session(a), Scope::Session(b)) | (Scope::Device(a), Scope::Device(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Session(h) | Scope::Device(h) => write!(f, "{}({h})", self.kind()),
            other => f.write_str(other.kind()),
        }
    }
}

/// A named limit: a [`Quota`] per [`Scope`], on some routes or on every route.
///
/// ```
/// use http::Method;
/// use std::time::Duration;
/// use tower_shield::limiter::Quota;
/// use tower_shield::rate_limit::{Policy, Scope};
///
/// // The guide's "POST /playlist/generate: 10 per 300 s per device".
/// let generate = Policy::new("generate", Quota::per(10, Duration::from_secs(300))?, Scope::device())
///     .on(Method::POST, "/playlist/generate");
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) quota: Quota,
    pub(crate) scope: Scope,
    pub(crate) routes: Vec<Route>,
}

impl Policy {
    /// A policy applying to every route (but exempt ones) until [`on`](Self::on) narrows it.
    pub fn new(name: &str, quota: Quota, scope: Scope) -> Policy {
        Policy {
            name: name.to_owned(),
            quota,
            scope,
            routes: Vec::new(),
        }
    }

    /// Applies the policy to `method` on `path` (exact, or a prefix ending in `/*`); call it
    /// once per route.
    pub fn on(mut self, method: Method, path: &str) -> Policy {
        self.routes.push(Route::new(method, path));
        self
    }

    /// The policy's name, as sent in `RateLimit-Policy`.
    pub fn name(&self) -> &str {
        &self.name
    }
}
