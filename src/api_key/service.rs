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
#[cfg(feature = "redis")]
use super::layer::OnRedis;
use super::layer::Shared;
use super::lockout::Failure;
#[cfg(feature = "redis")]
use super::lockout::Standing;
use super::store::{KeyRecord, KeyStore, KeyStoreError};
use crate::client_ip::ClientIpError;
#[cfg(feature = "redis")]
use crate::limiter::StoreError;
#[cfg(feature = "redis")]
use crate::limiter::StoreFailurePolicy;
use crate::limiter::{Clock, Key};
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{Coalescer, EventLogged, Hex8, SecurityEvent};

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
            None => SecurityEvent::auth_attempt(false, key),
        };
        event
            .reason(failed.reason)
            .client_ip(ip)
            .emit_via(&self.events);
        failed.problem
    }

    /// A failure counted in the in-memory lockout; its refusal.
    fn fail_locally(&self, ip: Option<IpAddr>, failed: Failed) -> Problem {
        let outcome = match (&self.lockout, ip) {
            (Some(lockout), Some(ip)) if failed.counts => {
                Some(lockout.record_failure(self.client_key(ip)))
            }
            _ => None,
        };
        self.refuse(ip, failed, outcome)
    }

    /// After the lookup, on the in-memory lockout: the extension to insert, or the refusal.
    fn finish(
        &self,
        found: Result<Option<KeyRecord>, KeyStoreError>,
        digest: &KeyDigest,
        ip: Option<IpAddr>,
    ) -> Result<Authenticated, Problem> {
        match self.judge(found, digest, ip) {
            Judged::Accepted(authenticated) => {
                if let (Some(lockout), Some(ip)) = (&self.lockout, ip) {
                    lockout.record_success(self.client_key(ip));
                }
                self.log_success(ip, &authenticated);
                Ok(authenticated)
            }
            Judged::Failed(failed) => Err(self.fail_locally(ip, failed)),
            Judged::Unavailable(problem) => Err(problem),
        }
    }
}

/// The lockout on Redis: every step of an attempt asks Redis, and falls back on the layer's
/// failure policy when Redis cannot answer.
#[cfg(feature = "redis")]
impl<K: KeyStore, C: Clock> Shared<K, C> {
    /// The whole decision on an attempt of the client at `ip`, whose key `examined` gave.
    async fn decide_shared(
        &self,
        redis: &OnRedis,
        ip: IpAddr,
        examined: Result<KeyDigest, Failed>,
    ) -> Result<Authenticated, Problem> {
        let client = self.client_key(ip);
        // One round trip, even for a valid key: a locked-out client is refused whatever key it
        // sends, as on the in-memory store.
        let standing = match redis.lockout.standing(client).await {
            Ok(standing) => {
                redis.backend.answered();
                standing
            }
            Err(error) => match self.degrade(redis, &error) {
                StoreFailurePolicy::FailClosed => {
                    let key = examined.as_ref().ok().map(|d| hex(d.id()));
                    SecurityEvent::auth_unavailable(key.as_ref().map(Hex8::as_str))
                        .reason("lockout store unavailable")
                        .client_ip(ip)
                        .emit_via(&self.events);
                    return Err(self.store_unavailable(redis));
                }
                StoreFailurePolicy::FailOpen => Standing {
                    locked_for: None,
                    has_failures: false,
                },
                StoreFailurePolicy::Local => Standing {
                    locked_for: self.lockout.as_ref().and_then(|l| l.locked_for(client)),
                    has_failures: false,
                },
            },
        };
        if let Some(wait) = standing.locked_for {
            return Err(self.locked_out(ip, wait));
        }
        let digest = match examined {
            Ok(digest) => digest,
            Err(failed) => return Err(self.fail_shared(redis, ip, failed).await),
        };
        match self.judge(self.keys.lookup(&digest).await, &digest, Some(ip)) {
            Judged::Accepted(authenticated) => {
                // Only a client with failures to forget pays a second round trip.
                if standing.has_failures {
                    if let Err(error) = redis.lockout.record_success(client).await {
                        // Failures left counted are the strict side: the key is still good.
                        let _ = self.degrade(redis, &error);
                    }
                }
                if redis.backend.on_failure == StoreFailurePolicy::Local {
                    if let Some(local) = &self.lockout {
                        local.record_success(client);
                    }
                }
                self.log_success(Some(ip), &authenticated);
                Ok(authenticated)
            }
            Judged::Failed(failed) => Err(self.fail_shared(redis, ip, failed).await),
            Judged::Unavailable(problem) => Err(problem),
        }
    }

