//! The Redis store (feature `redis`): [`RedisStore`], the Lua script and the circuit breaker.

mod breaker;
mod script;

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use self::breaker::{Admit, Breaker, Transition};
pub use self::script::GCRA_LUA;
use self::script::{RawDecision, arguments, decode, evaluate_micros};
use super::gcra::Decision;
use super::{
    Check, Decisions, Key, KeyHasher, LimiterStore, MemoryStore, Quota, StoreError,
    StoreFailurePolicy, Verdict,
};
use crate::SecretKey;
use crate::error::{ConfigError, ConfigErrors};

/// The version of the data format of the script, part of every key name.
const FORMAT_VERSION: &str = "v1:";

/// Builds a [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    failure_threshold: u32,
    cool_down: Duration,
    local_denials: usize,
    keys: Option<KeyHasher>,
    on_failure: StoreFailurePolicy,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("failure_threshold", &self.failure_threshold)
            .field("cool_down", &self.cool_down)
            .field("local_denials", &self.local_denials)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// What the store answers the layers ([`LimiterStore`]) while Redis cannot decide
    /// (default [`StoreFailurePolicy::Local`]): `FailClosed` an error carrying the breaker's
    /// cool-down as `Retry-After` (the layers answer 503), `FailOpen` [`Verdict::UNLIMITED`]
    /// (admitted, without rate-limit headers), `Local` the decision of the store's
    /// [`fallback`](RedisStore::fallback) in-memory store, each instance counting alone. Every
    /// such decision is counted ([`degraded_decisions`](RedisStore::degraded_decisions)) and
    /// the first of each episode logged. The inherent async methods return Redis's errors as
    /// they are.
    pub fn on_failure(mut self, policy: StoreFailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }

    /// The prefix of every key name, before the format version (default `ts:`, giving
    /// `ts:v1:…`). Give each application sharing a Redis its own; it may not contain `{` or
    /// `}` (they would change the Cluster hash tag).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Hash identifiers and policy names under `secret` (default: a random secret of this
    /// store's own). Every instance sharing the Redis must be given the same one, or their
    /// session, device and policy keys differ and those limits are not shared.
    pub fn secret(mut self, secret: &SecretKey) -> Self {
        self.keys = Some(KeyHasher::from_secret(secret));
        self
    }

    /// The longest a call waits for Redis (default 50 ms), connection included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many consecutive failures open the circuit breaker (default 3).
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// How long the open breaker refuses calls before one trial call (default 1 s).
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// How many refused keys the local denial cache remembers (default 10 000; 0 turns the
    /// cache off).
    pub fn local_denials(mut self, capacity: usize) -> Self {
        self.local_denials = capacity;
        self
    }

    /// The store, or every problem with the settings. Does not connect.
    pub fn build(self) -> Result<RedisStore, ConfigError> {
        let mut errors = ConfigErrors::default();
        let client = match redis::Client::open(self.url.as_str()) {
            Ok(client) => Some(client),
            Err(e) => {
                errors.push(
                    "redis.url",
                    format!("is not a Redis URL (redis://[user:password@]host[:port][/db]): {e}"),
                );
                None
            }
        };
        if self.prefix.contains(['{', '}']) {
            errors.push(
                "redis.key_prefix",
                "may not contain `{` or `}`, which would change the Redis Cluster hash tag",
            );
        }
        if self.timeout.is_zero() {
            errors.push("redis.timeout", "must be longer than zero");
        }
        if self.failure_threshold == 0 {
            errors.push("redis.failure_threshold", "must be at least 1");
        }
        if self.cool_down.is_zero() {
            errors.push("redis.cool_down", "must be longer than zero");
        }
        errors.finish(|| ())?;
        let Some(client) = client else {
            return Err(ConfigError::new("redis.url", "is not a Redis URL"));
        };
        let keys = self.keys.unwrap_or_else(KeyHasher::random);
        let fallback = MemoryStore::builder().key_hasher(keys).build()?;
        Ok(RedisStore {
            on_failure: self.on_failure,
            inner: Arc::new(Inner {
                fallback,
                episode: AtomicBool::new(false),
                #[cfg(feature = "security-log")]
                events: crate::security_log::Coalescer::default(),
                degraded_decisions: AtomicU64::new(0),
                client,
                connection: Mutex::new(None),
                script: redis::Script::new(GCRA_LUA),
                prefix: format!("{}{FORMAT_VERSION}", self.prefix),
                keys,
                timeout: self.timeout,
                cool_down: self.cool_down,
                breaker: Mutex::new(Breaker::new(
                    self.failure_threshold,
                    u64::try_from(self.cool_down.as_nanos()).unwrap_or(u64::MAX),
                )),
                origin: Instant::now(),
                denials: Mutex::new(DenialCache::new(self.local_denials)),
                redis_calls: AtomicU64::new(0),
                local_denials: AtomicU64::new(0),
                degraded_calls: AtomicU64::new(0),
            }),
        })
    }
}

