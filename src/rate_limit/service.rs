use smallvec::SmallVec;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::headers;
use super::layer::{Shared, Target};
use super::policy::{RequestHead, Scope};
use crate::client_ip::ClientIpError;
use crate::identifier::{single_identifier, valid_identifier};
use crate::limiter::{Check, Decision, Key, LimiterStore, StoreError, Verdict};
use crate::problem::{Problem, ShieldBody};
use crate::security_log::{EventLogged, Hex8, IpText, SecurityEvent, listened, subject_hash};

pub(crate) const QUOTA_EXCEEDED: &str =
    "https://iana.org/assignments/http-problem-types#quota-exceeded";
pub(crate) const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const INLINE_POLICIES: usize = 4;

/// What a custom refusal response (see
/// [`RateLimitBuilder::on_refusal`](super::RateLimitBuilder::on_refusal)) is built from.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// The name of the policy that refused.
    pub policy: &'a str,
    /// Its scope (`ip`, `session`, `device`, `global`, `custom`).
    pub scope: &'static str,
    /// The client address.
    pub client_ip: IpAddr,
    /// The decision: limit, remaining, retry after.
    pub decision: Decision,
}

/// Builds the response of a refusal, in place of the default problem+json 429.
pub type RefusalHook = Arc<dyn Fn(&Refusal<'_>) -> Response<bytes::Bytes> + Send + Sync>;

/// The [`RateLimitLayer`](super::RateLimitLayer)'s service, over the store `St`.
///
/// It asks the store when it is called. An answer that is ready (always, from memory) is
/// acted on at once: the inner service is called then, as by any middleware. An answer that
/// must wait (a Redis round trip) is awaited in the response future, which then takes the
/// request and the inner service that was polled ready, leaving a clone in its place: hence
/// `S: Clone`. `S` need not be `Send`:
///
/// ```
/// use std::convert::Infallible;
/// use std::net::SocketAddr;
/// use std::rc::Rc;
/// use http::{Request, Response, StatusCode};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_shield::limiter::Quota;
/// use tower_shield::rate_limit::{Policy, RateLimit, Scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let this_thread_only = Rc::new("ok");
/// let handler = service_fn(move |_req: Request<String>| {
///     let body = this_thread_only.to_string();
///     async move { Ok::<_, Infallible>(Response::new(body)) }
/// });
/// let layer = RateLimit::builder()
///     .policy(Policy::new("ip", Quota::per_minute(60)?, Scope::ip()))
///     .build()?;
/// let mut req = Request::get("/").body(String::new())?;
/// req.extensions_mut().insert("192.0.2.1:1".parse::<SocketAddr>()?);
/// let res = layer.layer(handler).oneshot(req).await?;
/// assert_eq!(res.status(), StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimitService<S, St> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<St>>,
}

impl<S: Clone, St> Clone for RateLimitService<S, St> {
    fn clone(&self) -> Self {
        RateLimitService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What the limit decided before the inner service is called.
// Lives on the stack for one call; boxing the headers would allocate on every admission.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// Not limited at all (exempt, allow-listed, or no policy applies).
    Pass,
    /// Admitted under a policy: these headers go on the response.
    Limited(RateHeaders),
    /// Refused: this response goes back without calling the inner service.
    Refuse(Problem),
    /// Refused by a policy: a 429 with these headers and this prepared body.
    Exceeded(StatusCode, HeaderMap, bytes::Bytes),
}

/// The policies that apply to a request, with what is known of its client.
pub(crate) struct Matched<'h> {
    ip: IpAddr,
    device: Option<&'h [u8]>,
    /// (target index, key) of every policy that applies; on the stack for the usual few.
    policies: SmallVec<[(usize, Key); INLINE_POLICIES]>,
}

impl Matched<'_> {
    /// Nothing matched yet; the client is filled in before any policy is.
    fn new() -> Self {
        Matched {
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            device: None,
            policies: SmallVec::new(),
        }
    }
}

/// The `RateLimit-Policy` and `RateLimit` values of the binding policy, and the numbers of
/// the legacy headers when they are on.
#[derive(Debug)]
pub(crate) struct RateHeaders {
    policy: HeaderValue,
    limit: HeaderValue,
    legacy: Option<(u32, u32, u64)>,
}

impl RateHeaders {
    fn apply(self, headers: &mut HeaderMap) {
        headers.insert(RATE_LIMIT_POLICY, self.policy);
        headers.insert(RATE_LIMIT, self.limit);
        if let Some((limit, remaining, reset)) = self.legacy {
            for (name, value) in headers::legacy(limit, remaining, reset) {
                headers.insert(name, value);
            }
        }
    }
}

