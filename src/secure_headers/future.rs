use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::SkipSecureHeaders;
use super::layer::Shared;
use super::nonce::CspNonce;

pin_project! {
    /// The response future of [`SecureHeadersService`](super::SecureHeadersService): the inner
    /// future, then the headers on whatever response it yields (errors included).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        hsts: bool,
        nonce: Option<CspNonce>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, shared: Arc<Shared>, hsts: bool, nonce: Option<CspNonce>) -> Self {
        ResponseFuture {
            inner,
            shared,
            hsts,
            nonce,
        }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .field("hsts", &self.hsts)
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
        let response = ready!(this.inner.poll(cx))?;
        let (mut parts, body) = response.into_parts();
        let skip = parts.extensions.get::<SkipSecureHeaders>();
        let prefilled = this.shared.prefilled(&parts.headers);
        this.shared.apply(
            &mut parts.headers,
            skip,
            prefilled,
            *this.hsts,
            this.nonce.as_ref(),
        );
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
