use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::layer::{Decision, Shared};
use crate::problem::ShieldBody;

pin_project! {
    /// The response future of [`CorsService`](super::CorsService): a preflight's answer, or the
    /// inner future and then the CORS headers on whatever response it yields.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner {
            #[pin]
            future: F,
            shared: Arc<Shared>,
            decision: Option<Decision>,
        },
        Ready {
            response: Option<Response<ShieldBody<B>>>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn ready(response: Response<ShieldBody<B>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F, shared: Arc<Shared>, decision: Decision) -> Self {
        ResponseFuture {
            kind: Kind::Inner {
                future,
                shared,
                decision: Some(decision),
            },
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ShieldBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner {
                future,
                shared,
                decision,
            } => {
                let response = ready!(future.poll(cx))?;
                let mut response = response.map(ShieldBody::inner);
                if let Some(decision) = decision.take() {
                    shared.decorate(response.headers_mut(), decision);
                }
                Poll::Ready(Ok(response))
            }
            // polled again after completion: stay pending rather than panic
            KindProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
        }
    }
}