impl<St: LimiterStore> Shared<St> {
    fn rate_headers(&self, target: &Target, decision: &Decision) -> RateHeaders {
        let (remaining, t) = headers::remaining_and_t(decision);
        RateHeaders {
            policy: target.policy_header.clone(),
            // The values that repeat (see `Recent`) are rendered once; a client spending its
            // quota sees a new one each time, where the cache would only add work.
            limit: if remaining == 0 || remaining.saturating_add(1) == decision.limit() {
                target.rate_values.get((remaining, t), || {
                    headers::rate_limit_after(&target.rate_prefix, remaining, t)
                })
            } else {
                headers::rate_limit_after(&target.rate_prefix, remaining, t)
            },
            legacy: self
                .legacy_headers
                .then_some((decision.limit(), remaining, t)),
        }
    }

    /// Everything before the store is asked: exemptions, the client, block and allow lists,
    /// the policies that apply with their keys, and the device-rotation cap (always on the
    /// in-memory store).
    ///
    /// Fills `matched` (made by the caller, so that it is written in place rather than moved
    /// out), or answers already.
    fn matched<'h>(&self, head: &RequestHead<'h>, matched: &mut Matched<'h>) -> Option<Outcome> {
        let (method, path) = (head.method(), head.uri().path());
        if self.exempt.iter().any(|r| r.matches(method, path)) {
            return Some(Outcome::Pass);
        }
        let client = (self.client_ip).context_from(head.uri(), head.headers(), head.extensions());
        let ip = match client.ip() {
            Ok(ip) => ip,
            Err(e) => return Some(self.unresolved(e)),
        };
        if self.block.iter().any(|net| net.contains(&ip)) {
            SecurityEvent::blocked_address(ip).emit_via(&self.events);
            return Some(Outcome::Refuse(
                Problem::new(StatusCode::FORBIDDEN)
                    .detail("requests from this address are blocked"),
            ));
        }
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Some(Outcome::Pass);
        }
        let ip_key = self.grouping.key(ip);
        matched.ip = ip;
        for (index, target) in self.targets.iter().enumerate() {
            if !target.applies(method, path) {
                continue;
            }
            let key = match &target.scope {
                Scope::Ip => ip_key,
                Scope::Global => Key::GLOBAL,
                Scope::Session(name) => match single_identifier(head.headers(), name) {
                    Some(id) => {
                        matched.device.get_or_insert(id);
                        self.keys.hash(id)
                    }
                    None => ip_key,
                },
                Scope::Device(name) => match device_identifier(head.headers(), name) {
                    Ok(id) => {
                        matched.device.get_or_insert(id);
                        self.keys.hash(id)
                    }
                    Err((rule, problem)) => {
                        SecurityEvent::input_validation_fail(name.as_str(), rule)
                            .client_ip(ip)
                            .emit_via(&self.events);
                        return Some(Outcome::Refuse(problem));
                    }
                },
                Scope::Custom(key) => match key(head) {
                    Some(k) => k,
                    None => continue,
                },
            };
            matched
                .policies
                .push((index, key.in_namespace(&target.namespace)));
        }
        if matched.policies.is_empty() {
            return Some(Outcome::Pass);
        }
        if let (Some((rotation, rotation_store)), Some(id)) =
            (&self.device_rotation, matched.device)
        {
            if let Err(wait) = rotation.admit(rotation_store, ip_key, id) {
                SecurityEvent::device_rotation_refused(ip, self.dry_run).emit_via(&self.events);
                if !self.dry_run {
                    record(
                        &self.monitor,
                        "device-rotation",
                        ip_key,
                        ip,
                        &Scope::Ip,
                        None,
                    );
                    return Some(Outcome::Refuse(
                        Problem::new(StatusCode::TOO_MANY_REQUESTS)
                            .type_uri(QUOTA_EXCEEDED)
                            .detail(format!(
                                "too many new device ids from this client: at most {} per registration period",
                                rotation.max()
                            ))
                            .header(RETRY_AFTER, headers::seconds(headers::retry_after_secs(wait))),
                    ));
                }
            }
        }
        None
    }

    /// Builds the answer to `decision` of the binding policy (its index among the targets,
    /// and the client's key under it): its headers on an admission, its 429 (or the refusal
    /// hook's response) on a refusal. Shared by every store.
    fn finish(
        &self,
        decision: Decision,
        (index, key): (usize, Key),
        ip: IpAddr,
        device: Option<&[u8]>,
    ) -> Outcome {
        let target = &self.targets[index];
        if decision.is_allowed() {
            return Outcome::Limited(self.rate_headers(target, &decision));
        }
        // Built only for a listener: a flood of refusals should not pay for an unread event.
        if listened() {
            SecurityEvent::rate_limit_exceeded(
                target.name.as_str(),
                target.scope.kind(),
                Some(ip),
                device.map(|id| subject_hash(&self.keys, id)),
                self.dry_run,
            )
            .emit_via(&self.events);
        }
        if self.dry_run {
            return Outcome::Limited(self.rate_headers(target, &decision));
        }
        let device = device.map(|id| subject_hash(&self.keys, id));
        record(&self.monitor, &target.name, key, ip, &target.scope, device);
        let (remaining, t) = headers::remaining_and_t(&decision);
        let retry_after = decision.retry_after().map(headers::retry_after_secs);
        if let Some(hook) = &self.on_refusal {
            let rate = self.rate_headers(target, &decision);
            let refusal = Refusal {
                policy: &target.name,
                scope: target.scope.kind(),
                client_ip: ip,
                decision,
            };
            let (parts, body) = hook(&refusal).into_parts();
            let mut response_headers = parts.headers;
            // A custom response still tells the client when to come back.
            if let Some(secs) = retry_after {
                response_headers
                    .entry(RETRY_AFTER)
                    .or_insert_with(|| headers::seconds(secs));
            }
            response_headers
                .entry(RATE_LIMIT_POLICY)
                .or_insert(rate.policy);
            response_headers.entry(RATE_LIMIT).or_insert(rate.limit);
            return Outcome::Exceeded(parts.status, response_headers, body);
        }
        // A flooding client is refused with the same headers until the next second: they are
        // made once and cloned.
        let response_headers = target.refusal_headers.get((remaining, t, retry_after), || {
            self.refusal_headers(target, decision.limit(), remaining, t, retry_after)
        });
        Outcome::Exceeded(
            StatusCode::TOO_MANY_REQUESTS,
            response_headers,
            target.refusal_body.clone(),
        )
    }

    /// The headers of a 429 of `target`'s: its problem document's type, never to be stored by
    /// a cache (one client's refusal is not another's answer), and the rate-limit fields.
    #[cold]
    fn refusal_headers(
        &self,
        target: &Target,
        limit: u32,
        remaining: u32,
        t: u64,
        retry_after: Option<u64>,
    ) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(8);
        crate::problem::set_problem_headers(&mut map);
        map.insert(RATE_LIMIT_POLICY, target.policy_header.clone());
        map.insert(
            RATE_LIMIT,
            headers::rate_limit_after(&target.rate_prefix, remaining, t),
        );
        if let Some(secs) = retry_after {
            map.insert(RETRY_AFTER, headers::seconds(secs));
        }
        if self.legacy_headers {
            for (name, value) in headers::legacy(limit, remaining, t) {
                map.insert(name, value);
            }
        }
        map
    }

    /// Asks the store about every matched policy at once, all-or-nothing, under the client's
    /// tag when every policy keys by the same client identity.
    fn ask(&self, matched: &[(usize, Key)]) -> St::CheckFuture {
        // A key's state lives under the tag it is checked with, so a key must always get the
        // same tag. When every policy keys requests by one client identity, that identity is
        // the tag and clients spread over a Cluster's slots. Otherwise (an address and a
        // device limit on one request, a global limit) keys of different clients meet in one
        // request, and one fixed tag keeps every request's keys in one slot.
        let tag = match matched.first() {
            Some(&(index, key)) if self.tag_by_client => {
                key.out_of_namespace(&self.targets[index].namespace)
            }
            _ => Key::GLOBAL,
        };
        let check = |&(index, key): &(usize, Key)| Check::new(key, &self.targets[index].quota);
        match matched {
            [one] => self.store.check_in(tag, &[check(one)]),
            _ if matched.len() <= INLINE_POLICIES => {
                let first = &self.targets[matched[0].0];
                let mut checks = [Check::new(Key::GLOBAL, &first.quota); INLINE_POLICIES];
                for (c, m) in checks.iter_mut().zip(matched) {
                    *c = check(m);
                }
                self.store.check_in(tag, &checks[..matched.len()])
            }
            _ => self
                .store
                .check_in(tag, &matched.iter().map(check).collect::<Vec<_>>()),
        }
    }

    /// What the store's answer means for the request.
    fn answer(
        &self,
        answer: Result<Verdict, StoreError>,
        matched: &[(usize, Key)],
        ip: IpAddr,
        device: Option<&[u8]>,
    ) -> Outcome {
        match answer {
            // A store that fails open admits against no limit.
            Ok(verdict) if verdict.is_unlimited() => Outcome::Pass,
            Ok(verdict) => match matched.get(verdict.index).or(matched.first()) {
                Some(&binding) => self.finish(verdict.binding, binding, ip, device),
                None => Outcome::Pass,
            },
            Err(error) => {
                // The store has logged the episode; a refusal for want of it says when to
                // come back.
                let wait = error.retry_after().unwrap_or(Duration::from_secs(1));
                let secs = headers::retry_after_secs(wait);
                Outcome::Refuse(
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                        .detail(
                            "rate limits cannot be checked right now; retry after the time in \
                             Retry-After",
                        )
                        .header(RETRY_AFTER, headers::seconds(secs)),
                )
            }
        }
    }

    fn unresolved(&self, e: ClientIpError) -> Outcome {
        match e {
            ClientIpError::MissingPeer => {
                SecurityEvent::client_unidentified(&e).emit_via(&self.events);
                Outcome::Refuse(Problem::new(StatusCode::INTERNAL_SERVER_ERROR).detail(
                    "the server cannot identify clients; its operator has been told how to fix it",
                ))
            }
            other => {
                SecurityEvent::client_unidentified(&other).emit_via(&self.events);
                Outcome::Refuse(Problem::new(StatusCode::BAD_REQUEST).detail(other.to_string()))
            }
        }
    }
}