/// The Redis-backed keyed token-bucket store (feature `redis`): one limit shared by every
/// instance of a service.
///
/// [`RedisStore`] makes the same decisions as [`MemoryStore`](super::MemoryStore), but keeps
/// each key's state (its GCRA theoretical arrival time) in Redis, so every process that points
/// at the same Redis shares one budget per key.
///
/// ```no_run
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use tower_shield::limiter::{Check, Key, Quota, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Validates the URL only: start-up does not need Redis to be up.
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .timeout(Duration::from_millis(50))
///     .build()?;
/// let (per_second, per_hour) = (Quota::per_second(10)?, Quota::per_hour(1000)?);
/// let ip: IpAddr = "203.0.113.9".parse()?;
/// let client = Key::from_ip(ip);
/// let hourly = Key::from_u128(client.to_u128() ^ 0x686f_7572); // the caller's own derivation
///
/// // Both limits of this client, in the client's hash-tag slot, charged all-or-nothing.
/// let verdict = store
///     .check_all(&[Check::new(client, &per_second), Check::new(hourly, &per_hour)])
///     .await?;
/// if !verdict.is_allowed() {
///     println!("retry in {:?}", verdict.binding.retry_after());
/// }
/// // A limit shared by every client goes in a call of its own.
/// let global = store.check(Key::GLOBAL, &Quota::per_second(5000)?).await?;
/// # let _ = global;
/// # Ok(()) }
/// ```
///
/// # Keys must mean the same in every process
///
/// Instances share a limit only if they compute the same [`Key`] for the same client.
/// [`Key::from_ip`], [`Key::from_u128`] and [`Key::GLOBAL`] do. The store's
/// [`key_hasher`](RedisStore::key_hasher) hashes identifiers and names under a random secret
/// of its own, so its keys differ between instances and are not shared through Redis, unless
/// every instance's store is built with one shared
/// [`secret`](RedisStoreBuilder::secret) (the reference server uses `SECRET_KEY`).
///
/// # One round trip, one clock, integer microseconds
///
/// Every call is one `EVALSHA` of one Lua script that reads the server clock (`TIME`), checks
/// every (key, quota, cost) of the call and charges all of them only if all are admitted, as
/// [`MemoryStore::check_all`](super::MemoryStore::check_all) does. The script is loaded on
/// first use and again after a `NOSCRIPT` reply (a restarted or flushed server), transparently.
///
/// The arithmetic is integer microseconds, the resolution of Redis `TIME`; every value stays
/// below 2⁵³, so Lua's doubles hold it exactly (redis_rate's float seconds report `remaining`
/// one too low). Given the same state and the same instant, a decision is **bit-identical**
/// to `MemoryStore`'s, with two consequences of the 1 µs resolution:
///
/// - a quota's refill interval is rounded **up** to a whole microsecond (`per_second(3)`:
///   333 333.334 µs becomes 333 334 µs), so Redis is never looser than the quota; quotas whose
///   interval is a whole number of microseconds (every "n per window" whose window divides
///   evenly, e.g. 10 per 300 s) are unchanged;
/// - every duration of a [`Decision`] is a multiple of 1 µs. To compare with `MemoryStore`,
///   drive it with a [`ManualClock`](super::ManualClock) set to the Redis time of each call
///   ([`check_all_timed`](RedisStore::check_all_timed) returns it).
///
/// # Keys, prefix and Redis Cluster hash tags
///
/// The state of `key` checked under hash tag `tag` lives at
/// `<prefix>v1:{<tag as 32 hex digits>}:<key as 32 hex digits>` (default prefix `ts:`).
/// The `v1` is the version of the script's data format: a future format gets a new version
/// and never misreads old keys. Each key expires (`PX`) when its bucket is full again, so
/// Redis cleans itself and holds only keys in debt.
///
/// A script may only touch keys of one Redis Cluster slot, so all keys of one call share one
/// tag. [`check`](RedisStore::check) tags a key with itself;
/// [`check_all`](RedisStore::check_all) tags every key with the **first** check's key, so
/// put the client's key first and keep the order of a route's policies stable.
/// [`check_all_tagged`](RedisStore::check_all_tagged) takes the tag explicitly: pass the
/// client (its address key, its device key) so every policy of that client lands in the
/// client's slot. A key's state lives under the tag it is checked with, so always check a
/// given key under the same tag. A key shared by all clients (a global limit) must be checked
/// in a call of its own (or under one fixed tag, which puts it and its companions in one
/// slot). On a single Redis server, tags only name keys.
///
/// # When Redis is slow or down
///
/// Calls never wait longer than the timeout (default 50 ms) and then fail with
/// [`StoreError::Timeout`]. After `failure_threshold` consecutive failures (default 3) a
/// circuit breaker opens for `cool_down` (default 1 s): calls then fail at once with
/// [`StoreError::Unavailable`] without touching Redis, so a dead Redis does not add the
/// timeout to every request. After the cool-down one trial call goes through; its success
/// closes the breaker. Opening logs one `warn!` and closing one `info!` (target
/// `tower_shield::limiter`), and every failed call is counted in
/// [`degraded_calls`](RedisStore::degraded_calls). What to decide while Redis is unavailable
/// (refuse, admit, or decide locally) is the caller's policy.
///
/// The connection is a reconnecting [`ConnectionManager`](https://docs.rs/redis/1/redis/aio/struct.ConnectionManager.html),
/// made on first use: building a store needs no Redis, and calls must run inside a Tokio
/// runtime (with its time driver enabled).
///
/// # Local denial cache
///
/// When Redis refuses a key, the store remembers the key's debt locally (a lower bound of its
/// true state, bounded to `local_denials` entries, default 10 000). Until that debt has paid
/// off enough to admit the request, the same key is refused **without a Redis call**, with a
/// decision computed by the same integer math from the remembered state. Other instances can
/// only add debt, so a local refusal is one Redis would also give (unless the key is
/// [`reset`](RedisStore::reset) by another instance). An attacker hammering one key costs a
/// handful of Redis calls instead of one per request; see
/// [`local_denials`](RedisStore::local_denials) and [`redis_calls`](RedisStore::redis_calls).
/// A locally refused call reports the remembered refusal as its binding decision; the call's
/// other checks are not consulted.
///
/// Cloning is cheap and clones share the connection, breaker, cache and counters.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
    on_failure: StoreFailurePolicy,
}

