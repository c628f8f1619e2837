//! `RedisStore` against a real `redis-server` on 127.0.0.1:6379 (CI starts one). These tests
//! fail, never skip, when Redis is not there. Each test uses its own key prefix, and none
//! stops the shared server; the kill/restart test runs a `redis-server` of its own.
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tower_shield::limiter::{Check, Key, ManualClock, MemoryStore, Quota, RedisStore, StoreError};
use tracing::Level;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

mod common;
use common::unique_prefix as prefix;

const URL: &str = common::REDIS_URL;

fn store(test: &str) -> RedisStore {
    RedisStore::builder(URL)
        .key_prefix(prefix(test))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// The key of a test identifier: the same in every process, as keys shared through Redis are.
fn id(name: &[u8]) -> Key {
    let mut bytes = [0u8; 16];
    for (b, n) in bytes.iter_mut().zip(name) {
        *b = *n;
    }
    Key::from_u128(u128::from_be_bytes(bytes) ^ name.len() as u128)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The method: every call goes to Redis through `check_all_timed`, which also returns the
/// Redis `TIME` the script decided at. The same checks are then replayed on a `MemoryStore`
/// whose `ManualClock` is set to that instant (in ns). GCRA is a pure function of the stored
/// TATs and `now`, and both stores start empty and apply the same admitted charges, so with
/// quotas whose interval is a whole number of microseconds every verdict (allowed, binding
/// index, limit, remaining, slack, reset and retry, to the nanosecond) must be equal. Real
/// time passes between calls (random sleeps), so partly refilled buckets are covered too.
#[tokio::test]
async fn decisions_match_the_memory_store_on_random_traces() {
    let redis = store("trace");
    let clock = ManualClock::new();
    let memory = MemoryStore::builder().clock(clock.clone()).build().unwrap();
    let quotas = [
        Quota::per(5, ms(50)).unwrap(),
        Quota::per(3, ms(30)).unwrap().with_burst(2).unwrap(),
        Quota::per(2, ms(7)).unwrap(),
        Quota::per(10, ms(100)).unwrap().with_burst(4).unwrap(),
    ];
    for q in &quotas {
        assert_eq!(q.interval().as_nanos() % 1_000, 0);
    }
    let keys: Vec<Key> = (0..4u128)
        .map(|i| Key::from_u128(0xfeed_0000 + i))
        .collect();
    let tag = id(b"trace-client");
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (mut allowed, mut refused) = (0, 0);
    for step in 0..400 {
        let n = rng.random_range(1..=3);
        let picks: Vec<(usize, usize, u32)> = (0..n)
            .map(|_| {
                let q = rng.random_range(0..quotas.len());
                let cost = match rng.random_range(0..10) {
                    0 => 0,
                    1 => quotas[q].burst() + 1,
                    2 => rng.random_range(1..=quotas[q].burst()),
                    _ => 1,
                };
                (rng.random_range(0..keys.len()), q, cost)
            })
            .collect();
        let remote: Vec<_> = picks
            .iter()
            .map(|&(k, q, c)| Check::new(keys[k], &quotas[q]).cost(c))
            .collect();
        let local: Vec<_> = picks
            .iter()
            .map(|&(k, q, c)| Check::new(keys[k], &quotas[q]).cost(c))
            .collect();
        let (verdict, now) = redis.check_all_timed(tag, &remote).await.unwrap();
        clock.set(u64::try_from(now.as_nanos()).unwrap());
        let expected = memory.check_all(&local);
        assert_eq!(verdict, expected, "step {step}: {picks:?}");
        if verdict.is_allowed() {
            allowed += 1;
        } else {
            refused += 1;
        }
        if rng.random_range(0..2) == 0 {
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..10_000))).await;
        }
    }
    eprintln!("trace: {allowed} admitted, {refused} refused, each verdict equal to MemoryStore's");
    assert!(
        allowed > 50 && refused > 50,
        "{allowed} allowed, {refused} refused"
    );
}

