//! A store written outside the crate, as a user would plug in another database: it implements
//! `LimiterStore` around a `MemoryStore`, counts its calls and answers only on the second poll,
//! as a store behind a network does. The layers must wait for it and decide as on memory.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};
use tower_shield::limiter::{
    Check, Decisions, Key, KeyHasher, LimiterStore, ManualClock, MemoryStore, Quota, StoreError,
    Verdict,
};
use tower_shield::rate_limit::{Policy, RateLimit, Scope};

/// An answer known at once but delivered on the second poll, after waking its task.
struct Later<T> {
    value: Option<Result<T, StoreError>>,
    yielded: bool,
}

impl<T> Later<T> {
    fn new(value: Result<T, StoreError>) -> Self {
        Later {
            value: Some(value),
            yielded: false,
        }
    }
}

impl<T: Unpin> Future for Later<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.value.take() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}

/// The user's store: another database, here a `MemoryStore` behind a slow answer.
struct Remote {
    state: MemoryStore<ManualClock>,
    calls: AtomicU64,
}

impl Remote {
    fn new(clock: &ManualClock) -> Arc<Remote> {
        Arc::new(Remote {
            state: MemoryStore::builder().clock(clock.clone()).build().unwrap(),
            calls: AtomicU64::new(0),
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl LimiterStore for Remote {
    type CheckFuture = Later<Verdict>;
    type PeekFuture = Later<Decisions>;
    type ResetFuture = Later<bool>;

    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Later::new(self.state.check_in(tag, checks).into_inner())
    }

    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Later::new(self.state.peek_in(tag, checks).into_inner())
    }

    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Later::new(self.state.reset_in(tag, key).into_inner())
    }

    fn key_hasher(&self) -> &KeyHasher {
        self.state.key_hasher()
    }
}

fn from(peer: &str) -> Request<String> {
    let mut req = Request::get("/x").body(String::new()).unwrap();
    req.extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    req
}

#[tokio::test]
async fn the_rate_limit_waits_for_a_user_store_and_decides_as_on_memory() {
    let clock = ManualClock::new();
    let store = Remote::new(&clock);
    let layer = RateLimit::builder()
        .store(store.clone())
        .policy(Policy::new(
            "ip",
            Quota::per(2, Duration::from_secs(60)).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_string()))
    }));

    for left in [1, 0] {
        let res = app.clone().oneshot(from("192.0.2.1:1")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit"], format!("\"ip\";r={left};t=30"));
    }
    let refused = app.clone().oneshot(from("192.0.2.1:1")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    // another client has its own budget
    let other = app.clone().oneshot(from("192.0.2.2:1")).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(store.calls(), 4, "one store call per request");

    clock.advance(Duration::from_secs(30));
    let again = app.clone().oneshot(from("192.0.2.1:1")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

/// A store that cannot decide: the layer refuses with 503 and the store's `Retry-After`.
struct Down;

impl LimiterStore for Down {
    type CheckFuture = Later<Verdict>;
    type PeekFuture = Later<Decisions>;
    type ResetFuture = Later<bool>;

    fn check_in(&self, _: Key, _: &[Check<'_>]) -> Self::CheckFuture {
        Later::new(Err(StoreError::Timeout(Duration::from_millis(50))))
    }

    fn peek_in(&self, _: Key, _: &[Check<'_>]) -> Self::PeekFuture {
        Later::new(Err(StoreError::Timeout(Duration::from_millis(50))))
    }

    fn reset_in(&self, _: Key, _: Key) -> Self::ResetFuture {
        Later::new(Err(StoreError::Timeout(Duration::from_millis(50))))
    }

    fn key_hasher(&self) -> &KeyHasher {
        static KEYS: std::sync::OnceLock<KeyHasher> = std::sync::OnceLock::new();
        KEYS.get_or_init(KeyHasher::random)
    }
}

#[tokio::test]
async fn a_store_that_cannot_decide_refuses_with_503() {
    let layer = RateLimit::builder()
        .store(Arc::new(Down))
        .policy(Policy::new(
            "ip",
            Quota::per_minute(60).unwrap(),
            Scope::ip(),
        ))
        .build()
        .unwrap();
    let app = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_string()))
    }));
    let res = app.oneshot(from("192.0.2.1:1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
}

#[tokio::test]
async fn the_api_key_lockout_counts_and_locks_in_a_user_store() {
    use tower_shield::api_key::{ApiKey, KeyPrefix, MemoryKeyStore, RequireApiKey};

    let prefix = KeyPrefix::new("ech_").unwrap();
    let good = ApiKey::generate(&prefix).unwrap();
    let clock = ManualClock::new();
    let store = Remote::new(&clock);
    let layer = RequireApiKey::builder(
        prefix.clone(),
        MemoryKeyStore::from_digests([good.sha256()]),
    )
    .limiter_store(store.clone())
    .lockout(2, Duration::from_secs(60))
    .build()
    .unwrap();
    let app = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_string()))
    }));
    let attempt = |key: &str| {
        let mut req = from("192.0.2.7:1");
        req.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        app.clone().oneshot(req)
    };
    let wrong = ApiKey::generate(&prefix).unwrap();

    assert_eq!(
        attempt(good.expose_secret()).await.unwrap().status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        let res = attempt(wrong.expose_secret()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // locked out: even the good key is refused until the window has passed
    let locked = attempt(good.expose_secret()).await.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()["retry-after"], "60");
    assert!(store.calls() >= 6, "every step asked the user's store");

    clock.advance(Duration::from_secs(60));
    assert_eq!(
        attempt(good.expose_secret()).await.unwrap().status(),
        StatusCode::OK
    );
}
