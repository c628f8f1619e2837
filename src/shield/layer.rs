use tower_layer::Layer;

use super::reserve::ReserveHeaders;
use super::toggle::{PassThrough, Toggle};
use crate::cors::{CorsLayer, CorsService};
use crate::limiter::CoarseClock;
use crate::rate_limit::{RateLimitLayer, RateLimitService, Shareable};
use crate::sanitize::{InputSanitizerLayer, InputSanitizerService};
use crate::secure_headers::{SecureHeadersLayer, SecureHeadersService};
use crate::security_log::{SecurityLogLayer, SecurityLogService};

type Reserved<S> = ReserveHeaders<S>;
type Sanitized<S> = Toggle<InputSanitizerService<Reserved<S>>, PassThrough<Reserved<S>>>;
type Limited<S> =
    Toggle<RateLimitService<Sanitized<S>, CoarseClock, Shareable>, PassThrough<Sanitized<S>>>;
type CorsChecked<S> = Toggle<CorsService<Limited<S>>, PassThrough<Limited<S>>>;
type Headed<S> = Toggle<SecureHeadersService<CorsChecked<S>>, CorsChecked<S>>;

/// The whole stack around `S`, outermost first: security log, security headers, CORS, rate
/// limit, input sanitizer. Layers the configuration leaves off pass requests straight through.
pub type ShieldService<S> = SecurityLogService<Headed<S>>;

/// Applies every enabled layer in the order of [`Shield`](super::Shield)'s docs. Cloning it
/// shares the layers' state (limits, monitor, caches).
#[derive(Clone, Debug)]
pub struct ShieldLayer {
    pub(super) security_log: SecurityLogLayer,
    pub(super) secure_headers: Option<SecureHeadersLayer>,
    pub(super) cors: Option<CorsLayer>,
    pub(super) rate_limit: Option<RateLimitLayer<CoarseClock, Shareable>>,
    pub(super) sanitizer: Option<InputSanitizerLayer>,
}

impl ShieldLayer {
    /// The security log: its [coalescer](SecurityLogLayer::coalescer), shared by the rate
    /// limit and the sanitizer, is the one to flush at shutdown.
    pub fn security_log(&self) -> &SecurityLogLayer {
        &self.security_log
    }

    /// The rate limit, when it is on: its [monitor](RateLimitLayer::monitor) of top
    /// offenders, its [store](RateLimitLayer::store) (for the API-key lockout).
    pub fn rate_limit(&self) -> Option<&RateLimitLayer<CoarseClock, Shareable>> {
        self.rate_limit.as_ref()
    }

    /// Whether the security headers are on.
    pub fn has_secure_headers(&self) -> bool {
        self.secure_headers.is_some()
    }

    /// Whether CORS is on.
    pub fn has_cors(&self) -> bool {
        self.cors.is_some()
    }

    /// Whether input validation is on.
    pub fn has_sanitizer(&self) -> bool {
        self.sanitizer.is_some()
    }
}

impl<S> Layer<S> for ShieldLayer {
    type Service = ShieldService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let added = 1 // the security log's request id
            + self.secure_headers.as_ref().map_or(0, SecureHeadersLayer::response_headers)
            + self.cors.as_ref().map_or(0, CorsLayer::response_headers)
            + self.rate_limit.as_ref().map_or(0, RateLimitLayer::response_headers);
        let inner = ReserveHeaders::new(inner, added, self.secure_headers.as_ref());
        let inner = match &self.sanitizer {
            Some(l) => Toggle::On(l.layer(inner)),
            None => Toggle::Off(PassThrough::new(inner)),
        };
        let inner = match &self.rate_limit {
            Some(l) => Toggle::On(l.layer(inner)),
            None => Toggle::Off(PassThrough::new(inner)),
        };
        let inner = match &self.cors {
            Some(l) => Toggle::On(l.layer(inner)),
            None => Toggle::Off(PassThrough::new(inner)),
        };
        let inner = match &self.secure_headers {
            Some(l) => Toggle::On(l.layer(inner)),
            None => Toggle::Off(inner),
        };
        self.security_log.layer(inner)
    }
}