#[tokio::test]
async fn two_independent_stores_share_one_limit() {
    let prefix = prefix("shared");
    let open = || {
        RedisStore::builder(URL)
            .key_prefix(prefix.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (open(), open());
    let quota = Quota::per(10, Duration::from_secs(60)).unwrap();
    let client = id(b"shared-client");
    let mut remaining = Vec::new();
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        let d = server.check(client, &quota).await.unwrap();
        assert!(d.is_allowed(), "request {i}");
        remaining.push(d.remaining());
    }
    assert_eq!(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for server in [&a, &b] {
        let d = server.check(client, &quota).await.unwrap();
        assert!(!d.is_allowed());
        let retry = d.retry_after().unwrap();
        assert!(retry > Duration::from_secs(5) && retry <= Duration::from_secs(6));
    }
}

#[tokio::test]
async fn all_or_nothing_over_two_keys() {
    let store = store("all-or-nothing");
    let (burst, hourly) = (
        Quota::per(10, Duration::from_secs(10)).unwrap(),
        Quota::per_hour(1).unwrap(),
    );
    let client = id(b"client");
    let (a, b) = (id(b"burst"), id(b"hourly"));
    let checks = [Check::new(a, &burst), Check::new(b, &hourly)];
    let first = store.check_all_tagged(client, &checks).await.unwrap();
    assert!(first.is_allowed());
    assert_eq!((first.index, first.binding.remaining()), (1, 0));
    let second = store.check_all_tagged(client, &checks).await.unwrap();
    assert!(!second.is_allowed());
    assert_eq!(second.index, 1);
    assert!(second.binding.retry_after().unwrap() > Duration::from_secs(3590));
    // The refusal charged nothing to the other key.
    let probe = [Check::new(a, &burst).cost(0)];
    let v = store.check_all_tagged(client, &probe).await.unwrap();
    assert_eq!(v.binding.remaining(), 9);
    // A cost above the burst is refused with no retry and charges nothing either.
    let big = [
        Check::new(a, &burst).cost(11),
        Check::new(id(b"other"), &burst),
    ];
    let v = store.check_all_tagged(client, &big).await.unwrap();
    assert_eq!(
        (v.is_allowed(), v.index, v.binding.retry_after()),
        (false, 0, None)
    );
    let v = store.check_all_tagged(client, &probe).await.unwrap();
    assert_eq!(v.binding.remaining(), 9);
}

#[tokio::test]
async fn peek_and_weighted_checks() {
    let store = store("peek");
    let quota = Quota::per(10, Duration::from_secs(10)).unwrap();
    let key = id(b"k");
    let d = store.peek(key, &quota, 1).await.unwrap();
    assert_eq!((d.is_allowed(), d.remaining()), (true, 9));
    let d = store.check_n(key, &quota, 4).await.unwrap();
    assert_eq!((d.is_allowed(), d.remaining()), (true, 6));
    let d = store.peek(key, &quota, 7).await.unwrap();
    assert!(!d.is_allowed());
    assert!(d.retry_after().unwrap() <= Duration::from_secs(1));
    assert_eq!(store.peek(key, &quota, 0).await.unwrap().remaining(), 6);
    assert!(store.reset(key).await.unwrap());
    assert_eq!(store.peek(key, &quota, 0).await.unwrap().remaining(), 10);
    assert!(!store.reset(key).await.unwrap());

    // An interval that is not a whole microsecond is rounded up: never looser than the quota.
    let thirds = Quota::per_second(3).unwrap();
    let d = store.check(id(b"thirds"), &thirds).await.unwrap();
    assert_eq!(d.reset_after(), Duration::from_micros(333_334));
    assert!(d.reset_after() > thirds.interval());
}

#[tokio::test]
async fn keys_expire_when_the_bucket_is_full_again() {
    let store = store("ttl");
    let mut conn = common::raw_connection().await;
    let quota = Quota::per(10, Duration::from_secs(10)).unwrap();
    let key = id(b"ttl");
    let d = store.check_n(key, &quota, 3).await.unwrap();
    assert_eq!(d.reset_after(), Duration::from_secs(3));
    let name = store.redis_key(key, key);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 2_900 && pttl <= 3_000, "PTTL {pttl} ms");
    // A peek writes nothing; a refusal neither.
    let fresh = id(b"never-charged");
    store.peek(fresh, &quota, 1).await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(store.redis_key(fresh, fresh))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    // The key layout: versioned prefix and the hash tag of the first key.
    assert!(name.contains(":v1:{") && name.ends_with(&format!("}}:{:032x}", key.to_u128())));
}

#[tokio::test]
async fn a_flushed_script_cache_is_recovered() {
    let store = store("noscript");
    let mut conn = common::raw_connection().await;
    let quota = Quota::per_minute(5).unwrap();
    let key = id(b"noscript");
    assert_eq!(store.check(key, &quota).await.unwrap().remaining(), 4);
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.check(key, &quota).await.unwrap().remaining(), 3);
    assert_eq!(store.degraded_calls(), 0);
}

#[tokio::test]
async fn the_breaker_makes_a_dead_server_fail_fast() {
    let store = RedisStore::builder("redis://127.0.0.1:1/")
        .timeout(ms(50))
        .failure_threshold(3)
        .cool_down(Duration::from_secs(30))
        .build()
        .expect("start-up does not need Redis");
    let quota = Quota::per_minute(5).unwrap();
    for _ in 0..3 {
        let e = store.check(Key::GLOBAL, &quota).await.unwrap_err();
        assert!(!matches!(e, StoreError::Unavailable), "{e}");
    }
    assert!(store.is_degraded());
    let start = Instant::now();
    for _ in 0..1000 {
        let e = store.check(Key::GLOBAL, &quota).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable), "{e}");
    }
    let elapsed = start.elapsed();
    assert!(elapsed < ms(200), "1000 refusals took {elapsed:?}");
    assert_eq!(store.redis_calls(), 3);
    assert_eq!(store.degraded_calls(), 1003);
}

