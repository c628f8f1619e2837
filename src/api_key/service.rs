use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use subtle::ConstantTimeEq;
use tower_service::Service;

use super::Authenticated;
use super::key::{ApiKey, KeyDigest, KeyId};
use super::layer::Shared;
use super::lockout::Failure;
use super::store::{KeyRecord, KeyStore, KeyStoreError};
use crate::client_ip::ClientIpError;
use crate::limiter::{Clock, Key};
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{EventLogged, SecurityEvent};

/// The `X-API-Key` header, the other place a key may be sent.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The [`RequireApiKeyLayer`](super::RequireApiKeyLayer)'s service.
pub struct RequireApiKeyService<S, K, C: Clock> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<K, C>>,
}

impl<S: Clone, K, C: Clock> Clone for RequireApiKeyService<S, K, C> {
    fn clone(&self) -> Self {
        RequireApiKeyService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, K, C: Clock> std::fmt::Debug for RequireApiKeyService<S, K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireApiKeyService")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

/// Where the key was found in the request.
enum Presented<'a> {
    None,
    /// Sent twice (two headers, or both `Authorization` and `X-API-Key`).
    Ambiguous,
    Key(&'a [u8]),
}

/// The key of a request: `Authorization: Bearer <key>` or `X-API-Key: <key>`, exactly once.
fn presented(headers: &HeaderMap) -> Presented<'_> {
    let mut found: Option<&[u8]> = None;
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| bearer_token(v.as_bytes()));
    let api_key = headers.get_all(X_API_KEY).iter().map(|v| v.as_bytes());
    for token in bearer.chain(api_key) {
        if found.is_some() {
            return Presented::Ambiguous;
        }
        found = Some(token);
    }
    match found {
        Some(token) => Presented::Key(token),
        None => Presented::None,
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 9110 §11.1), or `None`
/// for another scheme.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    Some(&rest[start..])
}

/// Whole seconds to wait, rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// What the layer does with a request before (or instead of) the lookup.
enum Start {
    Refuse(Problem),
    Lookup(KeyDigest, Option<IpAddr>),
}

impl<K: KeyStore, C: Clock> Shared<K, C> {
    fn client_key(&self, ip: IpAddr) -> Key {
        self.grouping.key(ip)
    }

    fn unauthorized(&self, detail: &'static str) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED)
            .detail(detail)
            .header(WWW_AUTHENTICATE, self.www_authenticate.clone())
    }

    fn refused(&self) -> Problem {
        self.unauthorized("the API key was not accepted")
    }

    fn start(&self, headers: &HeaderMap, client: Result<IpAddr, ClientIpError>) -> Start {
        let ip = match client {
            Ok(ip) => Some(ip),
            // Without a client address there is nothing to count failures against: refuse
            // rather than let guesses through uncounted.
            Err(e) if self.lockout.is_some() => return Start::Refuse(unresolved(e)),
            Err(_) => None,
        };
        if let (Some(lockout), Some(ip)) = (&self.lockout, ip) {
            if let Some(wait) = lockout.locked_for(self.client_key(ip)) {
                let secs = retry_after_secs(wait);
                SecurityEvent::auth_lockout(secs, None)
                    .reason("locked out")
                    .client_ip(ip)
                    .emit();
                return Start::Refuse(
                    Problem::new(StatusCode::TOO_MANY_REQUESTS)
                        .title("Too many failed authentication attempts")
                        .detail(
                            "too many failed API-key attempts from this client; retry after \
                             the time in Retry-After",
                        )
                        .header(RETRY_AFTER, HeaderValue::from(secs)),
                );
            }
        }
        let text = match presented(headers) {
            Presented::Key(text) => text,
            Presented::None => {
                SecurityEvent::auth_attempt(false, None)
                    .reason("no key")
                    .client_ip(ip)
                    .emit();
                return Start::Refuse(self.unauthorized(
                    "an API key is required: send it as `Authorization: Bearer <key>` or in \
                     the X-API-Key header",
                ));
            }
            Presented::Ambiguous => {
                self.fail(ip, None, "key sent more than once", false);
                return Start::Refuse(self.unauthorized(
                    "send the API key once, in `Authorization: Bearer <key>` or in X-API-Key",
                ));
            }
        };
        // The checksum is checked before anything is hashed or looked up.
        let text = match std::str::from_utf8(text) {
            Ok(t) if ApiKey::is_well_formed(t, &self.prefix) => t,
            _ => {
                self.fail(ip, None, "malformed key", true);
                return Start::Refuse(self.refused());
            }
        };
        Start::Lookup(self.hasher.digest_str(text), ip)
    }