/// A refusal by a policy: normally its 429 problem document, prepared when the layer was built.
fn exceeded<B>(
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response<ShieldBody<B>> {
    let mut response = Response::new(ShieldBody::full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Counts a refusal of the client with `key` under `policy` in the monitor, which shows it
/// as its address, or a short hash of its device id (never the raw id), written on the stack
/// when the monitor first counts the client.
// Inlined: an address passed by value is copied whole after being written in parts, a
// stall that cost a refusal more than the rest of this function.
#[inline]
fn record(
    monitor: &super::RateLimitMonitor,
    policy: &str,
    key: Key,
    ip: IpAddr,
    scope: &Scope,
    device: Option<u32>,
) {
    monitor.record_refusal_of(policy, key, || match (scope, device) {
        (Scope::Session(_) | Scope::Device(_), Some(hash)) => {
            let mut label = *b"device:00000000";
            label[7..].copy_from_slice(Hex8::new(hash).as_str().as_bytes());
            Label::Device(label)
        }
        (Scope::Global, _) => Label::Global,
        _ => Label::Ip(IpText::new(ip)),
    });
}

/// What the monitor shows for a client.
enum Label {
    Device([u8; 15]),
    Global,
    Ip(IpText),
}

impl AsRef<[u8]> for Label {
    fn as_ref(&self) -> &[u8] {
        match self {
            Label::Device(label) => label,
            Label::Global => b"global",
            Label::Ip(text) => text.as_bytes(),
        }
    }
}

/// The one valid device id, or the rule it breaks and the 400 that says so.
fn device_identifier<'p>(
    headers: &'p HeaderMap,
    name: &HeaderName,
) -> Result<&'p [u8], (&'static str, Problem)> {
    let bad =
        |rule, detail: String| Err((rule, Problem::new(StatusCode::BAD_REQUEST).detail(detail)));
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => bad(
            "device_id.required",
            format!("device id required: send the {name} header"),
        ),
        (Some(v), None) if valid_identifier(v.as_bytes()) => Ok(v.as_bytes()),
        (Some(_), None) => bad(
            "device_id.pattern",
            format!("invalid device id: {name} must be 1 to 64 of A-Z a-z 0-9 _ -"),
        ),
        (Some(_), Some(_)) => bad(
            "device_id.single",
            format!("invalid device id: send exactly one {name} header"),
        ),
    }
}

