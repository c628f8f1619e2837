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
use super::lockout::{FAILURES, Failure, LOCK};
use super::store::{KeyRecord, KeyStore, KeyStoreError};
use crate::client_ip::ClientIpError;
use crate::limiter::{Check, Key, LimiterStore, StoreError};
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{Coalescer, EventLogged, Hex8, SecurityEvent};

/// The `X-API-Key` header, the other place a key may be sent.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The [`RequireApiKeyLayer`](super::RequireApiKeyLayer)'s service, its lockout in the
/// store `St`.
pub struct RequireApiKeyService<S, K, St> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<K, St>>,
}

impl<S: Clone, K, St> Clone for RequireApiKeyService<S, K, St> {
    fn clone(&self) -> Self {
        RequireApiKeyService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, K, St> std::fmt::Debug for RequireApiKeyService<S, K, St> {
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

/// A failed attempt, before it is counted: which key (when it parsed), why, whether it counts
/// towards the lockout, and the refusal to answer.
struct Failed {
    id: Option<KeyId>,
    reason: &'static str,
    counts: bool,
    problem: Problem,
}

/// What the lookup made of a presented key.
enum Judged {
    Accepted(Authenticated),
    Failed(Failed),
    /// The key store could not answer: logged, and nothing to count.
    Unavailable(Problem),
}

impl<K: KeyStore, St: LimiterStore> Shared<K, St> {
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

    /// The client's address, `None` when it is unknown and there is no lockout to count for.
    fn client(&self, client: Result<IpAddr, ClientIpError>) -> Result<Option<IpAddr>, Problem> {
        match client {
            Ok(ip) => Ok(Some(ip)),
            // Without a client address there is nothing to count failures against: refuse
            // rather than let guesses through uncounted.
            Err(e) if self.lockout.is_some() => Err(unresolved(e, &self.events)),
            Err(_) => Ok(None),
        }
    }

    /// The refusal of a client locked out for `wait` more, logged.
    fn locked_out(&self, ip: IpAddr, wait: Duration) -> Problem {
        let secs = retry_after_secs(wait);
        SecurityEvent::auth_lockout(secs, None)
            .reason("locked out")
            .client_ip(ip)
            .emit_via(&self.events);
        Problem::new(StatusCode::TOO_MANY_REQUESTS)
            .title("Too many failed authentication attempts")
            .detail(
                "too many failed API-key attempts from this client; retry after the time in \
                 Retry-After",
            )
            .header(RETRY_AFTER, HeaderValue::from(secs))
    }

    /// The digest of the key the request presents, or why there is none. The checksum is
    /// checked before anything is hashed or looked up.
    fn examine(&self, headers: &HeaderMap) -> Result<KeyDigest, Failed> {
        let failed = |reason, counts, problem| Failed {
            id: None,
            reason,
            counts,
            problem,
        };
        let text = match presented(headers) {
            Presented::Key(text) => text,
            Presented::None => {
                return Err(failed(
                    "no key",
                    false,
                    self.unauthorized(
                        "an API key is required: send it as `Authorization: Bearer <key>` or in \
                         the X-API-Key header",
                    ),
                ));
            }
            Presented::Ambiguous => {
                return Err(failed(
                    "key sent more than once",
                    false,
                    self.unauthorized(
                        "send the API key once, in `Authorization: Bearer <key>` or in X-API-Key",
                    ),
                ));
            }
        };
        match std::str::from_utf8(text) {
            Ok(t) if ApiKey::is_well_formed(t, &self.prefix) => Ok(self.hasher.digest_str(t)),
            _ => Err(failed("malformed key", true, self.refused())),
        }
    }

    /// What the lookup's answer makes of the presented key.
    fn judge(
        &self,
        found: Result<Option<KeyRecord>, KeyStoreError>,
        digest: &KeyDigest,
        ip: Option<IpAddr>,
    ) -> Judged {
        let id = digest.id();
        let record = match found {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(target: crate::security_log::TARGET, error = %e, "API-key store failed");
                let key = hex(id);
                SecurityEvent::auth_unavailable(Some(key.as_str()))
                    .client_ip(ip)
                    .emit_via(&self.events);
                return Judged::Unavailable(
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                        .detail("API keys cannot be checked right now; try again later"),
                );
            }
        };
        // The store found a candidate; the digests are compared here again, in constant time.
        let record = record.filter(|r| bool::from(r.digest().ct_eq(digest)));
        let reason = match &record {
            None => "unknown key",
            Some(r) if r.is_revoked() => "revoked key",
            Some(r) if !r.is_usable_at(SystemTime::now()) => "expired key",
            Some(r) => {
                return Judged::Accepted(Authenticated {
                    key_id: id,
                    label: r.label_arc(),
                });
            }
        };
        Judged::Failed(Failed {
            id: Some(id),
            reason,
            counts: true,
            problem: self.refused(),
        })
    }

    fn log_success(&self, ip: Option<IpAddr>, authenticated: &Authenticated) {
        // On the stack: a success must not allocate for its log line.
        let key = hex(authenticated.key_id);
        SecurityEvent::auth_attempt(true, Some(key.as_str()))
            .client_ip(ip)
            .emit_via(&self.events);
    }

    /// Logs a failure with what counting it did (`None`: not counted); its refusal.
    fn refuse(&self, ip: Option<IpAddr>, failed: Failed, outcome: Option<Failure>) -> Problem {
        let key = failed.id.map(hex);
        let key = key.as_ref().map(Hex8::as_str);
        let event = match outcome {
            Some(Failure::Locked(wait)) => SecurityEvent::auth_lockout(retry_after_secs(wait), key),
            Some(Failure::Counted { remaining }) => {
                SecurityEvent::auth_attempt(false, key).attempts_left(remaining)
            }
            Some(Failure::NotCounted) | None => SecurityEvent::auth_attempt(false, key),
        };
        event
            .reason(failed.reason)
            .client_ip(ip)
            .emit_via(&self.events);
        failed.problem
    }

    /// A failure the lockout's store could not count (it fails closed): logged as a
    /// failure, answered as the store being unavailable.
    fn uncounted(&self, ip: IpAddr, failed: Failed, error: &StoreError) -> Problem {
        self.refuse(Some(ip), failed, None);
        self.store_unavailable(error)
    }

    /// The refusal while the lockout's store cannot decide (and fails closed): 503, retry
    /// after the time the store gives.
    fn store_unavailable(&self, error: &StoreError) -> Problem {
        let secs = retry_after_secs(error.retry_after().unwrap_or(Duration::from_secs(1)));
        Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .detail(
                "API-key attempts cannot be counted right now; retry after the time in \
                 Retry-After",
            )
            .header(RETRY_AFTER, HeaderValue::from(secs))
    }

    /// The first step after a failed attempt: count it when it counts and there is a
    /// lockout and a client, else refuse it at once.
    fn count(&self, ip: Option<IpAddr>, failed: Failed) -> Result<Step<K, St>, Problem> {
        match (&self.lockout, ip) {
            (Some(lockout), Some(ip)) if failed.counts => {
                let client = self.client_key(ip);
                let check = [Check::new(FAILURES, &lockout.rules().failures)];
                Ok(Step::Count {
                    check: lockout.store().check_in(client, &check),
                    client,
                    ip,
                    failed: Some(failed),
                })
            }
            _ => Err(self.refuse(ip, failed, None)),
        }
    }

    /// The step after the key's lookup.
    fn looked_up(
        &self,
        found: Result<Option<KeyRecord>, KeyStoreError>,
        digest: &KeyDigest,
        ip: Option<IpAddr>,
        has_failures: bool,
    ) -> Result<Step<K, St>, Result<Authenticated, Problem>> {
        match self.judge(found, digest, ip) {
            Judged::Accepted(authenticated) => match (&self.lockout, ip) {
                // Only a client with failures to forget pays for forgetting them.
                (Some(lockout), Some(ip)) if has_failures => Ok(Step::Forget {
                    reset: lockout.store().reset_in(self.client_key(ip), FAILURES),
                    ip,
                    authenticated: Some(authenticated),
                }),
                _ => {
                    self.log_success(ip, &authenticated);
                    Err(Ok(authenticated))
                }
            },
            Judged::Failed(failed) => self.count(ip, failed).map_err(Err),
            Judged::Unavailable(problem) => Err(Err(problem)),
        }
    }
}

pin_project! {
    /// One step of an attempt: each waits for one answer of the lockout's store or of the
    /// key store. On a `MemoryStore` and a `MemoryKeyStore` every answer is ready at once,
    /// and the whole attempt is decided in the response future's first poll.
    #[project = StepProj]
    enum Step<K: KeyStore, St: LimiterStore> {
        /// The look at the client's lock and failures.
        Standing { peek: St::PeekFuture, ip: IpAddr, examined: Option<Result<KeyDigest, Failed>> },
        /// The key's lookup.
        Lookup { #[pin] lookup: K::Lookup, digest: KeyDigest, ip: Option<IpAddr>, has_failures: bool },
        /// Forgetting the failures of a client whose key was accepted.
        Forget { reset: St::ResetFuture, ip: IpAddr, authenticated: Option<Authenticated> },
        /// Counting a failure.
        Count { check: St::CheckFuture, client: Key, ip: IpAddr, failed: Option<Failed> },
        /// Taking the lock, after the last failure allowed.
        Lock { check: St::CheckFuture, client: Key, ip: IpAddr, failed: Option<Failed> },
        /// Forgetting the failures once locked.
        Unlock { reset: St::ResetFuture, ip: IpAddr, failed: Option<Failed>, outcome: Failure },
    }
}

impl<K: KeyStore, St: LimiterStore> Step<K, St> {
    /// Runs the steps as far as the answers allow: the authenticated key, or the refusal.
    fn advance(
        mut self: Pin<&mut Self>,
        shared: &Shared<K, St>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Authenticated, Problem>> {
        loop {
            let next = match self.as_mut().project() {
                StepProj::Standing { peek, ip, examined } => {
                    let standing = match ready!(Pin::new(peek).poll(cx)) {
                        Ok(peeked) => match shared.lockout.as_ref() {
                            Some(l) => l.rules().standing(&peeked),
                            None => return Poll::Pending,
                        },
                        Err(error) => {
                            let key = examined
                                .as_ref()
                                .and_then(|e| e.as_ref().ok())
                                .map(|d| hex(d.id()));
                            SecurityEvent::auth_unavailable(key.as_ref().map(Hex8::as_str))
                                .reason("lockout store unavailable")
                                .client_ip(*ip)
                                .emit_via(&shared.events);
                            return Poll::Ready(Err(shared.store_unavailable(&error)));
                        }
                    };
                    if let Some(wait) = standing.locked_for {
                        return Poll::Ready(Err(shared.locked_out(*ip, wait)));
                    }
                    match examined.take() {
                        Some(Ok(digest)) => Step::Lookup {
                            lookup: shared.keys.lookup(&digest),
                            digest,
                            ip: Some(*ip),
                            has_failures: standing.has_failures,
                        },
                        Some(Err(failed)) => match shared.count(Some(*ip), failed) {
                            Ok(step) => step,
                            Err(problem) => return Poll::Ready(Err(problem)),
                        },
                        None => return Poll::Pending,
                    }
                }
                StepProj::Lookup {
                    lookup,
                    digest,
                    ip,
                    has_failures,
                } => {
                    let found = ready!(lookup.poll(cx));
                    match shared.looked_up(found, digest, *ip, *has_failures) {
                        Ok(step) => step,
                        Err(decided) => return Poll::Ready(decided),
                    }
                }
                StepProj::Forget {
                    reset,
                    ip,
                    authenticated,
                } => {
                    // Failures left counted are the strict side: the key is still good.
                    let _ = ready!(Pin::new(reset).poll(cx));
                    return match authenticated.take() {
                        Some(authenticated) => {
                            shared.log_success(Some(*ip), &authenticated);
                            Poll::Ready(Ok(authenticated))
                        }
                        None => Poll::Pending,
                    };
                }
                StepProj::Count {
                    check,
                    client,
                    ip,
                    failed,
                } => {
                    let answer = ready!(Pin::new(check).poll(cx));
                    let (Some(failed), Some(l)) = (failed.take(), shared.lockout.as_ref()) else {
                        return Poll::Pending;
                    };
                    match answer {
                        Err(error) => {
                            return Poll::Ready(Err(shared.uncounted(*ip, failed, &error)));
                        }
                        Ok(verdict) => match l.rules().counted(verdict) {
                            Some(outcome) => {
                                return Poll::Ready(Err(shared.refuse(
                                    Some(*ip),
                                    failed,
                                    Some(outcome),
                                )));
                            }
                            None => Step::Lock {
                                check: l
                                    .store()
                                    .check_in(*client, &[Check::new(LOCK, &l.rules().lock)]),
                                client: *client,
                                ip: *ip,
                                failed: Some(failed),
                            },
                        },
                    }
                }
                StepProj::Lock {
                    check,
                    client,
                    ip,
                    failed,
                } => {
                    let answer = ready!(Pin::new(check).poll(cx));
                    let (Some(failed), Some(l)) = (failed.take(), shared.lockout.as_ref()) else {
                        return Poll::Pending;
                    };
                    match answer {
                        Err(error) => {
                            return Poll::Ready(Err(shared.uncounted(*ip, failed, &error)));
                        }
                        Ok(verdict) => Step::Unlock {
                            // The lock is in force whatever happens next; failures left
                            // standing only make the first failure after it lock again.
                            reset: l.store().reset_in(*client, FAILURES),
                            ip: *ip,
                            failed: Some(failed),
                            outcome: l.rules().locked(verdict),
                        },
                    }
                }
                StepProj::Unlock {
                    reset,
                    ip,
                    failed,
                    outcome,
                } => {
                    let _ = ready!(Pin::new(reset).poll(cx));
                    return match failed.take() {
                        Some(failed) => {
                            Poll::Ready(Err(shared.refuse(Some(*ip), failed, Some(*outcome))))
                        }
                        None => Poll::Pending,
                    };
                }
            };
            self.set(next);
        }
    }
}

fn unresolved(e: ClientIpError, events: &Coalescer) -> Problem {
    SecurityEvent::client_unidentified(&e).emit_via(events);
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

impl<S, K, St, ReqB, ResB> Service<Request<ReqB>> for RequireApiKeyService<S, K, St>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    K: KeyStore,
    St: LimiterStore,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB, K, St>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        let ip = match shared.client(shared.client_ip.context(&req).ip()) {
            Ok(ip) => ip,
            Err(problem) => return ResponseFuture::ready(refusal(problem)),
        };
        let examined = shared.examine(req.headers());
        let step = match (&shared.lockout, ip) {
            // A locked-out client is refused whatever key it sends: the lock first.
            (Some(lockout), Some(ip)) => {
                let client = shared.client_key(ip);
                Step::Standing {
                    peek: lockout.store().peek_in(client, &lockout.rules().look()),
                    ip,
                    examined: Some(examined),
                }
            }
            _ => match examined {
                Ok(digest) => Step::Lookup {
                    lookup: shared.keys.lookup(&digest),
                    digest,
                    ip,
                    has_failures: false,
                },
                Err(failed) => {
                    return ResponseFuture::ready(refusal(shared.refuse(ip, failed, None)));
                }
            },
        };
        let shared = shared.clone();
        ResponseFuture {
            kind: Kind::Deciding {
                step,
                shared,
                pending: Some((self.take_inner(), req)),
            },
        }
    }
}

impl<S: Clone, K, St> RequireApiKeyService<S, K, St> {
    /// The service that was polled ready, to go with the request; a clone stays.
    fn take_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

pin_project! {
    /// The response future of [`RequireApiKeyService`]: the lockout's and the key store's
    /// answers, then the inner service's future.
    pub struct ResponseFuture<S, ReqB, ResB, K, St>
    where
        S: Service<Request<ReqB>>,
        K: KeyStore,
        St: LimiterStore,
    {
        #[pin]
        kind: Kind<S, ReqB, ResB, K, St>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqB, ResB, K, St>
    where
        S: Service<Request<ReqB>>,
        K: KeyStore,
        St: LimiterStore,
    {
        Deciding { #[pin] step: Step<K, St>, shared: Arc<Shared<K, St>>, pending: Option<(S, Request<ReqB>)> },
        Inner { #[pin] future: S::Future },
        Ready { response: Option<Response<ShieldBody<ResB>>> },
    }
}

impl<S, ReqB, ResB, K, St> std::fmt::Debug for ResponseFuture<S, ReqB, ResB, K, St>
where
    S: Service<Request<ReqB>>,
    K: KeyStore,
    St: LimiterStore,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The inner call once the request is authenticated.
fn admit<S: Service<Request<ReqB>>, ReqB>(
    mut inner: S,
    mut req: Request<ReqB>,
    authenticated: Authenticated,
) -> S::Future {
    req.extensions_mut().insert(authenticated);
    inner.call(req)
}

impl<S, ReqB, ResB, K, St> ResponseFuture<S, ReqB, ResB, K, St>
where
    S: Service<Request<ReqB>>,
    K: KeyStore,
    St: LimiterStore,
{
    fn ready(response: Response<ShieldBody<ResB>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }
}

impl<S, ReqB, ResB, K, St> Future for ResponseFuture<S, ReqB, ResB, K, St>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    K: KeyStore,
    St: LimiterStore,
{
    type Output = Result<Response<ShieldBody<ResB>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut kind = self.as_mut().project().kind;
            let next = match kind.as_mut().project() {
                KindProj::Deciding {
                    step,
                    shared,
                    pending,
                } => {
                    let decided = ready!(step.advance(shared, cx));
                    let Some((inner, req)) = pending.take() else {
                        return Poll::Pending;
                    };
                    match decided {
                        Ok(authenticated) => Kind::Inner {
                            future: admit(inner, req, authenticated),
                        },
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

/// A key id as its 8 hex digits (its `Display`), on the stack.
fn hex(id: KeyId) -> Hex8 {
    Hex8::new(u32::from_be_bytes(*id.as_bytes()))
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
