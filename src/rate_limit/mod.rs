//! The rate-limit layer: named policies per client IP, session, device, globally or by a key
//! of your own, checked all-or-nothing, with standard headers and a problem+json 429.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use http::{Method, Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::limiter::Quota;
//! use tower_shield::rate_limit::{Policy, RateLimit, Scope};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = RateLimit::builder()
//!     // the guide's default: 60 per minute per client IP on every route…
//!     .policy(Policy::new("ip", Quota::per_minute(60)?, Scope::ip()))
//!     // …and 5 per minute on the login route
//!     .policy(Policy::new("auth", Quota::per_minute(5)?, Scope::ip()).on(Method::POST, "/auth/init"))
//!     .exempt(Method::GET, "/config/health")
//!     .build()?;
//! let app = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|_req: Request<String>| async { Ok::<_, std::convert::Infallible>(Response::new(String::new())) }));
//!
//! let peer: SocketAddr = "198.51.100.4:50000".parse()?;
//! for attempt in 1..=6 {
//!     let mut req = Request::post("/auth/init").body(String::new())?;
//!     req.extensions_mut().insert(peer);
//!     let res = app.clone().oneshot(req).await?;
//!     if attempt <= 5 {
//!         assert_eq!(res.status(), StatusCode::OK);
//!         assert!(res.headers().contains_key("ratelimit"));
//!     } else {
//!         assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
//!         assert_eq!(res.headers()["retry-after"], "12");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every policy whose route matches a request is checked at once, and a request refused by one
//! is charged to none (nginx `limit_req` semantics). The binding policy's `RateLimit-Policy`
//! and `RateLimit` headers (IETF draft-10) go on every response of a limited route; a refusal
//! also carries `Retry-After` in whole seconds, rounded up, so a client that waits it is
//! admitted.

mod device;
pub(crate) mod headers;
mod layer;
pub mod monitor;
mod policy;
mod service;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use ipnet::IpNet;

pub use layer::RateLimitLayer;
pub use monitor::RateLimitMonitor;
pub use policy::{KeyFn, Policy, RequestHead, Scope};
pub use service::{RateLimitService, Refusal, RefusalHook, ResponseFuture};

use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::{KeyHasher, LimiterStore, MemoryStore};
use crate::problem::Problem;
use crate::security_log::Coalescer;
use device::DeviceRotation;
use layer::{Shared, Target};

/// Entry point: `RateLimit::builder()`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit;

impl RateLimit {
    /// A builder with no policies, the peer address as the client, IPv6 grouped by /64, an
    /// in-memory store of up to 1,000,000 keys.
    pub fn builder() -> RateLimitBuilder {
        RateLimitBuilder {
            store: MemoryStore::builder().build().map(Arc::new),
            client_ip: ClientIpStrategy::peer(),
            ipv6_prefix: 64,
            policies: Vec::new(),
            exempt: Vec::new(),
            allow: Vec::new(),
            block: Vec::new(),
            dry_run: false,
            legacy_headers: false,
            device_rotation: None,
            monitor_capacity: 1024,
            on_refusal: None,
            coalescer: None,
        }
    }
}

/// Builds a [`RateLimitLayer`]; [`build`](Self::build) reports every problem at once.
///
/// `St` is the store the limits are kept in: a [`MemoryStore`] of its own unless
/// [`store`](Self::store) gives one.
pub struct RateLimitBuilder<St = MemoryStore> {
    store: Result<Arc<St>, ConfigError>,
    client_ip: ClientIpStrategy,
    ipv6_prefix: u8,
    policies: Vec<Policy>,
    exempt: Vec<crate::route::Route>,
    allow: Vec<IpNet>,
    block: Vec<IpNet>,
    dry_run: bool,
    legacy_headers: bool,
    device_rotation: Option<(u32, Duration)>,
    monitor_capacity: usize,
    on_refusal: Option<RefusalHook>,
    coalescer: Option<Arc<Coalescer>>,
}