    /// After the lookup: the extension to insert, or the refusal.
    fn finish(
        &self,
        found: Result<Option<KeyRecord>, KeyStoreError>,
        digest: &KeyDigest,
        ip: Option<IpAddr>,
    ) -> Result<Authenticated, Problem> {
        let id = digest.id();
        let record = match found {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(target: crate::security_log::TARGET, error = %e, "API-key store failed");
                let key = id.to_string();
                SecurityEvent::auth_unavailable(Some(&key))
                    .client_ip(ip)
                    .emit();
                return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                    .detail("API keys cannot be checked right now; try again later"));
            }
        };
        // The store found a candidate; the digests are compared here again, in constant time.
        let record = record.filter(|r| bool::from(r.digest().ct_eq(digest)));
        let reason = match &record {
            None => "unknown key",
            Some(r) if r.is_revoked() => "revoked key",
            Some(r) if !r.is_usable_at(SystemTime::now()) => "expired key",
            Some(r) => {
                if let (Some(lockout), Some(ip)) = (&self.lockout, ip) {
                    lockout.record_success(self.client_key(ip));
                }
                let key = id.to_string();
                SecurityEvent::auth_attempt(true, Some(&key))
                    .client_ip(ip)
                    .emit();
                return Ok(Authenticated {
                    key_id: id,
                    label: r.label_arc(),
                });
            }
        };
        self.fail(ip, Some(id), reason, true);
        Err(self.refused())
    }

    /// Logs a failure and, when `count`, counts it towards the lockout.
    fn fail(&self, ip: Option<IpAddr>, id: Option<KeyId>, reason: &'static str, count: bool) {
        let outcome = match (&self.lockout, ip) {
            (Some(lockout), Some(ip)) if count => Some(lockout.record_failure(self.client_key(ip))),
            _ => None,
        };
        let key = id.map(|i| i.to_string());
        let event = match outcome {
            Some(Failure::Locked(wait)) => {
                SecurityEvent::auth_lockout(retry_after_secs(wait), key.as_deref())
            }
            Some(Failure::Counted { remaining }) => {
                SecurityEvent::auth_attempt(false, key.as_deref()).attempts_left(remaining)
            }
            None => SecurityEvent::auth_attempt(false, key.as_deref()),
        };
        event.reason(reason).client_ip(ip).emit();
    }
}

fn unresolved(e: ClientIpError) -> Problem {
    SecurityEvent::client_unidentified(&e).emit();
    match e {
        ClientIpError::MissingPeer => Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
            .detail("the server cannot identify clients; its operator has been told how to fix it"),
        other => Problem::new(StatusCode::BAD_REQUEST).detail(other.to_string()),
    }
}

/// A refusal's response, marked as logged: this layer has emitted its event, so the
/// `SecurityLog` layer must not log the 401 again.
fn refusal<B>(problem: Problem) -> Response<ShieldBody<B>> {
    let mut response = problem.into_response();
    response.extensions_mut().insert(EventLogged);
    response
}

impl<S, K, C, ReqB, ResB> Service<Request<ReqB>> for RequireApiKeyService<S, K, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    K: KeyStore,
    C: Clock,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, S::Future, K::Lookup, ReqB, ResB, K, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let client = self.shared.client_ip.resolve_request(&req);
        match self.shared.start(req.headers(), client) {
            Start::Refuse(problem) => ResponseFuture::ready(refusal(problem)),
            Start::Lookup(digest, ip) => {
                let lookup = self.shared.keys.lookup(&digest);
                // The service that was polled ready goes with the request; a clone stays.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    kind: Kind::Lookup {
                        lookup,
                        pending: Some(Pending {
                            inner,
                            req,
                            shared: self.shared.clone(),
                            digest,
                            ip,
                        }),
                    },
                }
            }
        }
    }
}

/// What waits for the lookup: the request and the service to call with it.
struct Pending<S, ReqB, K, C: Clock> {
    inner: S,
    req: Request<ReqB>,
    shared: Arc<Shared<K, C>>,
    digest: KeyDigest,
    ip: Option<IpAddr>,
}

impl<S, ReqB, K, C: Clock> std::fmt::Debug for Pending<S, ReqB, K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`RequireApiKeyService`]: the key lookup, then the inner
    /// service's future.
    pub struct ResponseFuture<S, F, L, ReqB, ResB, K, C: Clock> {
        #[pin]
        kind: Kind<S, F, L, ReqB, ResB, K, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, F, L, ReqB, ResB, K, C: Clock> {
        Lookup { #[pin] lookup: L, pending: Option<Pending<S, ReqB, K, C>> },
        Inner { #[pin] future: F },
        Ready { response: Option<Response<ShieldBody<ResB>>> },
    }
}

impl<S, F, L, ReqB, ResB, K, C: Clock> ResponseFuture<S, F, L, ReqB, ResB, K, C> {
    fn ready(response: Response<ShieldBody<ResB>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }
}

impl<S, F, L, ReqB, ResB, K, C> Future for ResponseFuture<S, F, L, ReqB, ResB, K, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Future = F>,
    F: Future<Output = Result<Response<ResB>, S::Error>>,
    L: Future<Output = Result<Option<KeyRecord>, KeyStoreError>>,
    K: KeyStore,
    C: Clock,
{
    type Output = Result<Response<ShieldBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut kind = self.as_mut().project().kind;
            let next = match kind.as_mut().project() {
                KindProj::Lookup { lookup, pending } => {
                    let found = ready!(lookup.poll(cx));
                    let Some(Pending {
                        mut inner,
                        mut req,
                        shared,
                        digest,
                        ip,
                    }) = pending.take()
                    else {
                        return Poll::Pending;
                    };
                    match shared.finish(found, &digest, ip) {
                        Ok(authenticated) => {
                            req.extensions_mut().insert(authenticated);
                            Kind::Inner {
                                future: inner.call(req),
                            }
                        }
                        Err(problem) => return Poll::Ready(Ok(refusal(problem))),
                    }
                }
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
            };
            kind.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_found() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(300)), 300);
    }
}