struct Inner {
    /// Decides under [`StoreFailurePolicy::Local`] while Redis cannot.
    fallback: MemoryStore,
    /// Whether a degraded episode is under way (and so has been logged).
    episode: AtomicBool,
    degraded_decisions: AtomicU64,
    /// The flood control of the one event an episode logs.
    #[cfg(feature = "security-log")]
    events: crate::security_log::Coalescer,
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    prefix: String,
    keys: KeyHasher,
    timeout: Duration,
    cool_down: Duration,
    breaker: Mutex<Breaker>,
    /// The epoch of the breaker's and the denial cache's clock.
    origin: Instant,
    denials: Mutex<DenialCache>,
    redis_calls: AtomicU64,
    local_denials: AtomicU64,
    degraded_calls: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("redis_calls", &self.redis_calls())
            .field("local_denials", &self.local_denials())
            .field("degraded_calls", &self.degraded_calls())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder for a store on `url` (`redis://[user:password@]host[:port][/db]`), with the
    /// defaults: prefix `ts:`, timeout 50 ms, breaker opening after 3 consecutive failures for
    /// 1 s, local denial cache of 10 000 keys.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "ts:".to_owned(),
            timeout: Duration::from_millis(50),
            failure_threshold: 3,
            cool_down: Duration::from_secs(1),
            local_denials: 10_000,
            keys: None,
            on_failure: StoreFailurePolicy::default(),
        }
    }

    /// A store on `url` with the defaults. Validates the URL only; connects on first use.
    pub fn open(url: &str) -> Result<RedisStore, ConfigError> {
        RedisStore::builder(url).build()
    }

    /// Checks one request of cost 1 for `key` (tagged with itself) and charges it if admitted.
    pub async fn check(&self, key: Key, quota: &Quota) -> Result<Decision, StoreError> {
        self.check_n(key, quota, 1).await
    }

    /// Checks one request of `cost` for `key` (tagged with itself) and charges it if admitted.
    /// A cost above the quota's burst is refused with no `retry_after`.
    pub async fn check_n(
        &self,
        key: Key,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let check = [Check::new(key, quota).cost(cost)];
        Ok(self.run(key, &check, true, true).await?.0.binding)
    }

    /// What [`check_n`](Self::check_n) would decide now, without charging anything. Always
    /// asks Redis.
    pub async fn peek(&self, key: Key, quota: &Quota, cost: u32) -> Result<Decision, StoreError> {
        let check = [Check::new(key, quota).cost(cost)];
        Ok(self.run(key, &check, false, false).await?.0.binding)
    }

    /// Checks several (key, quota, cost) at one instant in one round trip and charges all of
    /// them only if every one is admitted, exactly as
    /// [`MemoryStore::check_all`](super::MemoryStore::check_all) (same binding decision and
    /// index). Every key is tagged with the first check's key (see the
    /// [type docs](RedisStore#keys-prefix-and-redis-cluster-hash-tags)).
    ///
    /// With no checks it admits without calling Redis, reporting an unlimited decision of
    /// burst 0.
    pub async fn check_all(&self, checks: &[Check<'_>]) -> Result<Verdict, StoreError> {
        let Some(first) = checks.first() else {
            return Ok(NOTHING);
        };
        Ok(self.run(first.key, checks, true, true).await?.0)
    }

    /// [`check_all`](Self::check_all) with every key under the hash tag `tag` (typically the
    /// client's key), so that all keys of the call share one Redis Cluster slot.
    pub async fn check_all_tagged(
        &self,
        tag: Key,
        checks: &[Check<'_>],
    ) -> Result<Verdict, StoreError> {
        if checks.is_empty() {
            return Ok(NOTHING);
        }
        Ok(self.run(tag, checks, true, true).await?.0)
    }

    /// [`check_all_tagged`](Self::check_all_tagged), always asking Redis (never the local
    /// denial cache), and also returning the Redis server time of the decision (`TIME`, since
    /// the Unix epoch, in whole microseconds): for tracing, and to replay the same decision on
    /// a [`MemoryStore`](super::MemoryStore) driven by a [`ManualClock`](super::ManualClock).
    pub async fn check_all_timed(
        &self,
        tag: Key,
        checks: &[Check<'_>],
    ) -> Result<(Verdict, Duration), StoreError> {
        if checks.is_empty() {
            return Ok((NOTHING, Duration::ZERO));
        }
        self.run(tag, checks, true, false).await
    }

    /// Forgets `key` (checked under its own tag), so its next check sees a full bucket (as
    /// after a successful login); whether Redis held it. Other instances' local denial caches
    /// keep refusing it until their remembered debt runs out.
    pub async fn reset(&self, key: Key) -> Result<bool, StoreError> {
        self.reset_tagged(key, key).await
    }

    /// Forgets `key` as checked under the hash tag `tag`; whether Redis held it.
    pub async fn reset_tagged(&self, tag: Key, key: Key) -> Result<bool, StoreError> {
        lock(&self.inner.denials).remove(tag, key);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.redis_key(tag, key));
        let removed: i64 = self
            .call(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await?;
        Ok(removed > 0)
    }

    /// The Redis key that holds the state of `key` checked under the hash tag `tag`, for
    /// operators (`PTTL`, `DEL`) and tests.
    pub fn redis_key(&self, tag: Key, key: Key) -> String {
        format!(
            "{}{{{:032x}}}:{:032x}",
            self.inner.prefix,
            tag.to_u128(),
            key.to_u128()
        )
    }

    /// How this store's users turn identifiers and policy names into keys.
    pub fn key_hasher(&self) -> &KeyHasher {
        &self.inner.keys
    }

    /// How many calls went to Redis (round trips attempted, successful or not).
    pub fn redis_calls(&self) -> u64 {
        self.inner.redis_calls.load(Ordering::Relaxed)
    }

    /// How many calls were refused by the local denial cache, without a Redis call.
    pub fn local_denials(&self) -> u64 {
        self.inner.local_denials.load(Ordering::Relaxed)
    }

    /// How many calls failed (timeout, error, or refused by the open breaker): each one is a
    /// decision the caller had to make without Redis.
    pub fn degraded_calls(&self) -> u64 {
        self.inner.degraded_calls.load(Ordering::Relaxed)
    }

    /// How long the open circuit breaker refuses calls before a trial call: how long a caller
    /// should wait before expecting the store back (`Retry-After` of a refusal for want of
    /// the store).
    pub fn cool_down(&self) -> Duration {
        self.inner.cool_down
    }

    /// Whether the circuit breaker is open (calls fail fast) or half-open (one trial call in
    /// flight).
    pub fn is_degraded(&self) -> bool {
        lock(&self.inner.breaker).is_open()
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.inner.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The shared body of every check: the local cache, then one script call.
    async fn run(
        &self,
        tag: Key,
        checks: &[Check<'_>],
        charge: bool,
        use_cache: bool,
    ) -> Result<(Verdict, Duration), StoreError> {
        if use_cache {
            if let Some(verdict) = self.refused_locally(tag, checks) {
                self.inner.local_denials.fetch_add(1, Ordering::Relaxed);
                return Ok((verdict, Duration::ZERO));
            }
        }
        let sent_us = self.nanos() / 1_000;
        let (now, raws) = self.evaluate(tag, checks, charge).await?;
        let mut verdict = NOTHING;
        for (i, (raw, check)) in raws.iter().zip(checks).enumerate() {
            let decision = raw.into_decision(check.quota);
            if i == 0 || decision.binds_more_than(&verdict.binding) {
                verdict = Verdict {
                    binding: decision,
                    index: i,
                };
            }
        }
        if !verdict.is_allowed() {
            self.remember_refusals(tag, checks, &raws, sent_us);
        }
        Ok((verdict, now))
    }

    /// One script call: the server time and the raw decision of every check.
    async fn evaluate(
        &self,
        tag: Key,
        checks: &[Check<'_>],
        charge: bool,
    ) -> Result<(Duration, Vec<RawDecision>), StoreError> {
        let mut invocation = self.inner.script.prepare_invoke();
        for check in checks {
            invocation.key(self.redis_key(tag, check.key));
        }
        invocation.arg(u8::from(charge));
        for arg in arguments(checks) {
            invocation.arg(arg);
        }
        let reply: Value = self
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        decode(reply, checks)
    }

    /// A verdict from the local denial cache, when it alone proves a refusal.
    fn refused_locally(&self, tag: Key, checks: &[Check<'_>]) -> Option<Verdict> {
        let mut cache = lock(&self.inner.denials);
        if cache.is_empty() {
            return None;
        }
        let now_us = self.nanos().div_ceil(1_000);
        let mut refusal: Option<Verdict> = None;
        for (i, check) in checks.iter().enumerate() {
            let Some(tat) = cache.get(tag, check.key) else {
                continue;
            };
            if tat <= now_us {
                cache.remove(tag, check.key);
                continue;
            }
            let (raw, _) = evaluate_micros(tat - now_us, check.quota, check.cost);
            if raw.allowed {
                continue;
            }
            let decision = raw.into_decision(check.quota);
            if refusal.is_none_or(|v| decision.binds_more_than(&v.binding)) {
                refusal = Some(Verdict {
                    binding: decision,
                    index: i,
                });
            }
        }
        refusal
    }

    /// Remembers the debt of every key Redis refused (at its first check in the call, whose
    /// state no earlier check of the call has changed), as a lower bound in local time.
    fn remember_refusals(
        &self,
        tag: Key,
        checks: &[Check<'_>],
        raws: &[RawDecision],
        sent_us: u64,
    ) {
        let mut cache = lock(&self.inner.denials);
        if cache.capacity == 0 {
            return;
        }
        for (i, (raw, check)) in raws.iter().zip(checks).enumerate() {
            let first = !checks[..i].iter().any(|c| c.key == check.key);
            if first && !raw.allowed && raw.reset_after > 0 {
                cache.insert(tag, check.key, sent_us + raw.reset_after, sent_us);
            }
        }
    }

    /// One Redis round trip through the breaker, the timeout and the counters.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let inner = &self.inner;
        if lock(&inner.breaker).admit(self.nanos()) == Admit::Refuse {
            inner.degraded_calls.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable);
        }
        inner.redis_calls.fetch_add(1, Ordering::Relaxed);
        let result = match self.connection() {
            Ok(conn) => match tokio::time::timeout(inner.timeout, op(conn)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(StoreError::Backend(Box::new(e))),
                Err(_) => Err(StoreError::Timeout(inner.timeout)),
            },
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => {
                if lock(&inner.breaker).success() == Some(Transition::Closed) {
                    tracing::info!(
                        target: "tower_shield::limiter",
                        "Redis store answering again: circuit breaker closed"
                    );
                }
            }
            Err(e) => {
                inner.degraded_calls.fetch_add(1, Ordering::Relaxed);
                let opened = lock(&inner.breaker).failure(self.nanos());
                if opened == Some(Transition::Opened) {
                    tracing::warn!(
                        target: "tower_shield::limiter",
                        error = %e,
                        cool_down = ?inner.cool_down,
                        "Redis store unavailable: circuit breaker open, calls fail fast"
                    );
                } else {
                    tracing::debug!(target: "tower_shield::limiter", error = %e, "Redis store call failed");
                }
            }
        }
        result
    }

    /// The shared reconnecting connection, made on first use (it connects in the background).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = lock(&self.inner.connection);
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.inner.timeout.max(Duration::from_millis(250))))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

impl RedisStore {
    /// What the store answers the layers while Redis cannot decide
    /// ([`RedisStoreBuilder::on_failure`]).
    pub fn on_failure(&self) -> StoreFailurePolicy {
        self.on_failure
    }

    /// This store (its connection, breaker, fallback and counters shared) answering the
    /// layers with `policy` while Redis cannot decide: one Redis for a rate limit that fails
    /// closed and a lockout that decides locally, say.
    pub fn with_failure_policy(mut self, policy: StoreFailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }

    /// The in-memory store that decides under [`StoreFailurePolicy::Local`] while Redis
    /// cannot; it hashes keys as this store does.
    pub fn fallback(&self) -> &MemoryStore {
        &self.inner.fallback
    }

    /// How many answers to the layers were made without Redis (unreachable, timed out or
    /// its circuit breaker open), whatever the failure policy made of them.
    pub fn degraded_decisions(&self) -> u64 {
        self.inner.degraded_decisions.load(Ordering::Relaxed)
    }

    /// Redis answered: the degraded episode, if any, is over.
    fn answered(&self) {
        // A load first: the common case writes nothing to the shared cache line.
        if self.inner.episode.load(Ordering::Relaxed) {
            self.inner.episode.store(false, Ordering::Relaxed);
        }
    }

    /// Counts an answer made without Redis and logs the first of an episode (one record per
    /// outage, not one per request); the policy's answer, `local` deciding it locally.
    fn degraded<T>(
        &self,
        error: StoreError,
        open: T,
        local: impl FnOnce() -> T,
    ) -> Result<T, StoreError> {
        let inner = &self.inner;
        inner.degraded_decisions.fetch_add(1, Ordering::Relaxed);
        if !inner.episode.swap(true, Ordering::Relaxed) {
            #[cfg(feature = "security-log")]
            crate::security_log::SecurityEvent::rate_limit_store_degraded(
                self.on_failure.name(),
                error.to_string(),
            )
            .emit_via(&inner.events);
        }
        match self.on_failure {
            StoreFailurePolicy::FailClosed => Err(StoreError::FailedClosed {
                retry_after: inner.cool_down,
                source: Box::new(error),
            }),
            StoreFailurePolicy::FailOpen => Ok(open),
            StoreFailurePolicy::Local => Ok(local()),
        }
    }
}

/// A boxed future of the Redis store: its state holds the Redis client's.
type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The checks of a call, owned, for a future that outlives the call.
fn owned(checks: &[Check<'_>]) -> Vec<(Key, Quota, u32)> {
    checks.iter().map(|c| (c.key, *c.quota, c.cost)).collect()
}

fn borrowed(owned: &[(Key, Quota, u32)]) -> Vec<Check<'_>> {
    owned
        .iter()
        .map(|(key, quota, cost)| Check::new(*key, quota).cost(*cost))
        .collect()
}

/// One round trip per call (`EVALSHA`, or `DEL` to reset), with the local denial cache, the
/// circuit breaker and the [failure policy](RedisStoreBuilder::on_failure).
impl LimiterStore for RedisStore {
    type CheckFuture = Boxed<Verdict>;
    type PeekFuture = Boxed<Decisions>;
    type ResetFuture = Boxed<bool>;

    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
        if checks.is_empty() {
            return Box::pin(ready(Ok(NOTHING)));
        }
        let (store, checks) = (self.clone(), owned(checks));
        Box::pin(async move {
            let checks = borrowed(&checks);
            match store.run(tag, &checks, true, true).await {
                Ok((verdict, _)) => {
                    store.answered();
                    Ok(verdict)
                }
                Err(error) => store.degraded(error, Verdict::UNLIMITED, || {
                    store.inner.fallback.check_tagged(tag, &checks)
                }),
            }
        })
    }

    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
        let (store, checks) = (self.clone(), owned(checks));
        Box::pin(async move {
            let checks = borrowed(&checks);
            match store.evaluate(tag, &checks, false).await {
                Ok((_, raws)) => {
                    store.answered();
                    Ok(raws
                        .iter()
                        .zip(&checks)
                        .map(|(raw, check)| raw.into_decision(check.quota))
                        .collect())
                }
                Err(error) => {
                    let open = checks.iter().map(|_| Verdict::UNLIMITED.binding).collect();
                    store.degraded(error, open, || {
                        checks
                            .iter()
                            .map(|c| {
                                let key = super::tagged(tag, c.key);
                                store.inner.fallback.peek(key, c.quota, c.cost)
                            })
                            .collect()
                    })
                }
            }
        })
    }

    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
        // The fallback may hold the key from a degraded episode: forget it there too.
        self.inner.fallback.reset(super::tagged(tag, key));
        let store = self.clone();
        Box::pin(async move { store.reset_tagged(tag, key).await })
    }

    fn key_hasher(&self) -> &KeyHasher {
        &self.inner.keys
    }
}

/// What an empty call reports: admitted, against nothing.
const NOTHING: Verdict = Verdict {
    binding: Decision::NOTHING_CHECKED,
    index: 0,
};

/// Refused keys and their debt: (tag, key) → TAT in local microseconds (a lower bound of the
/// Redis TAT). Bounded: a new key in a full cache first drops expired entries among a sample,
/// or else the sampled entry that expires first.
struct DenialCache {
    capacity: usize,
    map: HashMap<(u128, u128), u64>,
}

/// How many entries a full cache looks at to make room.
const EVICTION_SAMPLE: usize = 32;

impl DenialCache {
    fn new(capacity: usize) -> DenialCache {
        DenialCache {
            capacity,
            map: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn get(&self, tag: Key, key: Key) -> Option<u64> {
        self.map.get(&(tag.to_u128(), key.to_u128())).copied()
    }

    fn remove(&mut self, tag: Key, key: Key) {
        self.map.remove(&(tag.to_u128(), key.to_u128()));
    }

    fn insert(&mut self, tag: Key, key: Key, tat: u64, now: u64) {
        let id = (tag.to_u128(), key.to_u128());
        if self.map.len() >= self.capacity && !self.map.contains_key(&id) {
            let sample: Vec<_> = self
                .map
                .iter()
                .take(EVICTION_SAMPLE)
                .map(|(k, t)| (*k, *t))
                .collect();
            let expired: Vec<_> = sample.iter().filter(|(_, t)| *t <= now).collect();
            if expired.is_empty() {
                if let Some((oldest, _)) = sample.iter().min_by_key(|(_, t)| *t) {
                    self.map.remove(oldest);
                }
            } else {
                for (k, _) in expired {
                    self.map.remove(k);
                }
            }
        }
        let entry = self.map.entry(id).or_insert(0);
        *entry = (*entry).max(tat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded_and_drops_expired_entries_first() {
        let mut cache = DenialCache::new(4);
        for i in 0..4u128 {
            cache.insert(Key::from_u128(i), Key::from_u128(i), 100 + i as u64, 0);
        }
        cache.insert(Key::GLOBAL, Key::from_u128(9), 500, 0);
        assert_eq!(cache.map.len(), 4);
        assert_eq!(
            cache.get(Key::GLOBAL, Key::GLOBAL),
            None,
            "the soonest to expire went"
        );
        cache.insert(Key::GLOBAL, Key::from_u128(10), 500, 200);
        assert_eq!(cache.map.len(), 2, "every expired entry of the sample went");
    }

    #[test]
    fn builder_reports_every_problem_without_connecting() {
        let err = RedisStore::builder("http://nope")
            .key_prefix("a{b}")
            .timeout(Duration::ZERO)
            .failure_threshold(0)
            .cool_down(Duration::ZERO)
            .build()
            .unwrap_err();
        let settings: Vec<_> = err.problems().iter().map(|p| p.setting()).collect();
        assert_eq!(
            settings,
            [
                "redis.url",
                "redis.key_prefix",
                "redis.timeout",
                "redis.failure_threshold",
                "redis.cool_down"
            ]
        );
        for url in ["http://user:secret@host/", "redis://user:secret@host:port/"] {
            let err = RedisStore::open(url).unwrap_err().to_string();
            assert!(
                err.contains("redis.url") && !err.contains("secret"),
                "{err}"
            );
        }
        let store = RedisStore::open("redis://user:secret@127.0.0.1:1/").unwrap();
        assert!(!format!("{store:?}").contains("secret"));
        assert_eq!(
            store.redis_key(Key::from_u128(1), Key::from_u128(2)),
            "ts:v1:{00000000000000000000000000000001}:00000000000000000000000000000002"
        );
    }
}
