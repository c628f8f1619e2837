//! The whole protection from one [`Config`]: every enabled layer, in the right order, as one
//! layer.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use http::{Method, Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_shield::{Config, Shield};
//! use tower_shield::limiter::Quota;
//! use tower_shield::rate_limit::{Policy, Scope};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_lookup(|_| None)?; // in a server: Config::from_env()?
//! let shield = Shield::builder(&config)
//!     .rate_limit(|limits| {
//!         limits
//!             .exempt(Method::GET, "/health")
//!             .policy(Policy::new("login", Quota::per_minute(5).unwrap(), Scope::ip()).on(Method::POST, "/login"))
//!     })
//!     .build()?;
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route("/login", axum::routing::post(|| async { "welcome" }))
//!     .layer(shield);
//!
//! let peer: SocketAddr = "203.0.113.9:50000".parse()?;
//! let mut req = Request::post("/login").body(axum::body::Body::empty())?;
//! req.extensions_mut().insert(peer); // axum::serve with ConnectInfo does this for you
//! let res = app.oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["x-content-type-options"], "nosniff");
//! assert!(res.headers().contains_key("ratelimit"));
//! # Ok(())
//! # }
//! ```
//!
//! The order, outermost first, is the one a request should meet:
//!
//! ```text
//! SecurityLog ─▶ SecureHeaders ─▶ Cors ─▶ RateLimit ─▶ InputSanitizer ─▶ your service
//! ```
//!
//! Around your service sits one more step, [`ReserveHeaders`]: it makes room in your
//! response's header map for every field the layers add, once, and when the map would have
//! to grow for that anyway, it brings the security headers in one clone (their names hashed
//! when the layer was built) with your response's own fields put back over them.
//!
//! - the security log outermost, so that every answer below it, refusals included, is in
//!   the request's span and its auth outcome is logged;
//! - security headers on every response, the other layers' 4xx included;
//! - CORS outside the rate limit, so that a browser can read a 429's `Retry-After`, and
//!   preflights never spend a client's allowance;
//! - the rate limit before the sanitizer, so that a flood of bad bodies is refused before
//!   any of them is read.
//!
//! Which layers are on is the configuration's business: `SECURE_HEADERS`, `CORS_ENABLED`
//! (with `ALLOWED_ORIGINS`, `CORS_ALLOW_CREDENTIALS`), `RATE_LIMIT_ENABLED` (with the
//! settings [`RateLimit::from_config`] reads), `TRUSTED_PROXIES` for every layer that asks
//! who the client is. Input validation depends on your routes, so it is on when you give it
//! [rules](ShieldBuilder::sanitizer). A layer that is off costs one branch per request.
//!
//! The service the shield wraps must be `Clone + Send + 'static`, and its request body
//! `Send + 'static`, as axum's `Router` and tonic's and hyper-util's services are: `REDIS_URL`
//! may put the rate limits in Redis, which answers after `call` returns
//! ([`backing`](crate::rate_limit::backing)).
//!
//! API keys usually guard some routes only, so they are not part of the shield: put
//! [`RequireApiKey`](crate::api_key::RequireApiKey) on those routes (axum's `route_layer`),
//! inside the shield, and give it the [rate limit's store](ShieldLayer::rate_limit) so its
//! lockout shares it.

mod layer;
mod reserve;
mod toggle;

pub use layer::{ShieldLayer, ShieldService};
pub use reserve::{ReserveHeaders, ReserveHeadersFuture};
pub use toggle::{PassThrough, PassThroughFuture, Toggle, ToggleFuture};

use crate::Config;
use crate::cors::{Cors, CorsLayer};
use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::CoarseClock;
use crate::rate_limit::{RateLimit, RateLimitBuilder, Shareable};
use crate::sanitize::InputSanitizerBuilder;
use crate::secure_headers::{SecureHeaders, SecureHeadersBuilder};
use crate::security_log::{SecurityLog, SecurityLogLayer};

/// Entry point: [`Shield::from_config`] or [`Shield::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Shield;

