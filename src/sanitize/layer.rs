use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use tower_layer::Layer;

use super::rules::{BodyRule, CompiledHeader, JsonLimits, QueryRule, Refusal, Violation};
use super::service::InputSanitizerService;

/// Validates the headers, query strings and JSON bodies of every request of the wrapped
/// service.
///
/// Built by [`InputSanitizer::builder`](super::InputSanitizer::builder). Cloning the layer
/// shares its rules.
#[derive(Clone, Debug)]
pub struct InputSanitizerLayer {
    pub(crate) shared: Arc<Shared>,
}

impl<S> Layer<S> for InputSanitizerLayer {
    type Service = InputSanitizerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InputSanitizerService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

impl InputSanitizerLayer {
    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.shared.body_limit
    }
}

/// The compiled rules every service of one layer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) headers: Vec<CompiledHeader>,
    pub(crate) queries: Vec<QueryRule>,
    pub(crate) bodies: Vec<BodyRule>,
    pub(crate) body_limit: usize,
    pub(crate) json: JsonLimits,
    /// The flood control of the events this layer emits.
    pub(crate) events: std::sync::Arc<crate::security_log::Coalescer>,
}

impl Shared {
    /// Checks the header and query rules; the index of the body rule of this route, if any.
    pub(crate) fn check_head(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<usize>, Refusal> {
        let path = uri.path();
        let mut violations: Vec<Violation> = Vec::new();
        for rule in &self.headers {
            if let Err(v) = rule.check(method, path, headers) {
                violations.push(v);
            }
        }
        if let Some(rule) = self.queries.iter().find(|q| q.route.matches(method, path)) {
            rule.check(uri.query(), &mut violations);
        }
        if !violations.is_empty() {
            return Err(Refusal {
                status: http::StatusCode::BAD_REQUEST,
                violations,
            });
        }
        Ok(self
            .bodies
            .iter()
            .position(|b| b.route.matches(method, path)))
    }
}