/// The headers an admission adds (none when unlimited), or the response of a refusal.
// Moved once, on the stack; boxing the response would allocate on every refusal.
#[allow(clippy::result_large_err)]
fn settle<B>(outcome: Outcome) -> Result<Option<RateHeaders>, Response<ShieldBody<B>>> {
    match outcome {
        Outcome::Pass => Ok(None),
        Outcome::Limited(headers) => Ok(Some(headers)),
        Outcome::Refuse(problem) => {
            let mut response = problem.into_response();
            // this layer has logged the refusal already
            response.extensions_mut().insert(EventLogged);
            Err(response)
        }
        Outcome::Exceeded(status, headers, body) => Err(exceeded(status, headers, body)),
    }
}

impl<S, St, ReqB, ResB> Service<Request<ReqB>> for RateLimitService<S, St>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    St: LimiterStore,
{
    type Response = Response<ShieldBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, St, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let shared = &*self.shared;
        let head = RequestHead::of(&req);
        let mut matched = Matched::new();
        let outcome = match shared.matched(&head, &mut matched) {
            Some(outcome) => outcome,
            None => {
                let list = &matched.policies[..];
                let mut answer = shared.ask(list);
                // An in-memory store has answered already; only a store that must wait makes
                // the request wait in the response future.
                match Pin::new(&mut answer).poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(answer) => shared.answer(answer, list, matched.ip, matched.device),
                    Poll::Pending => {
                        let (matched, ip, device) =
                            (list.to_vec(), matched.ip, matched.device.map(Box::from));
                        // The service that was polled ready goes with the request; its clone
                        // stays for the next call.
                        let clone = self.inner.clone();
                        let waiting = Box::new(Waiting {
                            answer,
                            matched,
                            ip,
                            device,
                            shared: self.shared.clone(),
                            inner: Some(std::mem::replace(&mut self.inner, clone)),
                            req: Some(req),
                        });
                        return ResponseFuture {
                            kind: Kind::Waiting { waiting },
                        };
                    }
                }
            }
        };
        match settle(outcome) {
            Ok(headers) => ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                    headers,
                },
            },
            Err(response) => ResponseFuture::ready(response),
        }
    }
}

