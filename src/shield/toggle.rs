//! A layer that is on or off by configuration, without changing the stack's type. The types
//! are public in this private module: they appear in `ShieldService`'s response future, but
//! cannot be named outside the crate.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::problem::ShieldBody;

/// One of two services with the same response: a layer's service when the layer is on, the
/// service it would wrap when it is off.
#[derive(Clone, Debug)]
pub enum Toggle<On, Off> {
    /// The layer is on.
    On(On),
    /// The layer is off: requests go straight to the inner service.
    Off(Off),
}

impl<On, Off, Req> Service<Req> for Toggle<On, Off>
where
    On: Service<Req>,
    Off: Service<Req, Response = On::Response, Error = On::Error>,
{
    type Response = On::Response;
    type Error = On::Error;
    type Future = ToggleFuture<On::Future, Off::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Toggle::On(s) => s.poll_ready(cx),
            Toggle::Off(s) => s.poll_ready(cx),
        }
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self {
            Toggle::On(s) => ToggleFuture {
                kind: Kind::On { inner: s.call(req) },
            },
            Toggle::Off(s) => ToggleFuture {
                kind: Kind::Off { inner: s.call(req) },
            },
        }
    }
}

pin_project! {
    /// The response future of [`Toggle`].
    #[derive(Debug)]
    pub struct ToggleFuture<On, Off> {
        #[pin]
        kind: Kind<On, Off>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<On, Off> {
        On { #[pin] inner: On },
        Off { #[pin] inner: Off },
    }
}

impl<On, Off, T> Future for ToggleFuture<On, Off>
where
    On: Future<Output = T>,
    Off: Future<Output = T>,
{
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.project().kind.project() {
            KindProj::On { inner } => inner.poll(cx),
            KindProj::Off { inner } => inner.poll(cx),
        }
    }
}

/// Passes requests through and answers with the inner response, its body wrapped in
/// [`ShieldBody`]: what a layer that can answer by itself looks like when it is off.
#[derive(Clone, Debug)]
pub struct PassThrough<S> {
    inner: S,
}

impl<S> PassThrough<S> {
    pub(crate) fn new(inner: S) -> Self {
        PassThrough { inner }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for PassThrough<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = PassThroughFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        PassThroughFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`PassThrough`].
    #[derive(Debug)]
    pub struct PassThroughFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for PassThroughFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ShieldBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(ShieldBody::inner)))
    }
}
