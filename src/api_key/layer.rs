use std::sync::Arc;

use http::HeaderValue;
use tower_layer::Layer;

use super::key::{KeyHasher, KeyPrefix};
use super::lockout::Lockout;
use super::service::RequireApiKeyService;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::limiter::MemoryStore;

/// Requires a valid API key on every request of the wrapped service.
///
/// Built by [`RequireApiKey::builder`](super::RequireApiKey::builder). Cloning the layer
/// shares its key store and lockout. `St` is the store the lockout is kept in.
pub struct RequireApiKeyLayer<K, St = MemoryStore> {
    pub(crate) shared: Arc<Shared<K, St>>,
}

impl<K, St> Clone for RequireApiKeyLayer<K, St> {
    fn clone(&self) -> Self {
        RequireApiKeyLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<K, St> std::fmt::Debug for RequireApiKeyLayer<K, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireApiKeyLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl<K, St> RequireApiKeyLayer<K, St> {
    /// The key store.
    pub fn key_store(&self) -> &K {
        &self.shared.keys
    }

    /// The lockout, unless it was turned off; [`store`](Lockout::store) is where it counts.
    pub fn lockout(&self) -> Option<&Lockout<St>> {
        self.shared.lockout.as_ref()
    }
}

impl<S, K, St> Layer<S> for RequireApiKeyLayer<K, St> {
    type Service = RequireApiKeyService<S, K, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireApiKeyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Everything the services of one layer share.
pub(crate) struct Shared<K, St> {
    pub(crate) keys: K,
    pub(crate) prefix: KeyPrefix,
    pub(crate) hasher: KeyHasher,
    pub(crate) lockout: Option<Lockout<St>>,
    pub(crate) client_ip: ClientIpStrategy,
    pub(crate) grouping: Ipv6Grouping,
    pub(crate) www_authenticate: HeaderValue,
    /// The flood control of the events this layer emits.
    pub(crate) events: Arc<crate::security_log::Coalescer>,
}

impl<K, St> std::fmt::Debug for Shared<K, St> {
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
