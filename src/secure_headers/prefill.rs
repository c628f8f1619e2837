//! The one step of the security headers that crosses layers, explicitly: give a handler's
//! response the static headers where it is made, before the layers between add theirs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::SkipSecureHeaders;
use super::layer::Shared;

/// Gives the wrapped service's responses the static headers of one [`SecureHeadersLayer`] at
/// once, so that the layer itself, further out, has nothing left to add to them. Made by
/// [`SecureHeadersLayer::prefill`]; the [`Shield`](crate::Shield) puts it around your
/// service.
///
/// Without it, the security headers go on after every layer inside them has added its own
/// fields to the response (the rate limit's, CORS'), and each of those fields is hashed into
/// the map once more when the layer seeds the response with its prepared headers. With it,
/// the seeding happens while the response holds only the handler's fields. The layer knows a
/// response it prefilled by one header value whose bytes only its prefilled responses carry;
/// responses that do not pass through the step (the other layers' refusals) get the headers
/// from the layer as before. BENCHMARKS.md has what it saves.
///
/// [`SecureHeadersLayer`]: super::SecureHeadersLayer
/// [`SecureHeadersLayer::prefill`]: super::SecureHeadersLayer::prefill
#[derive(Clone, Debug)]
pub struct PrefillSecureHeadersLayer {
    pub(crate) shared: Arc<Shared>,
}

impl<S> Layer<S> for PrefillSecureHeadersLayer {
    type Service = PrefillSecureHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PrefillSecureHeadersService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The [`PrefillSecureHeadersLayer`]'s service.
#[derive(Clone, Debug)]
pub struct PrefillSecureHeadersService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for PrefillSecureHeadersService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = PrefillFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        PrefillFuture {
            inner: self.inner.call(req),
            shared: self.shared.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`PrefillSecureHeadersService`].
    #[derive(Debug)]
    pub struct PrefillFuture<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
    }
}

impl<F, B, E> Future for PrefillFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if response.extensions().get::<SkipSecureHeaders>().is_none() {
            this.shared.seed(response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}
