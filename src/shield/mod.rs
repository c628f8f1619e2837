//! Every layer in the right order, as one layer.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use http::{Method, Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_shield::Shield;
//! use tower_shield::limiter::Quota;
//! use tower_shield::rate_limit::{Policy, RateLimit, Scope};
//! use tower_shield::secure_headers::SecureHeaders;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let shield = Shield::builder()
//!     .secure_headers(SecureHeaders::builder())
//!     .rate_limit(
//!         RateLimit::builder()
//!             .exempt(Method::GET, "/health")
//!             .policy(Policy::new("login", Quota::per_minute(5)?, Scope::ip()).on(Method::POST, "/login")),
//!     )
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
//! With feature `env`, `Shield::from_config` builds the layers the EchoTuner environment
//! variables enable ([`Config::shield_builder`](crate::Config::shield_builder) to adjust them
//! first).
//!
//! The order, outermost first, is the one a request should meet:
//!
//! ```text
//! SecurityLog ─▶ SecureHeaders ─▶ Cors ─▶ RateLimit ─▶ InputSanitizer ─▶ your service
//! ```
//!
//! - the security log outermost, so that every answer below it, refusals included, is in
//!   the request's span and its auth outcome is logged;
//! - security headers on every response, the other layers' 4xx included;
//! - CORS outside the rate limit, so that a browser can read a 429's `Retry-After`, and
//!   preflights never spend a client's allowance;
//! - the rate limit before the sanitizer, so that a flood of bad bodies is refused before
//!   any of them is read.
//!
//! The security log is always on; every other layer is on when you give it its builder. A
//! layer that is off costs one branch per request. Each layer writes its own headers, as it
//! does alone, with one explicit, public exception: the security headers'
//! [prefill step](crate::secure_headers::SecureHeadersLayer::prefill), which the shield puts
//! around your service so that its responses get the static headers before the other layers
//! add their fields (BENCHMARKS.md measures it). Its responses have one body type,
//! [`ShieldBody`](crate::problem::ShieldBody) over your service's body.
//!
//! The service the shield wraps must be `Clone`, as axum's `Router` and tonic's and
//! hyper-util's services are: the rate limit's store may answer after `call` returns (Redis),
//! and the request then waits with the service in the response future. The rate limit's
//! store is an [`EitherStore`]: memory or Redis, chosen at run time.
//!
//! API keys usually guard some routes only, so they are not part of the shield: put
//! [`RequireApiKey`](crate::api_key::RequireApiKey) on those routes (axum's `route_layer`),
//! inside the shield, and give it the [rate limit's store](ShieldLayer::rate_limit) so its
//! lockout shares it.

mod layer;
mod service;
mod toggle;

pub use layer::ShieldLayer;
pub use service::{ResponseFuture, ShieldService};

use crate::client_ip::ClientIpStrategy;
use crate::cors::CorsBuilder;
use crate::error::{ConfigError, ConfigErrors};
use std::sync::Arc;

use crate::limiter::{EitherStore, LimiterStore};
use crate::rate_limit::RateLimitBuilder;
use crate::sanitize::InputSanitizerBuilder;
use crate::secure_headers::SecureHeadersBuilder;
use crate::security_log::{SecurityLog, SecurityLogBuilder};

/// Entry point: [`Shield::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Shield;

impl Shield {
    /// A shield with the security log (its defaults) and no other layer yet: give each layer
    /// you want its builder.
    pub fn builder() -> ShieldBuilder {
        ShieldBuilder {
            errors: ConfigErrors::default(),
            client_ip: None,
            security_log: SecurityLog::builder(),
            secure_headers: None,
            cors: None,
            rate_limit: None,
            sanitizer: None,
        }
    }
}

