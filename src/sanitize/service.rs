use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{CollectError, content_length, is_json, poll_collect};
use super::layer::Shared;
use super::rules::Refusal;
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{Coalescer, SecurityEvent};

/// The [`InputSanitizerLayer`](super::InputSanitizerLayer)'s service.
///
/// The request body type `B` goes in and comes out the same: on a route with a JSON-body
/// rule the body is collected (bounded), validated, and handed to the inner service as
/// `B::from(bytes)` with an exact `Content-Length`; on every other route it is passed on
/// untouched. `axum::body::Body`, `http_body_util::Full<Bytes>` and
/// `http_body_util::BoxBody`-like types with `From<Bytes>` qualify.
#[derive(Clone, Debug)]
pub struct InputSanitizerService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S, B, ResB> Service<Request<B>> for InputSanitizerService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    B: Body + From<Bytes>,
    B::Data: Buf,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let rule = match shared.check_head(req.method(), req.uri(), req.headers()) {
            Ok(rule) => rule,
            Err(refusal) => return ResponseFuture::ready(refuse(&shared.events, refusal)),
        };
        // Routes without a body rule: the body is not this layer's business.
        let Some(rule) = rule else {
            return ResponseFuture::inner(self.inner.call(req));
        };
        let declared = match content_length(req.headers()) {
            Ok(n) => n,
            Err(()) => {
                return ResponseFuture::ready(refuse(
                    &shared.events,
                    Refusal::one(
                        StatusCode::BAD_REQUEST,
                        "content-length",
                        "header",
                        "content_length",
                        "is not a single decimal number",
                    ),
                ));
            }
        };
        let limit = shared.body_limit;
        // 413 before a byte is read: the declared length, or the smallest size the body says
        // it has, is over the limit.
        let hinted = req.body().size_hint().lower();
        if declared.is_some_and(|n| n > limit as u64) || hinted > limit as u64 {
            return ResponseFuture::ready(refuse(&shared.events, too_large()));
        }
        if !is_json(req.headers()) {
            return ResponseFuture::ready(refuse(
                &shared.events,
                Refusal::one(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content-type",
                    "header",
                    "content_type",
                    "must be application/json",
                ),
            ));
        }
        // The ready service goes with the request; this one gets a fresh clone.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        let (parts, body) = req.into_parts();
        let capacity = declared.map_or(0, |n| n as usize).min(limit);
        ResponseFuture {
            kind: Kind::Collecting {
                body,
                buf: BytesMut::with_capacity(capacity),
                parts: Some(parts),
                inner: Some(inner),
                shared: self.shared.clone(),
                rule,
            },
        }
    }
}

fn too_large() -> Refusal {
    Refusal::one(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body",
        "body",
        "body_limit",
        "is larger than the server accepts",
    )
}

/// The problem+json response of a refusal, and its one `input_validation_fail` event. Both
/// name fields and rules, never a value.
fn refuse<B>(events: &Coalescer, refusal: Refusal) -> Response<ShieldBody<B>> {
    let fields = join(refusal.violations.iter().map(|v| v.field.as_str()));
    let rules = join(refusal.violations.iter().map(|v| v.rule));
    SecurityEvent::input_validation_fail(fields.as_str(), rules.as_str())
        .status(refusal.status)
        .emit_via(events);
    let detail = match refusal.violations.as_slice() {
        [one] => format!("{} {}: {}", one.location, one.field, one.reason),
        many => format!("{} fields are invalid", many.len()),
    };
    let params: Vec<serde_json::Value> = refusal
        .violations
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.field,
                "in": v.location,
                "rule": v.rule,
                "reason": v.reason,
            })
        })
        .collect();
    Problem::new(refusal.status)
        .detail(detail)
        .extension("invalid-params", params)
        .into_response()
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out
}

pin_project! {
    /// The response future of [`InputSanitizerService`]: collects and checks the body when
    /// the route has a JSON-body rule, then runs the inner service.
    pub struct ResponseFuture<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        kind: Kind<S, B, ResB>,
    }
}

pin_project! {
    #[project = KindProj]
    #[project_replace = KindReplace]
    enum Kind<S, B, ResB>
    where
        S: Service<Request<B>>,
    {
        Collecting {
            #[pin]
            body: B,
            buf: BytesMut,
            parts: Option<Parts>,
            inner: Option<S>,
            shared: Arc<Shared>,
            rule: usize,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Ready {
            response: Option<Response<ShieldBody<ResB>>>,
        },
    }
}

impl<S, B, ResB> ResponseFuture<S, B, ResB>
where
    S: Service<Request<B>>,
{
    fn ready(response: Response<ShieldBody<ResB>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    fn inner(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Inner { future },
        }
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B, ResB>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    B: Body + From<Bytes>,
    B::Data: Buf,
{
    type Output = Result<Response<ShieldBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let request = match self.as_mut().project().kind.project() {
                KindProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ShieldBody::inner)));
                }
                KindProj::Ready { response } => {
                    return match response.take() {
                        Some(r) => Poll::Ready(Ok(r)),
                        None => Poll::Pending,
                    };
                }
                KindProj::Collecting {
                    body,
                    buf,
                    parts,
                    shared,
                    rule,
                    ..
                } => {
                    let collected = ready!(poll_collect(body, buf, shared.body_limit, cx));
                    let checked = match collected {
                        Err(CollectError::TooLarge) => Err(too_large()),
                        Err(CollectError::Failed) => Err(Refusal::one(
                            StatusCode::BAD_REQUEST,
                            "body",
                            "body",
                            "unreadable",
                            "could not be read",
                        )),
                        Ok(()) => shared.bodies[*rule].check(buf, shared.json),
                    };
                    match checked {
                        Err(refusal) => Err(refuse(&shared.events, refusal)),
                        Ok(rewritten) => {
                            let bytes = match rewritten {
                                Some(new) => Bytes::from(new),
                                None => std::mem::take(buf).freeze(),
                            };
                            let mut parts = parts.take();
                            Ok(parts
                                .as_mut()
                                .map(|parts| {
                                    parts.headers.remove(TRANSFER_ENCODING);
                                    parts
                                        .headers
                                        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                                })
                                .and(parts)
                                .map(|parts| Request::from_parts(parts, B::from(bytes))))
                        }
                    }
                }
            };
            let next = match request {
                Err(refused) => Kind::Ready {
                    response: Some(refused),
                },
                Ok(None) => Kind::Ready { response: None },
                Ok(Some(request)) => {
                    let replaced = self
                        .as_mut()
                        .project()
                        .kind
                        .project_replace(Kind::Ready { response: None });
                    match replaced {
                        KindReplace::Collecting {
                            inner: Some(mut inner),
                            ..
                        } => Kind::Inner {
                            future: inner.call(request),
                        },
                        _ => Kind::Ready { response: None },
                    }
                }
            };
            self.as_mut().project().kind.project_replace(next);
        }
    }
}
