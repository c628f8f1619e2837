use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::USER_AGENT;
use http::{Request, Response};
use tower_service::Service;

use super::escape::{escape, escape_bytes};
use super::event::{Hex8, IpText};
use super::future::ResponseFuture;
use super::layer::Shared;
use super::{REQUEST_TARGET, RequestId, SecurityEvent, subject_hash};
use crate::client_ip::ClientIpError;
use crate::identifier::single_identifier;

/// The [`SecurityLogLayer`](super::SecurityLogLayer)'s service.
#[derive(Clone, Debug)]
pub struct SecurityLogService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SecurityLogService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        // The summary of a flood that stopped goes out with the next request.
        shared.coalescer.flush_expired();
        let id = shared
            .accept_request_id
            .then(|| req.headers().get(&shared.request_id_header))
            .flatten()
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate);

        let span_on = tracing::span_enabled!(target: REQUEST_TARGET, tracing::Level::INFO);
        let auth_on = shared.auth_events
            && tracing::event_enabled!(target: super::TARGET, tracing::Level::WARN);
        // Resolved here, the outermost layer that needs it, for every layer inside.
        let client = shared.client_ip.store_context(&mut req).ip();
        let client = (span_on || auth_on).then_some(client);
        let span = if span_on {
            request_span(shared, &req, &id, client.as_ref())
        } else {
            tracing::Span::none()
        };
        let start = span_on.then(Instant::now);
        let missing_peer = matches!(client, Some(Err(ClientIpError::MissingPeer)));
        let client_ip = client.and_then(Result::ok);
        req.extensions_mut().insert(id.clone());
        let future = {
            let _entered = span.enter();
            if missing_peer && auth_on {
                // The operator's error, not the client's: say so (coalesced, so not on every
                // request) where the operator will look.
                SecurityEvent::client_unidentified(&ClientIpError::MissingPeer)
                    .emit_via(&shared.coalescer);
            }
            self.inner.call(req)
        };
        ResponseFuture::new(future, span, start, id, client_ip, shared.clone(), auth_on)
    }
}

/// The request span, with every field known now.
fn request_span<B>(
    shared: &Shared,
    req: &Request<B>,
    id: &RequestId,
    client: Option<&Result<IpAddr, ClientIpError>>,
) -> tracing::Span {
    let max = shared.max_field_len;
    let ip_text = client
        .and_then(|c| c.as_ref().ok())
        .map(|ip| IpText::new(*ip));
    let client_ip = ip_text.as_ref().map(IpText::as_str);
    let client_ip_error = client
        .and_then(|c| c.as_ref().err())
        .map(super::event::client_ip_error_code);
    let headers = req.headers();
    let ua = headers
        .get(USER_AGENT)
        .map(|v| escape_bytes(v.as_bytes(), max));
    let user_agent = ua.as_deref();
    let device = shared
        .device_header
        .as_ref()
        .and_then(|name| single_identifier(headers, name))
        .map(|id| Hex8::new(subject_hash(&shared.subjects, id)));
    let device_hash = device.as_ref().map(Hex8::as_str);
    tracing::info_span!(
        target: "tower_shield::request",
        "request",
        request_id = id.as_str(),
        method = req.method().as_str(),
        path = &*escape(req.uri().path(), max),
        client_ip,
        client_ip_error,
        user_agent,
        device_hash,
    )
}
