use std::sync::Arc;

use http::HeaderValue;
use tower_layer::Layer;

use super::key::{KeyHasher, KeyPrefix};
use super::lockout::Lockout;
use super::service::RequireApiKeyService;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::limiter::{Clock, CoarseClock};

/// Requires a valid API key on every request of the wrapped service.
///
/// Built by [`RequireApiKey::builder`](super::RequireApiKey::builder). Cloning the layer
/// shares its key store and lockout.
pub struct RequireApiKeyLayer<K, C: Clock = CoarseClock> {
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

    /// The lockout, unless it was turned off.
    pub fn lockout(&self) -> Option<&Lockout<C>> {
        self.shared.lockout.as_ref()
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
