use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::toggle::{PassThrough, Toggle};
use crate::cors::CorsService;
use crate::limiter::EitherStore;
use crate::problem::ShieldBody;
use crate::rate_limit::RateLimitService;
use crate::sanitize::InputSanitizerService;
use crate::secure_headers::{PrefillSecureHeadersService, SecureHeadersService};
use crate::security_log::SecurityLogService;

type Prefilled<S> = Toggle<PrefillSecureHeadersService<S>, S>;
type Sanitized<S> = Toggle<InputSanitizerService<Prefilled<S>>, PassThrough<Prefilled<S>>>;
type Limited<S> = Toggle<RateLimitService<Sanitized<S>, EitherStore>, PassThrough<Sanitized<S>>>;
type CorsChecked<S> = Toggle<CorsService<Limited<S>>, PassThrough<Limited<S>>>;
type Headed<S> = Toggle<SecureHeadersService<CorsChecked<S>>, CorsChecked<S>>;
type Stack<S> = SecurityLogService<Headed<S>>;
/// The body the stack answers with: one wrapper per layer that can answer by itself.
type Nested<B> = ShieldBody<ShieldBody<ShieldBody<B>>>;

/// The whole stack around `S`, built by [`ShieldLayer`](super::ShieldLayer). Its responses
/// carry [`ShieldBody`] over `S`'s body: `S`'s own, or a refusal one of the layers made.
#[derive(Clone, Debug)]
pub struct ShieldService<S> {
    inner: Stack<S>,
}

impl<S> ShieldService<S> {
    pub(super) fn new(inner: Stack<S>) -> Self {
        ShieldService { inner }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ShieldService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    Stack<S>: Service<Request<ReqB>, Response = Response<Nested<ResB>>, Error = S::Error>,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<<Stack<S> as Service<Request<ReqB>>>::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`ShieldService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Nested<B>>, E>>,
{
    type Output = Result<Response<ShieldBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(|body| body.flatten().flatten())))
    }
}
