use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use tower_layer::Layer;

use super::coalesce::Coalescer;
use super::service::SecurityLogService;
use crate::client_ip::ClientIpStrategy;

/// Puts every request of the wrapped service in a `request` span with a request id, echoes
/// the id, and logs authentication outcomes. See the [module documentation](super).
///
/// Built by [`SecurityLog::builder`](super::SecurityLog::builder). Cloning is cheap (one
/// shared, immutable configuration).
#[derive(Clone)]
pub struct SecurityLogLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for SecurityLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityLogLayer")
            .field("client_ip", &self.shared.client_ip)
            .field("request_id_header", &self.shared.request_id_header)
            .field("device_header", &self.shared.device_header)
            .finish_non_exhaustive()
    }
}

impl SecurityLogLayer {
    /// The coalescer of this layer's events: share it with the other layers' builders, and
    /// [`flush`](Coalescer::flush) it at shutdown so no suppressed count is lost.
    pub fn coalescer(&self) -> &Arc<Coalescer> {
        &self.shared.coalescer
    }
}

impl<S> Layer<S> for SecurityLogLayer {
    type Service = SecurityLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityLogService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The configuration every service of one layer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client_ip: ClientIpStrategy,
    pub(crate) request_id_header: HeaderName,
    pub(crate) accept_request_id: bool,
    pub(crate) device_header: Option<HeaderName>,
    pub(crate) max_field_len: usize,
    pub(crate) auth_events: bool,
    pub(crate) coalescer: Arc<Coalescer>,
    /// Hashes device ids for the `device_hash` field.
    pub(crate) subjects: crate::limiter::KeyHasher,
}
