//! The handler's response made ready, once, for every header the shield's layers will add.
//!
//! Each layer adds its headers on the way out: the rate limit two, CORS up to four, the
//! security headers about a dozen, the security log one. Left to itself, `http::HeaderMap`
//! grows as they arrive, reallocating and rehashing its table two or three times per
//! response. Here, where the response is made, its map gets room for all of them at once.
//! When it has to grow for that anyway (a handler's map has room for a few fields), it is
//! replaced by a clone of the security headers, whose names are hashed already, and the
//! response's own fields are put back over them: inserting a header costs about 370
//! instructions, most of them hashing its name byte by byte, so this saves about 2,800 per
//! response for one allocation more (BENCHMARKS.md, `tests/alloc.rs`). `tests/shield.rs`
//! shows the fields come out the same either way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::secure_headers::{SecureHeadersLayer, SkipSecureHeaders};

/// Wraps the protected service: its responses get room for the fields the shield's layers
/// add, and the security headers when their map would grow anyway.
#[derive(Clone, Debug)]
pub struct ReserveHeaders<S> {
    inner: S,
    prepare: Prepare,
}

/// What a response needs: room for `room` more fields, and the security headers to seed.
#[derive(Clone, Debug)]
struct Prepare {
    room: usize,
    secure_headers: Option<SecureHeadersLayer>,
}

impl<S> ReserveHeaders<S> {
    pub(crate) fn new(inner: S, room: usize, secure_headers: Option<&SecureHeadersLayer>) -> Self {
        let secure_headers = secure_headers.filter(|l| l.seeds()).cloned();
        ReserveHeaders {
            inner,
            prepare: Prepare {
                room,
                secure_headers,
            },
        }
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
            prepare: self.prepare.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`ReserveHeaders`].
    #[derive(Debug)]
    pub struct ReserveHeadersFuture<F> {
        #[pin]
        inner: F,
        prepare: Prepare,
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
        let Prepare {
            room,
            secure_headers,
        } = this.prepare;
        let (extensions, headers) = (response.extensions(), response.headers());
        // Seeding replaces the map: worth it only when the map would grow anyway.
        let seed = secure_headers.as_ref().filter(|_| {
            headers.capacity().saturating_sub(headers.keys_len()) < *room
                && extensions.get::<SkipSecureHeaders>().is_none()
        });
        let headers = response.headers_mut();
        let seeded = seed.is_some_and(|s| s.seed(headers, *room));
        if !seeded {
            // A map too large to grow is left as it is; the layers' own inserts then decide.
            let _ = headers.try_reserve(*room);
        }
        Poll::Ready(Ok(response))
    }
}