impl Shield {
    /// Every layer `config` enables, with their defaults.
    ///
    /// # Errors
    ///
    /// Every problem of every layer's configuration, each naming its variable.
    pub fn from_config(config: &Config) -> Result<ShieldLayer, ConfigError> {
        Shield::builder(config).build()
    }

    /// The layers `config` enables, to adjust before [`build`](ShieldBuilder::build).
    pub fn builder(config: &Config) -> ShieldBuilder {
        let mut errors = ConfigErrors::default();
        let rate_limit = errors.take(RateLimit::from_config(config)).flatten();
        let secure_headers = config.secure_headers().then(|| {
            SecureHeaders::builder().trusted_proxies(config.trusted_proxies().iter().copied())
        });
        let cors = errors.take(Cors::from_config(config)).flatten();
        let security_log = errors.take(SecurityLog::from_config(config));
        ShieldBuilder {
            errors,
            security_log,
            secure_headers,
            cors,
            rate_limit,
            sanitizer: None,
        }
    }
}

/// Adjusts the layers a [`Config`] enables; [`build`](Self::build) reports every problem at
/// once.
#[derive(Debug)]
pub struct ShieldBuilder {
    errors: ConfigErrors,
    security_log: Option<SecurityLogLayer>,
    secure_headers: Option<SecureHeadersBuilder>,
    cors: Option<CorsLayer>,
    rate_limit: Option<RateLimitBuilder<CoarseClock, Shareable>>,
    sanitizer: Option<InputSanitizerBuilder>,
}

impl ShieldBuilder {
    /// Adds to the rate limit (route policies, exemptions, allow lists…), when
    /// `RATE_LIMIT_ENABLED` has it on. It starts as [`RateLimit::from_config`] builds it.
    pub fn rate_limit(
        mut self,
        f: impl FnOnce(
            RateLimitBuilder<CoarseClock, Shareable>,
        ) -> RateLimitBuilder<CoarseClock, Shareable>,
    ) -> Self {
        self.rate_limit = self.rate_limit.map(f);
        self
    }

    /// Adjusts the security headers (a CSP, a preset's choices…), when `SECURE_HEADERS` has
    /// them on. They start as [`SecureHeaders::builder`] with the configuration's trusted
    /// proxies.
    pub fn secure_headers(
        mut self,
        f: impl FnOnce(SecureHeadersBuilder) -> SecureHeadersBuilder,
    ) -> Self {
        self.secure_headers = self.secure_headers.map(f);
        self
    }

    /// Uses `cors` whatever `CORS_ENABLED` says.
    pub fn cors(mut self, cors: CorsLayer) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Validates input with `rules`.
    pub fn sanitizer(mut self, rules: InputSanitizerBuilder) -> Self {
        self.sanitizer = Some(rules);
        self
    }

    /// Logs with `log` instead of [`SecurityLog::from_config`]'s layer.
    pub fn security_log(mut self, log: SecurityLogLayer) -> Self {
        self.security_log = Some(log);
        self
    }

    /// The layer, or every problem with the settings.
    pub fn build(self) -> Result<ShieldLayer, ConfigError> {
        let mut errors = self.errors;
        // The layers built here share the log layer's flood control (and its flushing).
        let events = self.security_log.as_ref().map(|l| l.coalescer().clone());
        let secure_headers = self.secure_headers.and_then(|b| errors.take(b.build()));
        let rate_limit = self.rate_limit.and_then(|b| {
            let b = match &events {
                Some(e) => b.coalescer(e.clone()),
                None => b,
            };
            errors.take(b.build())
        });
        let sanitizer = self.sanitizer.and_then(|b| {
            let b = match &events {
                Some(e) => b.coalescer(e.clone()),
                None => b,
            };
            errors.take(b.build())
        });
        errors.finish(|| ())?;
        // Without errors, the log layer was built; the fallback error only keeps this total.
        let security_log = self
            .security_log
            .ok_or_else(|| ConfigError::new("security_log", "the security log was not built"))?;
        Ok(ShieldLayer {
            security_log,
            secure_headers,
            cors: self.cors,
            rate_limit,
            sanitizer,
        })
    }
}
