use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Response, StatusCode};
use pin_project_lite::pin_project;

use super::layer::Shared;
use super::{AuthOutcome, EventLogged, RequestId, SecurityEvent};

pin_project! {
    /// The response future of [`SecurityLogService`](super::SecurityLogService): the inner
    /// future polled inside the request span, then the request id, status, latency and
    /// authentication outcome.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        start: Option<Instant>,
        id: Option<RequestId>,
        client_ip: Option<IpAddr>,
        shared: Arc<Shared>,
        // Whether auth events are on and wanted by a subscriber.
        auth: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        span: tracing::Span,
        start: Option<Instant>,
        id: RequestId,
        client_ip: Option<IpAddr>,
        shared: Arc<Shared>,
        auth: bool,
    ) -> Self {
        ResponseFuture {
            inner,
            span,
            start,
            id: Some(id),
            client_ip,
            shared,
            auth,
        }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = ready!(this.inner.poll(cx));
        let latency_us = this
            .start
            .map(|s| u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX));
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                if let Some(latency_us) = latency_us {
                    tracing::info!(
                        target: "tower_shield::request",
                        event = "request_failed",
                        latency_us,
                    );
                }
                return Poll::Ready(Err(e));
            }
        };
        let status = response.status();
        if let Some(latency_us) = latency_us {
            tracing::info!(
                target: "tower_shield::request",
                event = "request_completed",
                status = status.as_u16(),
                latency_us,
            );
        }
        if std::mem::take(this.auth) {
            auth_event(this.shared, &response, *this.client_ip);
        }
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(
                this.shared.request_id_header.clone(),
                id.into_header_value(),
            );
        }
        Poll::Ready(Ok(response))
    }
}

/// The `auth_attempt` event a response implies, if any.
fn auth_event<B>(shared: &Shared, response: &Response<B>, client_ip: Option<IpAddr>) {
    let ext = response.extensions();
    if ext.get::<EventLogged>().is_some() {
        return;
    }
    let event = if let Some(outcome) = ext.get::<AuthOutcome>() {
        SecurityEvent::auth_attempt(outcome.success, outcome.key_prefix.as_deref())
    } else {
        match response.status() {
            StatusCode::UNAUTHORIZED => {
                SecurityEvent::auth_attempt(false, None).reason("401 unauthorized")
            }
            StatusCode::FORBIDDEN => SecurityEvent::access_denied(None).reason("403 forbidden"),
            _ => return,
        }
    };
    event
        .status(response.status())
        .client_ip(client_ip)
        .emit_via(&shared.coalescer);
}
