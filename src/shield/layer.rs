use tower_layer::Layer;

use super::service::ShieldService;
use super::toggle::{PassThrough, Toggle};
use crate::cors::CorsLayer;
use crate::limiter::EitherStore;
use crate::rate_limit::RateLimitLayer;
use crate::sanitize::InputSanitizerLayer;
use crate::secure_headers::SecureHeadersLayer;
use crate::security_log::SecurityLogLayer;

/// Applies every layer it was built with, in the order of [`Shield`](super::Shield)'s docs.
/// Cloning it shares the layers' state (limits, monitor, caches).
#[derive(Clone, Debug)]
pub struct ShieldLayer {
    pub(super) security_log: SecurityLogLayer,
    pub(super) secure_headers: Option<SecureHeadersLayer>,
    pub(super) cors: Option<CorsLayer>,
    pub(super) rate_limit: Option<RateLimitLayer<EitherStore>>,
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
    pub fn rate_limit(&self) -> Option<&RateLimitLayer<EitherStore>> {
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

fn toggle<L: Layer<S>, S>(layer: Option<&L>, inner: S) -> Toggle<L::Service, PassThrough<S>> {
    match layer {
        Some(l) => Toggle::On(l.layer(inner)),
        None => Toggle::Off(PassThrough::new(inner)),
    }
}

impl<S> Layer<S> for ShieldLayer {
    type Service = ShieldService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // The security headers' explicit cross-layer step: the handler's response gets them
        // where it is made, before the other layers add their fields.
        let inner = match &self.secure_headers {
            Some(l) => Toggle::On(l.prefill().layer(inner)),
            None => Toggle::Off(inner),
        };
        let inner = toggle(self.sanitizer.as_ref(), inner);
        let inner = toggle(self.rate_limit.as_ref(), inner);
        let inner = toggle(self.cors.as_ref(), inner);
        let inner = match &self.secure_headers {
            Some(l) => Toggle::On(l.layer(inner)),
            None => Toggle::Off(inner),
        };
        ShieldService::new(self.security_log.layer(inner))
    }
}