#[tokio::test]
async fn the_local_denial_cache_spares_redis_under_attack() {
    let quota = Quota::per(10, Duration::from_secs(60)).unwrap();
    let attacker = id(b"attacker");
    let mut calls = Vec::new();
    for cache in [10_000, 0] {
        let store = RedisStore::builder(URL)
            .key_prefix(prefix("attack"))
            .local_denials(cache)
            .timeout(ms(500))
            .build()
            .unwrap();
        let mut admitted = 0;
        for _ in 0..1000 {
            let d = store.check(attacker, &quota).await.unwrap();
            admitted += u32::from(d.is_allowed());
            if !d.is_allowed() {
                let retry = d.retry_after().unwrap();
                assert!(retry > Duration::from_secs(5) && retry <= Duration::from_secs(6));
            }
        }
        assert_eq!(admitted, 10);
        // A local refusal (made after the peek) never waits longer than Redis would.
        let remote = store.peek(attacker, &quota, 1).await.unwrap();
        let local = store.check(attacker, &quota).await.unwrap();
        assert!(local.retry_after() <= remote.retry_after());
        assert!(remote.retry_after().unwrap() - local.retry_after().unwrap() < ms(100));
        calls.push((store.redis_calls() - 1, store.local_denials()));
    }
    eprintln!(
        "1001 requests over the limit of 10: (redis calls, local denials) with / without the cache: {calls:?}"
    );
    assert_eq!(calls[0], (11, 990));
    assert_eq!(calls[1], (1001, 0));
}

#[tokio::test]
async fn futures_are_send() {
    fn send<T: Send>(_: T) {}
    let store = store("send");
    let quota = Quota::per_minute(1).unwrap();
    send(store.check(Key::GLOBAL, &quota));
    send(store.check_all(&[]));
}

/// A `redis-server` of this test's own, on a free port, without persistence.
struct OwnServer {
    port: u16,
    child: Option<Child>,
}

impl OwnServer {
    fn start(port: u16) -> OwnServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "own redis-server did not start");
            std::thread::sleep(ms(20));
        }
        OwnServer {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts the store's `warn!` and `info!` events.
#[derive(Clone, Default)]
struct Episodes(Arc<Mutex<Vec<Level>>>);

impl<S: tracing::Subscriber> Layer<S> for Episodes {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == "tower_shield::limiter" && *meta.level() <= Level::INFO {
            self.0.lock().unwrap().push(*meta.level());
        }
    }
}

#[test]
fn redis_killed_and_restarted_mid_run() {
    let episodes = Episodes::default();
    let subscriber = tracing_subscriber::registry().with(episodes.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(killed_and_restarted());
    });
    // One degraded episode: logged once when it began and once when it ended.
    assert_eq!(*episodes.0.lock().unwrap(), [Level::WARN, Level::INFO]);
}

async fn killed_and_restarted() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = OwnServer::start(port);
    let url = format!("redis://127.0.0.1:{}/", server.port);
    let open = || {
        RedisStore::builder(url.as_str())
            .timeout(ms(50))
            .failure_threshold(2)
            .cool_down(ms(100))
            .build()
            .unwrap()
    };
    let (a, b) = (open(), open());
    let quota = Quota::per(4, Duration::from_secs(60)).unwrap();
    let client = id(b"restart");
    assert_eq!(a.check(client, &quota).await.unwrap().remaining(), 3);
    assert_eq!(b.check(client, &quota).await.unwrap().remaining(), 2);

    server.stop();
    // Every call now fails within the timeout, and soon without touching Redis at all.
    for _ in 0..20 {
        let start = Instant::now();
        assert!(a.check(client, &quota).await.is_err());
        assert!(start.elapsed() < ms(500), "{:?}", start.elapsed());
    }
    assert!(a.is_degraded());
    assert!(
        a.redis_calls() < 20,
        "{} calls reached Redis",
        a.redis_calls()
    );
    assert_eq!(a.degraded_calls(), 20);

    let _server = OwnServer::start(port);
    // Recovery is automatic: the breaker's trial call reconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    let decision = loop {
        match a.check(client, &quota).await {
            Ok(d) => break d,
            Err(_) => {
                assert!(Instant::now() < deadline, "no recovery after restart");
                tokio::time::sleep(ms(20)).await;
            }
        }
    };
    assert!(!a.is_degraded());
    // The restarted server kept nothing (no persistence): a fresh bucket, shared again.
    assert_eq!(decision.remaining(), 3);
    let shared = loop {
        match b.check(client, &quota).await {
            Ok(d) => break d,
            Err(_) => {
                assert!(Instant::now() < deadline, "second store did not recover");
                tokio::time::sleep(ms(20)).await;
            }
        }
    };
    assert_eq!(shared.remaining(), 2);
}