/// A request waiting for the store's answer, with everything needed to act on it.
struct Waiting<S, St: LimiterStore, ReqB> {
    answer: St::CheckFuture,
    matched: Vec<(usize, Key)>,
    ip: IpAddr,
    device: Option<Box<[u8]>>,
    shared: Arc<Shared<St>>,
    inner: Option<S>,
    req: Option<Request<ReqB>>,
}

pin_project! {
    /// The response future of [`RateLimitService`].
    pub struct ResponseFuture<S, St, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        St: LimiterStore,
    {
        #[pin]
        kind: Kind<S, St, ReqB, ResB>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, St, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        St: LimiterStore,
    {
        Inner { #[pin] future: S::Future, headers: Option<RateHeaders> },
        Ready { response: Option<Response<ShieldBody<ResB>>> },
        Waiting { waiting: Box<Waiting<S, St, ReqB>> },
    }
}

impl<S, St, ReqB, ResB> ResponseFuture<S, St, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
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

impl<S, St, ReqB, ResB> std::fmt::Debug for ResponseFuture<S, St, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
    St: LimiterStore,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, St, ReqB, ResB> Future for ResponseFuture<S, St, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    St: LimiterStore,
{
    type Output = Result<Response<ShieldBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                KindProj::Inner { future, headers } => {
                    let response = ready!(future.poll(cx))?;
                    let mut response = response.map(ShieldBody::inner);
                    if let Some(h) = headers.take() {
                        h.apply(response.headers_mut());
                    }
                    return Poll::Ready(Ok(response));
                }
                KindProj::Ready { response } => {
                    return match response.take() {
                        Some(r) => Poll::Ready(Ok(r)),
                        None => Poll::Pending,
                    };
                }
                KindProj::Waiting { waiting } => {
                    let answer = ready!(Pin::new(&mut waiting.answer).poll(cx));
                    let w = &mut **waiting;
                    let outcome = w
                        .shared
                        .answer(answer, &w.matched, w.ip, w.device.as_deref());
                    match (settle(outcome), w.inner.take(), w.req.take()) {
                        (Ok(headers), Some(mut inner), Some(req)) => kind.set(Kind::Inner {
                            future: inner.call(req),
                            headers,
                        }),
                        (Err(response), _, _) => {
                            kind.set(Kind::Ready { response: None });
                            return Poll::Ready(Ok(response));
                        }
                        // polled again after it completed
                        _ => return Poll::Pending,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::{Scope, record};
    use crate::limiter::Key;
    use crate::rate_limit::RateLimitMonitor;

    proptest! {
        #[test]
        fn an_ipv4_label_is_the_address_as_displayed(bits: u32) {
            let ip = IpAddr::V4(Ipv4Addr::from(bits));
            let monitor = RateLimitMonitor::new(4).unwrap();
            record(&monitor, "ip", Key::from_ip(ip), ip, &Scope::Ip, None);
            prop_assert_eq!(&monitor.top(1)[0].key, &ip.to_string());
        }
    }
}