impl<St> std::fmt::Debug for RateLimitBuilder<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("policies", &self.policies)
            .field("client_ip", &self.client_ip)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl<St: LimiterStore> RateLimitBuilder<St> {
    /// Keep the limits in `store`: a [`MemoryStore`] shared with other layers (such as the
    /// API-key lockout), a [`RedisStore`](crate::limiter::RedisStore) (feature `redis`) shared
    /// by every instance, or any [`LimiterStore`] of your own.
    ///
    /// With a Redis store, what happens while Redis cannot answer is the store's
    /// [failure policy](crate::limiter::RedisStoreBuilder::on_failure): `FailClosed` answers
    /// 503 problem+json with `Retry-After` (the store's circuit-breaker cool-down),
    /// `FailOpen` admits without `RateLimit` headers, `Local` decides with the store's
    /// in-memory fallback, each instance counting alone. Keys of session and device ids and
    /// of policy names are hashed by the store's [`KeyHasher`]:
    /// build every instance's store with one shared
    /// [`secret`](crate::limiter::RedisStoreBuilder::secret), or those limits are not shared.
    ///
    /// Every policy's checks of a request go to the store in one call, under one tag (see
    /// [`LimiterStore`]). When every policy keys requests by the same client identity (all
    /// [`Scope::ip`], or all [`Scope::device`] or all [`Scope::session`] of one header), that
    /// identity is the tag, and on a Redis Cluster clients spread over the slots. A layer that
    /// mixes identities (say an address limit and a device limit) or has a global limit keeps
    /// all its keys under one tag, so in one slot: build a layer per identity to spread them.
    ///
    /// The [device-rotation](Self::device_rotation) cap is always kept in memory, per
    /// instance.
    pub fn store<T: LimiterStore>(self, store: Arc<T>) -> RateLimitBuilder<T> {
        self.map_store(|_| Ok(store))
    }

    /// The same settings with the store `f` makes of this one.
    pub(crate) fn map_store<T>(
        self,
        f: impl FnOnce(Arc<St>) -> Result<Arc<T>, ConfigError>,
    ) -> RateLimitBuilder<T> {
        RateLimitBuilder {
            store: self.store.and_then(f),
            client_ip: self.client_ip,
            ipv6_prefix: self.ipv6_prefix,
            policies: self.policies,
            exempt: self.exempt,
            allow: self.allow,
            block: self.block,
            dry_run: self.dry_run,
            legacy_headers: self.legacy_headers,
            device_rotation: self.device_rotation,
            monitor_capacity: self.monitor_capacity,
            on_refusal: self.on_refusal,
            coalescer: self.coalescer,
        }
    }

    /// How the client address is found (default: the peer address; see [`ClientIpStrategy`]).
    pub fn client_ip(mut self, strategy: ClientIpStrategy) -> Self {
        self.client_ip = strategy;
        self
    }

    /// The prefix length IPv6 clients are grouped by (default 64), so that rotating addresses
    /// inside one customer's prefix does not multiply the allowance.
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits;
        self
    }

    /// Adds a policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policies.push(policy);
        self
    }

    /// Exempts `method` on `path` (exact, or a prefix ending in `/*`) from every limit.
    pub fn exempt(mut self, method: Method, path: &str) -> Self {
        self.exempt.push(crate::route::Route::new(method, path));
        self
    }

    /// Addresses that are never limited.
    pub fn allow_list(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.allow.extend(nets);
        self
    }

    /// Addresses that are always refused with 403.
    pub fn block_list(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.block.extend(nets);
        self
    }

    /// Report (log) what would be refused, but refuse nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`.
    pub fn legacy_headers(mut self, legacy: bool) -> Self {
        self.legacy_headers = legacy;
        self
    }

    /// At most `max` distinct device ids per client IP within `window`
    /// (`MAX_DEVICES_PER_USER` per `DEVICE_REGISTRATION_TIMEOUT`); the next new one is
    /// refused with 429.
    pub fn device_rotation(mut self, max: u32, window: Duration) -> Self {
        self.device_rotation = Some((max, window));
        self
    }

    /// Answers refusals with `hook`'s response instead of the problem+json 429. `Retry-After`,
    /// `RateLimit-Policy` and `RateLimit` are added unless the hook set them, so a custom
    /// response never loses them.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use tower_shield::limiter::Quota;
    /// use tower_shield::rate_limit::{Policy, RateLimit, Scope};
    ///
    /// let layer = RateLimit::builder()
    ///     .policy(Policy::new("ip", Quota::per_minute(60)?, Scope::ip()))
    ///     .on_refusal(|refusal| {
    ///         let mut res = Response::new(Bytes::from(format!("slow down ({})", refusal.policy)));
    ///         *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ///         res
    ///     })
    ///     .build()?;
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn on_refusal(
        mut self,
        hook: impl Fn(&Refusal<'_>) -> http::Response<bytes::Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.on_refusal = Some(Arc::new(hook));
        self
    }

    /// The coalescer of the security events this layer emits (default: a
    /// [`Coalescer::default`] of this layer's own); pass the log layer's
    /// ([`SecurityLogLayer::coalescer`](crate::security_log::SecurityLogLayer::coalescer)) to
    /// share its flood control and flushing.
    pub fn coalescer(mut self, coalescer: Arc<Coalescer>) -> Self {
        self.coalescer = Some(coalescer);
        self
    }

    /// How many (policy, client) counters the refusal monitor keeps (default 1024).
    pub fn monitor_capacity(mut self, counters: usize) -> Self {
        self.monitor_capacity = counters;
        self
    }

    /// The layer, or every problem with the settings.
    pub fn build(self) -> Result<RateLimitLayer<St>, ConfigError> {
        let mut errors = ConfigErrors::default();
        let grouping = errors.take(Ipv6Grouping::new(self.ipv6_prefix));
        let store = errors.take(self.store);
        // Keys are those of the store the limits are kept in; with no store, no keys to make.
        let keys = store
            .as_ref()
            .map_or_else(KeyHasher::random, |s| *s.key_hasher());
        let rotation = match self.device_rotation {
            Some((max, window)) => {
                let rotation = errors.take(DeviceRotation::new(max, window, keys));
                let store = errors.take(MemoryStore::builder().key_hasher(keys).build());
                rotation.zip(store)
            }
            None => None,
        };
        let mut targets = Vec::with_capacity(self.policies.len());
        for (i, p) in self.policies.iter().enumerate() {
            if self.policies[..i].iter().any(|q| q.name == p.name) {
                errors.push(
                    "policy",
                    format!("two policies are named {:?}; names must be unique", p.name),
                );
            }
            for r in &p.routes {
                if let Some(problem) = r.problem() {
                    errors.push("policy.route", format!("policy {:?}: {problem}", p.name));
                }
            }
            let header = errors.take(headers::policy_header(
                &p.name,
                p.quota.burst(),
                p.quota.window(),
            ));
            if let Some(policy_header) = header.map(crate::header_map::prepared) {
                let refusal_body = Problem::new(StatusCode::TOO_MANY_REQUESTS)
                    .type_uri(service::QUOTA_EXCEEDED)
                    .title("Quota exceeded")
                    .detail(format!(
                        "rate limit \"{}\" exceeded; retry after the time in Retry-After",
                        p.name
                    ))
                    .extension("violated-policies", serde_json::json!([p.name]))
                    .to_json();
                let refusal_body = crate::header_map::prepared_bytes(refusal_body);
                targets.push(Target {
                    refusal_headers: headers::Recent::new(),
                    refusal_body,
                    rate_prefix: headers::rate_limit_prefix(&p.name),
                    rate_values: headers::Recent::new(),
                    name: p.name.clone(),
                    quota: p.quota,
                    scope: p.scope.clone(),
                    routes: p.routes.clone(),
                    namespace: keys.namespace(&p.name),
                    policy_header,
                });
            }
        }
        for r in &self.exempt {
            if let Some(problem) = r.problem() {
                errors.push("exempt", problem);
            }
        }
        let monitor = errors.take(RateLimitMonitor::new(self.monitor_capacity));
        errors.finish(|| ())?;
        match (store, monitor, grouping) {
            (Some(store), Some(monitor), Some(grouping)) => Ok(RateLimitLayer {
                shared: Arc::new(Shared {
                    tag_by_client: targets.first().is_some_and(|first| {
                        targets.iter().all(|t| first.scope.keys_like(&t.scope))
                    }),
                    store,
                    keys,
                    client_ip: self.client_ip,
                    grouping,
                    targets,
                    exempt: self.exempt,
                    allow: self.allow,
                    block: self.block,
                    dry_run: self.dry_run,
                    legacy_headers: self.legacy_headers,
                    device_rotation: rotation,
                    monitor: Arc::new(monitor),
                    on_refusal: self.on_refusal,
                    events: self.coalescer.unwrap_or_default(),
                }),
            }),
            // every `None` above recorded a problem, so `finish` has returned already
            _ => Err(ConfigError::new("rate_limit", "incomplete configuration")),
        }
    }
}
