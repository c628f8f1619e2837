//! The API-key lockout on a `RedisStore` against a real `redis-server` on 127.0.0.1:6379 (CI
//! starts one). These tests fail, never skip, when Redis is not there. Each test uses its own
//! key prefix; the failure-policy tests use a Redis that refuses connections (port 1) or one
//! that never answers (a listener of their own).
#![cfg(all(feature = "api-key", feature = "redis"))]

use std::convert::Infallible;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode, header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower::{ServiceBuilder, service_fn};
use tower_shield::api_key::{
    ApiKey, Authenticated, Failure, KeyPrefix, Lockout, MemoryKeyStore, RequireApiKey,
    RequireApiKeyLayer,
};
use tower_shield::config::StoreFailurePolicy;
use tower_shield::limiter::{Key, ManualClock, MemoryStore, RedisStore};
use tower_shield::problem::ShieldBody;

mod common;
use common::unique_prefix as prefix;
use common::{body_json, req, send};

const URL: &str = common::REDIS_URL;
/// Nothing listens on port 1: every connection is refused at once.
const DEAD: &str = "redis://127.0.0.1:1/";
/// The timeout of a store whose Redis is down: short, since every attempt waits for it.
const TIMEOUT: Duration = Duration::from_millis(300);

type Res = Response<ShieldBody<String>>;
type App = tower::util::BoxCloneService<Request<String>, Res, Infallible>;