/// Collects each layer's builder; [`build`](Self::build) builds them all and reports every
/// problem at once.
#[derive(Debug)]
pub struct ShieldBuilder {
    /// Problems found before `build` (by the configuration adapter), reported with the rest.
    pub(crate) errors: ConfigErrors,
    client_ip: Option<ClientIpStrategy>,
    security_log: SecurityLogBuilder,
    secure_headers: Option<SecureHeadersBuilder>,
    cors: Option<CorsBuilder>,
    rate_limit: Option<RateLimitBuilder<EitherStore>>,
    sanitizer: Option<InputSanitizerBuilder>,
}

impl ShieldBuilder {
    /// Finds the client with `strategy` in every layer that asks (the log, the rate limit, the
    /// security headers' HTTPS test), over what their builders say; the shield then resolves
    /// each request's [`ClientContext`](crate::client_ip::ClientContext) once, for all of them.
    pub fn client_ip(mut self, strategy: ClientIpStrategy) -> Self {
        self.client_ip = Some(strategy);
        self
    }

    /// Logs with these settings instead of [`SecurityLog::builder`]'s defaults.
    pub fn security_log(mut self, log: SecurityLogBuilder) -> Self {
        self.security_log = log;
        self
    }

    /// Adds the security headers.
    pub fn secure_headers(mut self, headers: SecureHeadersBuilder) -> Self {
        self.secure_headers = Some(headers);
        self
    }

    /// Adds CORS.
    pub fn cors(mut self, cors: CorsBuilder) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Adds the rate limit, its limits kept in its store (in memory, or in Redis).
    pub fn rate_limit<St>(mut self, limits: RateLimitBuilder<St>) -> Self
    where
        St: LimiterStore,
        EitherStore: From<Arc<St>>,
    {
        self.rate_limit = Some(limits.map_store(|store| Ok(Arc::new(EitherStore::from(store)))));
        self
    }

    /// Adjusts the rate limit, when there is one (as [`Config::shield_builder`] made it, say).
    ///
    /// [`Config::shield_builder`]: crate::Config::shield_builder
    pub fn map_rate_limit(
        mut self,
        f: impl FnOnce(RateLimitBuilder<EitherStore>) -> RateLimitBuilder<EitherStore>,
    ) -> Self {
        self.rate_limit = self.rate_limit.map(f);
        self
    }

    /// Adjusts the security headers, when there are some (a CSP, a preset's choices…).
    pub fn map_secure_headers(
        mut self,
        f: impl FnOnce(SecureHeadersBuilder) -> SecureHeadersBuilder,
    ) -> Self {
        self.secure_headers = self.secure_headers.map(f);
        self
    }

    /// Adds input validation.
    pub fn sanitizer(mut self, rules: InputSanitizerBuilder) -> Self {
        self.sanitizer = Some(rules);
        self
    }

    /// The layer, or every problem of every layer's settings.
    pub fn build(self) -> Result<ShieldLayer, ConfigError> {
        let mut errors = self.errors;
        let (mut log, mut headers, mut limits) =
            (self.security_log, self.secure_headers, self.rate_limit);
        if let Some(strategy) = self.client_ip {
            log = log.client_ip(strategy.clone());
            headers = headers.map(|b| b.client_ip(strategy.clone()));
            limits = limits.map(|b| b.client_ip(strategy));
        }
        let security_log = errors.take(log.build());
        // The layers built here share the log layer's flood control (and its flushing).
        let events = security_log
            .as_ref()
            .map_or_else(Default::default, |l| l.coalescer().clone());
        let secure_headers = headers.and_then(|b| errors.take(b.build()));
        let cors = self
            .cors
            .and_then(|b| errors.take(b.coalescer(events.clone()).build()));
        let rate_limit = limits.and_then(|b| errors.take(b.coalescer(events.clone()).build()));
        let sanitizer = self
            .sanitizer
            .and_then(|b| errors.take(b.coalescer(events).build()));
        errors.finish(|| ())?;
        // Without errors, the log layer was built; the fallback error only keeps this total.
        let security_log = security_log
            .ok_or_else(|| ConfigError::new("security_log", "the security log was not built"))?;
        Ok(ShieldLayer {
            security_log,
            secure_headers,
            cors,
            rate_limit,
            sanitizer,
        })
    }
}
