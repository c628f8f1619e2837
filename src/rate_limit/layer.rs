use std::sync::Arc;

use http::{HeaderValue, Method};
use ipnet::IpNet;
use tower_layer::Layer;

use super::device::DeviceRotation;
use super::monitor::RateLimitMonitor;
use super::policy::Scope;
use super::service::RateLimitService;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::limiter::{KeyHasher, LimiterStore, MemoryStore, Namespace, Quota};
use crate::route::Route;

/// Applies rate-limit policies to every request of the wrapped service.
///
/// Built by [`RateLimit::builder`](super::RateLimit::builder). Cloning the layer shares its
/// store, policies and monitor. `St` is the store the limits are kept in (any
/// [`LimiterStore`]; the in-memory [`MemoryStore`] unless
/// [`RateLimitBuilder::store`](super::RateLimitBuilder::store) gave another).
pub struct RateLimitLayer<St = MemoryStore> {
    pub(crate) shared: Arc<Shared<St>>,
}

impl<St> Clone for RateLimitLayer<St> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<St> std::fmt::Debug for RateLimitLayer<St> {
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

impl<St: LimiterStore> RateLimitLayer<St> {
    /// The monitor of refusals, for a "top offenders" view.
    pub fn monitor(&self) -> &Arc<RateLimitMonitor> {
        &self.shared.monitor
    }

    /// The store the limits are kept in: give it to
    /// [`RequireApiKeyBuilder::limiter_store`](crate::api_key::RequireApiKeyBuilder::limiter_store)
    /// so that the API-key lockout shares it.
    pub fn store(&self) -> &Arc<St> {
        &self.shared.store
    }
}

impl<S, St> Layer<S> for RateLimitLayer<St> {
    type Service = RateLimitService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            shared: self.shared.clone(),
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
pub(crate) struct Shared<St> {
    pub(crate) store: Arc<St>,
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
    /// The device-rotation cap, always in memory, in this process: it is asked before the
    /// store, on every request that names a device.
    pub(crate) device_rotation: Option<(DeviceRotation, MemoryStore)>,
    pub(crate) monitor: Arc<RateLimitMonitor>,
    pub(crate) on_refusal: Option<super::service::RefusalHook>,
    /// The flood control of the events this layer emits.
    pub(crate) events: Arc<crate::security_log::Coalescer>,
    /// Whether every policy keys a request by the same client identity, which is then the
    /// tag of the request's checks (see `LimiterStore`), else `Key::GLOBAL`.
    pub(crate) tag_by_client: bool,
}

impl<St> std::fmt::Debug for Shared<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}
