use std::sync::Arc;

use http::HeaderValue;
use tower_layer::Layer;

use super::key::{KeyHasher, KeyPrefix};
use super::lockout::Lockout;
use super::service::RequireApiKeyService;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::limiter::{Clock, QuantaClock};

/// Requires a valid API key on every request of the wrapped service.
///
/// Built by [`RequireApiKey::builder`](super::RequireApiKey::builder). Cloning the layer
/// shares its key store and lockout.
pub struct RequireApiKeyLayer<K, C: Clock = QuantaClock> {
    pub(crate) shared: Arc<Shared<K, C>>,
}

impl<K, C: Clock> Clone for RequireApiKeyLayer<K, C> {
    fn clone(&self) -> Self {
        RequireApiKeyLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<K, C: Clock> std::fmt::Debug for RequireApiKeyLayer<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireApiKeyLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl<K, C: Clock> RequireApiKeyLayer<K, C> {
    /// The key store.
    pub fn key_store(&self) -> &K {
        &self.shared.keys
    }

    /// The in-memory lockout, unless it was turned off. With a Redis store
    /// ([`RequireApiKeyBuilder::redis`](super::RequireApiKeyBuilder::redis)) this is the
    /// local one, which counts only under [`StoreFailurePolicy::Local`] while Redis cannot
    /// answer.
    ///
    /// [`StoreFailurePolicy::Local`]: crate::limiter::StoreFailurePolicy::Local
    pub fn lockout(&self) -> Option<&Lockout<C>> {
        self.shared.lockout.as_ref()
    }

    /// The lockout on Redis, when it was given one (and not turned off).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_lockout(&self) -> Option<&super::RedisLockout> {
        self.shared.redis.as_deref().map(|r| &r.lockout)
    }

    /// How many steps of attempts (lock check, counting a failure, forgetting failures) were
    /// decided without Redis (unreachable, timed out or its circuit breaker open), whatever
    /// the failure policy made of them. Always 0 without Redis.
    pub fn degraded_decisions(&self) -> u64 {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.shared.redis {
            return redis.backend.degraded_decisions();
        }
        0
    }
}

impl<S, K, C: Clock> Layer<S> for RequireApiKeyLayer<K, C> {
    type Service = RequireApiKeyService<S, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKeyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Everything the services of one layer share.
pub(crate) struct Shared<K, C: Clock> {
    pub(crate) keys: K,
    pub(crate) prefix: KeyPrefix,
    pub(crate) hasher: KeyHasher,
    pub(crate) lockout: Option<Lockout<C>>,
    pub(crate) client_ip: ClientIpStrategy,
    pub(crate) grouping: Ipv6Grouping,
    pub(crate) www_authenticate: HeaderValue,
    /// The flood control of the events this layer emits.
    pub(crate) events: Arc<crate::security_log::Coalescer>,
    /// The lockout on Redis; `lockout` is then the local fallback.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<Arc<OnRedis>>,
}

/// The lockout on Redis and what to do while Redis cannot answer.
#[cfg(feature = "redis")]
pub(crate) struct OnRedis {
    pub(crate) lockout: super::RedisLockout,
    pub(crate) backend: crate::limiter::RedisBackend,
}

impl<K, C: Clock> std::fmt::Debug for Shared<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .field("hasher", &self.hasher)
            .field("lockout", &self.lockout)
            .field("client_ip", &self.client_ip)
            .field("grouping", &self.grouping)
            .field("www_authenticate", &self.www_authenticate)
            .finish_non_exhaustive()
    }
}
