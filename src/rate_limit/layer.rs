use std::marker::PhantomData;
use std::sync::Arc;

use http::{HeaderValue, Method};
use ipnet::IpNet;
use tower_layer::Layer;

use super::backing::{Backing, InMemory};
use super::device::DeviceRotation;
use super::monitor::RateLimitMonitor;
use super::policy::Scope;
use super::service::RateLimitService;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::limiter::{Clock, KeyHasher, MemoryStore, Namespace, QuantaClock, Quota};
use crate::route::Route;

/// Applies rate-limit policies to every request of the wrapped service.
///
/// Built by [`RateLimit::builder`](super::RateLimit::builder). Cloning the layer shares its
/// store, policies and monitor. `B` is where its limits may be kept, and so what its service
/// asks of the service it wraps ([`backing`](super::backing)).
pub struct RateLimitLayer<C: Clock = QuantaClock, B: Backing = InMemory> {
    pub(crate) shared: Arc<Shared<C>>,
    pub(crate) backing: PhantomData<B>,
}

impl<C: Clock, B: Backing> Clone for RateLimitLayer<C, B> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: self.shared.clone(),
            backing: PhantomData,
        }
    }
}

impl<C: Clock, B: Backing> std::fmt::Debug for RateLimitLayer<C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field(
                "policies",
                &self
                    .shared
                    .targets
                    .iter()
                    .map(|t| &t.name)
                    .collect::<Vec<_>>(),
            )
            .field("dry_run", &self.shared.dry_run)
            .finish_non_exhaustive()
    }
}

impl<C: Clock, B: Backing> RateLimitLayer<C, B> {
    /// The monitor of refusals, for a "top offenders" view.
    pub fn monitor(&self) -> &Arc<RateLimitMonitor> {
        &self.shared.monitor
    }

    /// The in-memory store the limits are kept in. With a Redis store
    /// ([`RateLimitBuilder::redis`](super::RateLimitBuilder::redis)) this is the local store:
    /// device rotation, and every decision under [`StoreFailurePolicy::Local`] while Redis is
    /// unavailable.
    ///
    /// [`StoreFailurePolicy::Local`]: crate::limiter::StoreFailurePolicy::Local
    pub fn store(&self) -> &Arc<MemoryStore<C>> {
        &self.shared.store
    }

    /// The Redis store the limits are kept in, when there is one (feature `redis`), and what
    /// happens while it cannot answer: give both to
    /// [`RequireApiKeyBuilder::redis`](crate::api_key::RequireApiKeyBuilder::redis) so that
    /// the API-key lockout shares its connection and circuit breaker.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_store(
        &self,
    ) -> Option<(
        &crate::limiter::RedisStore,
        crate::limiter::StoreFailurePolicy,
    )> {
        self.shared
            .redis
            .as_ref()
            .map(|redis| (&redis.store, redis.on_failure))
    }

    /// How many decisions were made without the shared store (Redis unreachable, timed out or
    /// its circuit breaker open), whatever the failure policy made of them. Always 0 with the
    /// in-memory store.
    pub fn degraded_decisions(&self) -> u64 {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.shared.redis {
            return redis.degraded_decisions();
        }
        0
    }
}

impl<S, C: Clock, B: Backing> Layer<S> for RateLimitLayer<C, B> {
    type Service = RateLimitService<S, C, B>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            shared: self.shared.clone(),
            backing: PhantomData,
        }
    }
}

/// One policy, compiled: its key namespace and its `RateLimit-Policy` value rendered once.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) quota: Quota,
    pub(crate) scope: Scope,
    pub(crate) routes: Vec<Route>,
    pub(crate) namespace: Namespace,
    pub(crate) policy_header: HeaderValue,
    /// `"name";r=`, the start of this policy's `RateLimit` value.
    pub(crate) rate_prefix: Box<[u8]>,
    /// Recently rendered `RateLimit` values of this policy's admissions, by remaining and `t`.
    pub(crate) rate_values: super::headers::Recent<(u32, u64), HeaderValue>,
    /// The problem document of this policy's 429, rendered once.
    pub(crate) refusal_body: bytes::Bytes,
    /// The headers of this policy's recent 429s, by remaining, `t` and `Retry-After`.
    pub(crate) refusal_headers: super::headers::Recent<(u32, u64, Option<u64>), http::HeaderMap>,
}

impl Target {
    #[inline]
    pub(crate) fn applies(&self, method: &Method, path: &str) -> bool {
        self.routes.is_empty() || self.routes.iter().any(|r| r.matches(method, path))
    }
}

/// Everything the services of one layer share.
pub(crate) struct Shared<C: Clock> {
    pub(crate) store: Arc<MemoryStore<C>>,
    /// The hasher of the store the limits are kept in: session and device keys, namespaces.
    pub(crate) keys: KeyHasher,
    pub(crate) client_ip: ClientIpStrategy,
    pub(crate) grouping: Ipv6Grouping,
    pub(crate) targets: Vec<Target>,
    pub(crate) exempt: Vec<Route>,
    pub(crate) allow: Vec<IpNet>,
    pub(crate) block: Vec<IpNet>,
    pub(crate) dry_run: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) device_rotation: Option<DeviceRotation>,
    pub(crate) monitor: Arc<RateLimitMonitor>,
    pub(crate) on_refusal: Option<super::service::RefusalHook>,
    /// The flood control of the events this layer emits.
    pub(crate) events: Arc<crate::security_log::Coalescer>,
    /// The shared store, when the limits live in Redis; `store` is then the local one.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::limiter::RedisBackend>,
    /// Whether every policy keys a request by the same client identity, which is then the
    /// request's Redis Cluster hash tag (see `decide_shared`).
    #[cfg(feature = "redis")]
    pub(crate) tag_by_client: bool,
}

impl<C: Clock> std::fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}