/// A store on the test Redis, patient enough for a loaded test machine.
fn live(prefix: &str) -> RedisStore {
    RedisStore::builder(URL)
        .key_prefix(prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A store on a Redis that cannot answer.
fn down(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .key_prefix(prefix)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn key() -> ApiKey {
    ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap()
}

/// One "instance": its own layer (and so its own local lockout) on `store`.
fn layer(
    good: &ApiKey,
    store: RedisStore,
    on_failure: StoreFailurePolicy,
    max: u32,
    window: Duration,
) -> RequireApiKeyLayer<Arc<MemoryKeyStore>, RedisStore> {
    RequireApiKey::builder(
        KeyPrefix::new("ech_").unwrap(),
        Arc::new(MemoryKeyStore::from_digests([good.sha256()])),
    )
    .lockout(max, window)
    .limiter_store(Arc::new(store.with_failure_policy(on_failure)))
    .build()
    .unwrap()
}

fn wrap(layer: RequireApiKeyLayer<Arc<MemoryKeyStore>, RedisStore>) -> App {
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<String>| async move {
                let id = req.extensions().get::<Authenticated>().map(|a| a.key_id());
                Ok::<_, Infallible>(Response::new(id.map(|i| i.to_string()).unwrap_or_default()))
            }));
    tower::util::BoxCloneService::new(svc)
}

fn bearer(peer: &str, key: &str) -> Request<String> {
    let authorization = format!("Bearer {key}");
    req(
        Method::GET,
        "/admin/rate-limits",
        peer,
        &[("authorization", &authorization)],
    )
}

async fn status(app: &App, r: Request<String>) -> StatusCode {
    send(app, r).await.status()
}

async fn problem_status(res: Res) -> u64 {
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    body_json(res).await["status"].as_u64().unwrap()
}

#[tokio::test]
async fn a_client_locked_out_through_one_instance_is_locked_out_on_the_other() {
    let good = key();
    let prefix = prefix("shared");
    let window = Duration::from_secs(60);
    // Two instances: separate stores (connections, breakers, denial caches) and layers.
    let (a_store, b_store) = (live(&prefix), live(&prefix));
    let a = wrap(layer(
        &good,
        a_store.clone(),
        StoreFailurePolicy::FailClosed,
        3,
        window,
    ));
    let b = wrap(layer(
        &good,
        b_store.clone(),
        StoreFailurePolicy::FailClosed,
        3,
        window,
    ));
    let peer = "192.0.2.10:1000";

    // three failures, spread over both instances, lock the client out of both
    for app in [&a, &b, &a] {
        assert_eq!(
            status(app, bearer(peer, key().expose_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    for app in [&a, &b] {
        let locked = send(app, bearer(peer, good.expose_secret())).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(locked.headers()[header::RETRY_AFTER], "60");
        assert_eq!(problem_status(locked).await, 429);
    }
    // another client is not locked out, on either
    for app in [&a, &b] {
        assert_eq!(
            status(app, bearer("192.0.2.11:1000", good.expose_secret())).await,
            StatusCode::OK
        );
    }
    assert!(a_store.redis_calls() > 0 && b_store.redis_calls() > 0);
    assert_eq!(a_store.degraded_calls() + b_store.degraded_calls(), 0);

    // The lock is under a name every process computes alike: the client's address and a
    // fixed bucket name, nothing hashed under a per-process secret.
    let client = Key::from_ip("192.0.2.10".parse::<IpAddr>().unwrap());
    let lock = a_store.redis_key(
        client,
        Key::from_u128(u128::from_be_bytes(*b"api-key:lock-out")),
    );
    assert_eq!(
        lock,
        format!("{prefix}v1:{{00000000000000000000ffffc000020a}}:6170692d6b65793a6c6f636b2d6f7574")
    );
    let mut conn = common::raw_connection().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&lock)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (59_000..=60_000).contains(&ttl),
        "lock expires with the window: {ttl}"
    );
}

#[tokio::test]
async fn the_lock_ends_after_the_window() {
    let good = key();
    let window = Duration::from_secs(1);
    let app = wrap(layer(
        &good,
        live(&prefix("expiry")),
        StoreFailurePolicy::FailClosed,
        2,
        window,
    ));
    let peer = "192.0.2.20:1000";
    for _ in 0..2 {
        assert_eq!(
            status(&app, bearer(peer, key().expose_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = send(&app, bearer(peer, good.expose_secret())).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()[header::RETRY_AFTER], "1");

    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(
        status(&app, bearer(peer, good.expose_secret())).await,
        StatusCode::OK
    );
    // and the count started over when the lock was taken
    assert_eq!(
        status(&app, bearer(peer, key().expose_secret())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&app, bearer(peer, good.expose_secret())).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_success_forgets_the_failures_and_costs_one_round_trip_without_any() {
    let good = key();
    let store = live(&prefix("success"));
    let app = wrap(layer(
        &good,
        store.clone(),
        StoreFailurePolicy::FailClosed,
        3,
        Duration::from_secs(60),
    ));
    let peer = "192.0.2.30:1000";
    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(
                status(&app, bearer(peer, key().expose_secret())).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            status(&app, bearer(peer, good.expose_secret())).await,
            StatusCode::OK
        );
    }
    // Without the successes these would have been 6 failures. A valid key without failures
    // to forget is one round trip: the lock check.
    let before = store.redis_calls();
    assert_eq!(
        status(&app, bearer(peer, good.expose_secret())).await,
        StatusCode::OK
    );
    assert_eq!(store.redis_calls() - before, 1);
    for _ in 0..3 {
        assert_eq!(
            status(&app, bearer(peer, key().expose_secret())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status(&app, bearer(peer, good.expose_secret())).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A listener that accepts connections and never answers: a Redis that hangs.
fn silent_redis() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    (listener, url)
}

/// Every attempt is answered, and none waits longer than the lock check and the failure
/// count can each take: the store's timeout.
async fn timed(app: &App, r: Request<String>) -> Res {
    let started = Instant::now();
    let res = send(app, r).await;
    let took = started.elapsed();
    assert!(took < 2 * TIMEOUT + Duration::from_millis(200), "{took:?}");
    res
}

#[tokio::test]
async fn fail_closed_answers_503_while_redis_is_down_or_silent() {
    let good = key();
    let (_listener, silent) = silent_redis();
    for url in [DEAD, silent.as_str()] {
        let layer = layer(
            &good,
            down(url, &prefix("closed")),
            StoreFailurePolicy::FailClosed,
            2,
            Duration::from_secs(60),
        );
        let app = wrap(layer.clone());
        for key in [good.clone(), key(), good.clone(), key()] {
            let res = timed(&app, bearer("192.0.2.40:1", key.expose_secret())).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
            // the breaker's cool-down (default 1 s)
            assert_eq!(res.headers()[header::RETRY_AFTER], "1");
            assert_eq!(problem_status(res).await, 503);
        }
        assert_eq!(
            layer.lockout().unwrap().store().degraded_decisions(),
            4,
            "{url}"
        );
        assert!(
            layer.lockout().unwrap().store().fallback().is_empty(),
            "nothing counted locally"
        );
    }
}

/// The status of one attempt with `key` from `peer`, answered within the timeout bound.
async fn timed_status(app: &App, peer: &str, key: &str) -> StatusCode {
    timed(app, bearer(peer, key)).await.status()
}

#[tokio::test]
async fn fail_open_verifies_keys_but_counts_no_failure_while_redis_is_down() {
    let good = key();
    let layer = layer(
        &good,
        down(DEAD, &prefix("open")),
        StoreFailurePolicy::FailOpen,
        2,
        Duration::from_secs(60),
    );
    let app = wrap(layer.clone());
    let peer = "192.0.2.50:1";
    for _ in 0..5 {
        let res = timed(&app, bearer(peer, key().expose_secret())).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(problem_status(res).await, 401);
    }
    let res = timed(&app, bearer(peer, good.expose_secret())).await;
    assert_eq!(res.status(), StatusCode::OK);
    // each failure: the lock check and the count; the success: the lock check
    assert_eq!(layer.lockout().unwrap().store().degraded_decisions(), 11);
    assert!(layer.lockout().unwrap().store().fallback().is_empty());
}

#[tokio::test]
async fn local_counts_in_memory_while_redis_is_down() {
    let good = key();
    let layer = layer(
        &good,
        down(DEAD, &prefix("local")),
        StoreFailurePolicy::Local,
        2,
        Duration::from_secs(60),
    );
    let app = wrap(layer.clone());
    let peer = "192.0.2.60:1";
    assert_eq!(
        timed_status(&app, peer, key().expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    // a success forgets the local failures too
    assert_eq!(
        timed_status(&app, peer, good.expose_secret()).await,
        StatusCode::OK
    );
    for _ in 0..2 {
        assert_eq!(
            timed_status(&app, peer, key().expose_secret()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = timed(&app, bearer(peer, good.expose_secret())).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()[header::RETRY_AFTER], "60");
    // another client has its own count
    assert_eq!(
        timed_status(&app, "192.0.2.61:1", good.expose_secret()).await,
        StatusCode::OK
    );
    let local = layer.lockout().unwrap();
    let client = Key::from_ip("192.0.2.60".parse::<IpAddr>().unwrap());
    assert!(
        local
            .locked_for(client)
            .await
            .unwrap()
            .is_some_and(|wait| wait <= Duration::from_secs(60))
    );
    assert!(layer.lockout().unwrap().store().degraded_decisions() >= 6);
}

// ------------------------------------------------ the same decisions on Redis and in memory

/// Slots of the trace: every operation of a slot happens at its start.
const SLOT: Duration = Duration::from_millis(400);
const MAX_ATTEMPTS: u32 = 3;
/// Every bucket boundary is an operation's time plus 1 to MAX_ATTEMPTS windows. A window of
/// 4 slots and a quarter, 1.7 s, puts all of them 100 ms or more away from any slot start, so
/// as long as every Redis call of a slot is over within LATE of the slot's start, real time
/// decides nothing and the memory lockout can run on a clock that jumps from slot to slot.
const WINDOW: Duration = Duration::from_millis(1_700);
const LATE: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug)]
enum Op {
    Failure,
    Success,
    Look,
}

/// What the two lockouts answered to one operation.
enum Seen {
    Failures(Failure, Failure),
    Locks(Option<Duration>, Option<Duration>),
    Nothing,
}

/// The waits of the two lockouts differ by how late the Redis calls were.
fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= LATE
}

/// A trace whose timing the machine did not keep: it proves nothing either way.
#[derive(Debug)]
struct TooLate;

/// One random trace of failures, successes and looks by a few clients, run on a `Lockout`
/// with a manual clock and on a `Lockout` on Redis in real time; every outcome must agree.
async fn compare_trace(seed: u64, run: u32) -> Result<(), TooLate> {
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = ManualClock::new();
    // not 0: a theoretical arrival time of 0 means "no state"
    let base = 3_600_000_000_000;
    clock.set(base);
    let memory = Lockout::new(
        Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap()),
        MAX_ATTEMPTS,
        WINDOW,
    )
    .unwrap();
    let redis = Lockout::new(
        Arc::new(live(&prefix(&format!("trace{seed}.{run}")))),
        MAX_ATTEMPTS,
        WINDOW,
    )
    .unwrap();
    // connected, and the script loaded, before the clock starts
    redis.locked_for(Key::GLOBAL).await.unwrap();
    let clients: Vec<Key> = (0..3u128)
        .map(|i| Key::from_u128(0x2001_0db8_0000_0000_0000_0000_0000_0000 + (i << 64)))
        .collect();
    let start = tokio::time::Instant::now();
    let mut locks = 0;
    for slot in 0..28u32 {
        let slot_start = start + SLOT * slot;
        tokio::time::sleep_until(slot_start).await;
        clock.set(base + u64::try_from((SLOT * slot).as_nanos()).unwrap());
        for (c, &client) in clients.iter().enumerate() {
            let op = match rng.random_range(0..10) {
                0..=4 => Op::Failure,
                5 => Op::Success,
                6..=7 => Op::Look,
                _ => continue,
            };
            let at = format!("seed {seed}, slot {slot}, client {c}, {op:?}");
            let seen = match op {
                Op::Failure => Seen::Failures(
                    memory.record_failure(client).await.unwrap(),
                    redis.record_failure(client).await.unwrap(),
                ),
                Op::Success => {
                    memory.record_success(client).await.unwrap();
                    redis.record_success(client).await.unwrap();
                    Seen::Nothing
                }
                Op::Look => Seen::Locks(
                    memory.locked_for(client).await.unwrap(),
                    redis.locked_for(client).await.unwrap(),
                ),
            };
            // Only a call on time proves anything; from a late one on, nothing does.
            if slot_start.elapsed() > LATE {
                return Err(TooLate);
            }
            match seen {
                Seen::Failures(Failure::Locked(m), Failure::Locked(r)) => {
                    locks += 1;
                    assert!(close(m, r), "{at}: locked {m:?} vs {r:?}");
                }
                Seen::Failures(m, r) => assert_eq!(m, r, "{at}"),
                Seen::Locks(Some(m), Some(r)) => assert!(close(m, r), "{at}: {m:?} vs {r:?}"),
                Seen::Locks(m, r) => assert_eq!(m, r, "{at}"),
                Seen::Nothing => {}
            }
        }
    }
    assert!(locks > 0, "seed {seed}: the trace never locked anyone");
    Ok(())
}

/// The trace of `seed`, run again (on fresh keys) when the machine was too busy to keep its
/// timing; a disagreement fails at once.
async fn compare(seed: u64) {
    for run in 0..4 {
        if compare_trace(seed, run).await.is_ok() {
            return;
        }
    }
    panic!("seed {seed}: four runs in a row were too late to compare");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_traces_give_the_same_outcomes_on_redis_and_in_memory() {
    let traces: Vec<_> = [1u64, 2, 3]
        .into_iter()
        .map(|seed| tokio::spawn(compare(seed)))
        .collect();
    for trace in traces {
        trace.await.unwrap();
    }
}
