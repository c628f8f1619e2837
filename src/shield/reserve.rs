//! Room in the handler's response for every header the shield's layers will add, made once.
//!
//! Each layer adds its headers on the way out: the rate limit two, CORS up to four, the
//! security headers about a dozen, the security log one. Left to itself, `http::HeaderMap`
//! grows as they arrive, reallocating and rehashing its table two or three times per
//! response; reserving the total where the response is made costs one allocation of the
//! right size instead (about 900 instructions saved per request, BENCHMARKS.md).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

/// Wraps the protected service: its responses get room for `headers` more header fields.
#[derive(Clone, Debug)]
pub struct ReserveHeaders<S> {
    inner: S,
    headers: usize,
}

impl<S> ReserveHeaders<S> {
    pub(crate) fn new(inner: S, headers: usize) -> Self {
        ReserveHeaders { inner, headers }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ReserveHeaders<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ReserveHeadersFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        ReserveHeadersFuture {
            inner: self.inner.call(req),
            headers: self.headers,
        }
    }
}

pin_project! {
    /// The response future of [`ReserveHeaders`].
    #[derive(Debug)]
    pub struct ReserveHeadersFuture<F> {
        #[pin]
        inner: F,
        headers: usize,
    }
}

impl<F, B, E> Future for ReserveHeadersFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        // A map too large to grow is left as it is; the layers' own inserts then decide.
        let _ = response.headers_mut().try_reserve(*this.headers);
        Poll::Ready(Ok(response))
    }
}