    /// A failure counted on Redis, or by the failure policy; its refusal.
    async fn fail_shared(&self, redis: &OnRedis, ip: IpAddr, failed: Failed) -> Problem {
        if !failed.counts {
            return self.refuse(Some(ip), failed, None);
        }
        let client = self.client_key(ip);
        match redis.lockout.record_failure(client).await {
            Ok(outcome) => {
                redis.backend.answered();
                self.refuse(Some(ip), failed, Some(outcome))
            }
            Err(error) => match self.degrade(redis, &error) {
                StoreFailurePolicy::FailClosed => {
                    self.refuse(Some(ip), failed, None);
                    self.store_unavailable(redis)
                }
                StoreFailurePolicy::FailOpen => self.refuse(Some(ip), failed, None),
                StoreFailurePolicy::Local => self.fail_locally(Some(ip), failed),
            },
        }
    }

    /// Counts a step Redis could not answer, logs the first of an episode; the policy to
    /// follow.
    fn degrade(&self, redis: &OnRedis, error: &StoreError) -> StoreFailurePolicy {
        if redis.backend.degraded() {
            SecurityEvent::rate_limit_store_degraded(
                redis.backend.on_failure.name(),
                format!("API-key lockout: {error}"),
            )
            .emit_via(&self.events);
        }
        redis.backend.on_failure
    }

    /// The fail-closed answer while Redis cannot answer: 503, retry after the breaker's
    /// cool-down.
    fn store_unavailable(&self, redis: &OnRedis) -> Problem {
        let secs = retry_after_secs(redis.backend.store.cool_down());
        Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .detail(
                "API-key attempts cannot be counted right now; retry after the time in \
                 Retry-After",
            )
            .header(RETRY_AFTER, HeaderValue::from(secs))
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
        let shared = &self.shared;
        let ip = match shared.client(shared.client_ip.context(&req).ip()) {
            Ok(ip) => ip,
            Err(problem) => return ResponseFuture::ready(refusal(problem)),
        };
        #[cfg(feature = "redis")]
        if let (Some(redis), Some(ip)) = (&shared.redis, ip) {
            let examined = shared.examine(req.headers());
            let (redis, shared) = (redis.clone(), shared.clone());
            let decision: Decided =
                Box::pin(async move { shared.decide_shared(&redis, ip, examined).await });
            return ResponseFuture {
                kind: Kind::Shared {
                    decision,
                    pending: Some((self.take_inner(), req)),
                },
            };
        }
        if let (Some(lockout), Some(ip)) = (&shared.lockout, ip) {
            if let Some(wait) = lockout.locked_for(shared.client_key(ip)) {
                return ResponseFuture::ready(refusal(shared.locked_out(ip, wait)));
            }
        }
        let digest = match shared.examine(req.headers()) {
            Ok(digest) => digest,
            Err(failed) => return ResponseFuture::ready(refusal(shared.fail_locally(ip, failed))),
        };
        let lookup = shared.keys.lookup(&digest);
        let shared = shared.clone();
        ResponseFuture {
            kind: Kind::Lookup {
                lookup,
                pending: Some(Pending {
                    inner: self.take_inner(),
                    req,
                    shared,
                    digest,
                    ip,
                }),
            },
        }
    }
}

impl<S: Clone, K, C: Clock> RequireApiKeyService<S, K, C> {
    /// The service that was polled ready, to go with the request; a clone stays.
    fn take_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
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
        Shared { decision: Decided, pending: Option<(S, Request<ReqB>)> },
        Inner { #[pin] future: F },
        Ready { response: Option<Response<ShieldBody<ResB>>> },
    }
}

/// The decision on Redis, lookup included, boxed: its type depends on the Redis client.
#[cfg(feature = "redis")]
type Decided = Pin<Box<dyn Future<Output = Result<Authenticated, Problem>> + Send>>;
/// Without Redis there is no such state: an uninhabited type keeps it out of the future.
#[cfg(not(feature = "redis"))]
type Decided = std::convert::Infallible;

#[cfg(feature = "redis")]
fn poll_decided(
    decision: &mut Decided,
    cx: &mut Context<'_>,
) -> Poll<Result<Authenticated, Problem>> {
    decision.as_mut().poll(cx)
}

#[cfg(not(feature = "redis"))]
fn poll_decided(
    decision: &mut Decided,
    _: &mut Context<'_>,
) -> Poll<Result<Authenticated, Problem>> {
    match *decision {}
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
                        inner,
                        req,
                        shared,
                        digest,
                        ip,
                    }) = pending.take()
                    else {
                        return Poll::Pending;
                    };
                    match shared.finish(found, &digest, ip) {
                        Ok(authenticated) => Kind::Inner {
                            future: admit(inner, req, authenticated),
                        },
                        Err(problem) => return Poll::Ready(Ok(refusal(problem))),
                    }
                }
                KindProj::Shared { decision, pending } => {
                    let decided = ready!(poll_decided(decision, cx));
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
