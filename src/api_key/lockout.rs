//! Auth-attempt lockout on the token-bucket core: failures are requests against a quota, in
//! the in-memory store ([`Lockout`]) or in Redis ([`RedisLockout`], feature `redis`), with one
//! set of rules for both.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrors};
#[cfg(feature = "redis")]
use crate::limiter::{Check, RedisStore, StoreError};
use crate::limiter::{Clock, Decision, Key, MemoryStore, Namespace, QuantaClock, Quota};

/// Locks a client out after too many failed authentications (`MAX_AUTH_ATTEMPTS` within
/// `AUTH_ATTEMPT_TIMEOUT`), with two token buckets of the shared [`MemoryStore`]:
///
/// - **failures**: burst `max_attempts`, one token back per `window`. Each failure takes a
///   token. `max_attempts` failures within `window` always empty it; failures at least
///   `window` apart never do; in between it is the GCRA's exact sliding behaviour (no
///   fixed-window edge where twice the allowance gets through).
/// - **lock**: one token per `window`. When a failure takes the last failure token, the lock
///   token is taken: the client is locked for exactly `window` from that failure, and its
///   failure count starts over for when the lock ends.
///
/// A success [resets](Lockout::record_success) the failure count (NIST SP 800-63B: "the
/// verifier SHOULD disregard any previous failed attempts"). Nothing here runs a second
/// algorithm or a background task: both buckets live in the store the rate limiter may share,
/// under their own [`Namespace`]s.
///
/// Limits worth knowing:
///
/// - Failures are counted per client (address, IPv6 by prefix), not per key: every guess is
///   a different key, so there is no account to count against. An attacker spread over many
///   addresses gets `max_attempts` guesses per address per window; with 256-bit keys that
///   buys nothing, and the lockout is there to stop noise and to make guessing visible.
/// - At the store's key cap, entries closest to expiry are evicted first; a lock is a
///   far-future entry, so it is among the last to go, but a flood of new clients can still
///   push it out. Size `max_keys` for the expected number of clients.
/// - The in-memory store is per process: behind several replicas each keeps its own counts.
///   `RedisLockout` (feature `redis`) keeps the same two buckets in Redis, shared by all.
///
/// Usable on its own, for a login handler:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_shield::api_key::{Failure, Lockout};
/// use tower_shield::limiter::{Key, ManualClock, MemoryStore};
///
/// let clock = ManualClock::new();
/// let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build()?);
/// let lockout = Lockout::new(store, 3, Duration::from_secs(300))?;
/// let client = Key::from_ip("203.0.113.9".parse()?);
///
/// assert_eq!(lockout.record_failure(client), Failure::Counted { remaining: 2 });
/// assert_eq!(lockout.record_failure(client), Failure::Counted { remaining: 1 });
/// assert_eq!(lockout.record_failure(client), Failure::Locked(Duration::from_secs(300)));
/// assert_eq!(lockout.locked_for(client), Some(Duration::from_secs(300)));
///
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(lockout.locked_for(client), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Lockout<C: Clock = QuantaClock> {
    store: Arc<MemoryStore<C>>,
    rules: Rules,
    failures_ns: Namespace,
    lock_ns: Namespace,
}

/// What a failed attempt did to the client's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted; this many more failures are allowed before the lock.
    Counted {
        /// Failures left before the lock.
        remaining: u32,
    },
    /// This failure locked the client out for this long.
    Locked(Duration),
}

/// The two quotas of a lockout and how their decisions read, whichever store holds them: the
/// one place the lockout's logic lives.
#[derive(Clone, Copy, Debug)]
struct Rules {
    failures: Quota,
    lock: Quota,
    max_attempts: u32,
    window: Duration,
}

impl Rules {
    fn new(max_attempts: u32, window: Duration) -> Result<Self, ConfigError> {
        let mut errors = ConfigErrors::default();
        if max_attempts == 0 {
            errors.push(
                "MAX_AUTH_ATTEMPTS",
                "must be at least 1 (to turn the lockout off, build without it)",
            );
        }
        if window.is_zero() {
            errors.push("AUTH_ATTEMPT_TIMEOUT", "must be at least 1 second");
        }
        errors.finish(|| ())?;
        let lock = Quota::every(window).map_err(|e| e.within("AUTH_ATTEMPT_TIMEOUT"))?;
        let failures = lock
            .with_burst(max_attempts)
            .map_err(|e| e.within("MAX_AUTH_ATTEMPTS"))?;
        Ok(Rules {
            failures,
            lock,
            max_attempts,
            window,
        })
    }

    /// The lock's wait, from a look (cost 1, nothing charged) at the lock bucket.
    fn lock_wait(&self, peek: Decision) -> Option<Duration> {
        if peek.is_allowed() {
            None
        } else {
            Some(peek.retry_after().unwrap_or(self.window))
        }
    }

    /// The outcome of a failure the failures bucket absorbed, or `None` when it took the last
    /// token (or found none): then the lock is to be taken and the failures forgotten.
    fn counted(&self, failures: Decision) -> Option<Failure> {
        (failures.is_allowed() && failures.remaining() > 0).then(|| Failure::Counted {
            remaining: failures.remaining(),
        })
    }

    /// The outcome of taking the lock token.
    fn locked(&self, lock: Decision) -> Failure {
        if lock.is_allowed() {
            Failure::Locked(self.window)
        } else {
            // A concurrent failure locked it first; report what is left of that lock.
            Failure::Locked(lock.retry_after().unwrap_or(self.window))
        }
    }
}

impl<C: Clock> Lockout<C> {
    /// A lockout after `max_attempts` failures within `window`, lasting `window`, kept in
    /// `store`. Both must be non-zero (problems named `MAX_AUTH_ATTEMPTS` and
    /// `AUTH_ATTEMPT_TIMEOUT`).
    pub fn new(
        store: Arc<MemoryStore<C>>,
        max_attempts: u32,
        window: Duration,
    ) -> Result<Self, ConfigError> {
        let keys = *store.key_hasher();
        Ok(Lockout {
            store,
            rules: Rules::new(max_attempts, window)?,
            failures_ns: keys.namespace("tower-shield/api-key/failures"),
            lock_ns: keys.namespace("tower-shield/api-key/lock"),
        })
    }

    /// How much longer `client` is locked out, or `None` when it is not. Charges nothing.
    pub fn locked_for(&self, client: Key) -> Option<Duration> {
        let lock_key = client.in_namespace(&self.lock_ns);
        self.rules
            .lock_wait(self.store.peek(lock_key, &self.rules.lock, 1))
    }

    /// Counts a failed attempt of `client`, locking it out when it was the last one allowed.
    pub fn record_failure(&self, client: Key) -> Failure {
        let failures_key = client.in_namespace(&self.failures_ns);
        let failures = self.store.check(failures_key, &self.rules.failures);
        if let Some(counted) = self.rules.counted(failures) {
            return counted;
        }
        let lock_key = client.in_namespace(&self.lock_ns);
        let lock = self.store.check(lock_key, &self.rules.lock);
        self.store.reset(failures_key);
        self.rules.locked(lock)
    }

    /// Forgets the failures of `client` after a success.
    pub fn record_success(&self, client: Key) {
        self.store.reset(client.in_namespace(&self.failures_ns));
    }

    /// The failures allowed within the window.
    pub fn max_attempts(&self) -> u32 {
        self.rules.max_attempts
    }

    /// The window, which is also how long a lock lasts.
    pub fn window(&self) -> Duration {
        self.rules.window
    }

    /// The store the counts live in.
    pub fn store(&self) -> &Arc<MemoryStore<C>> {
        &self.store
    }
}

impl<C: Clock> std::fmt::Debug for Lockout<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("max_attempts", &self.rules.max_attempts)
            .field("window", &self.rules.window)
            .finish_non_exhaustive()
    }
}

/// The bucket names inside a client's hash tag on Redis. Fixed values rather than
/// [`Namespace`]s: a namespace is hashed under the store's secret, and every instance must
/// name a client's buckets alike with or without a shared secret. The bytes are
/// ASCII, so the names read in the key's hex (`…:6170692d6b65793a6661696c75726573`).
#[cfg(feature = "redis")]
const FAILURES: Key = Key::from_u128(u128::from_be_bytes(*b"api-key:failures"));
#[cfg(feature = "redis")]
const LOCK: Key = Key::from_u128(u128::from_be_bytes(*b"api-key:lock-out"));

/// The [`Lockout`] on a [`RedisStore`] (feature `redis`): the same two buckets, the same
/// decisions, shared by every instance that uses the same Redis and key prefix. A client
/// locked out through one instance is locked out on all of them.
///
/// A client's buckets live under its own hash tag, at
/// `<prefix>v1:{<client as 32 hex digits>}:<bucket>` (see
/// [`RedisStore::redis_key`]), so both share one Redis Cluster slot. Their names do not
/// depend on the store's secret, but the client's [`Key`] must: [`Key::from_ip`] (what
/// [`RequireApiKey`](super::RequireApiKey) uses) is the same in every process, a hashed
/// identifier only under a shared secret.
///
/// Every call is one Redis round trip (`EVALSHA` of the GCRA script, or `DEL`), except the
/// failure that locks: it takes the lock and forgets the failures, three round trips. Calls
/// fail with [`StoreError`] after the store's timeout, or at once while its circuit breaker is
/// open; what to do then is the caller's choice ([`RequireApiKeyBuilder::redis`] makes it with
/// a [`StoreFailurePolicy`](crate::limiter::StoreFailurePolicy)).
///
/// [`RequireApiKeyBuilder::redis`]: super::RequireApiKeyBuilder::redis
///
/// ```no_run
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use tower_shield::api_key::{Failure, RedisLockout};
/// use tower_shield::limiter::{Key, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/").key_prefix("app:").build()?;
/// let lockout = RedisLockout::new(store, 3, Duration::from_secs(300))?;
/// let client = Key::from_ip("203.0.113.9".parse::<IpAddr>()?);
///
/// if lockout.locked_for(client).await?.is_none() {
///     // … a failed login:
///     if let Failure::Locked(wait) = lockout.record_failure(client).await? {
///         println!("locked out for {wait:?}");
///     }
/// }
/// # Ok(()) }
/// ```
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisLockout {
    store: RedisStore,
    rules: Rules,
}

/// What one look at a client's two buckets on Redis found.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Standing {
    /// How much longer the client is locked out.
    pub(crate) locked_for: Option<Duration>,
    /// Whether failures are counted, so a success has something to forget.
    pub(crate) has_failures: bool,
}

#[cfg(feature = "redis")]
impl RedisLockout {
    /// A lockout after `max_attempts` failures within `window`, lasting `window`, kept in
    /// `store`; the same settings and problems as [`Lockout::new`]. Does not connect.
    pub fn new(
        store: RedisStore,
        max_attempts: u32,
        window: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(RedisLockout {
            store,
            rules: Rules::new(max_attempts, window)?,
        })
    }

    /// How much longer `client` is locked out, or `None` when it is not. Charges nothing.
    pub async fn locked_for(&self, client: Key) -> Result<Option<Duration>, StoreError> {
        Ok(self.standing(client).await?.locked_for)
    }

    /// The lock and whether there are failures to forget, in one round trip: what the layer
    /// asks before each attempt, so that a success costs no second round trip unless the
    /// client has failures to forget.
    pub(crate) async fn standing(&self, client: Key) -> Result<Standing, StoreError> {
        let checks = [
            Check::new(LOCK, &self.rules.lock),
            Check::new(FAILURES, &self.rules.failures).cost(0),
        ];
        match self.store.peek_each(client, &checks).await?[..] {
            [lock, failures] => Ok(Standing {
                locked_for: self.rules.lock_wait(lock),
                has_failures: !failures.reset_after().is_zero(),
            }),
            _ => Err(StoreError::Protocol(
                "one decision per bucket expected".into(),
            )),
        }
    }

    /// Counts a failed attempt of `client`, locking it out when it was the last one allowed.
    pub async fn record_failure(&self, client: Key) -> Result<Failure, StoreError> {
        let failures = self.check(client, FAILURES, &self.rules.failures).await?;
        if let Some(counted) = self.rules.counted(failures) {
            return Ok(counted);
        }
        let lock = self.check(client, LOCK, &self.rules.lock).await?;
        // The lock is in force whatever happens next, so it is the answer even if forgetting
        // the failures fails (Redis gone between the calls): failures left standing only make
        // the first failure after the lock lock again, the strict side.
        let _ = self.store.reset_tagged(client, FAILURES).await;
        Ok(self.rules.locked(lock))
    }

    /// Forgets the failures of `client` after a success.
    pub async fn record_success(&self, client: Key) -> Result<(), StoreError> {
        self.store.reset_tagged(client, FAILURES).await.map(drop)
    }

    /// The failures allowed within the window.
    pub fn max_attempts(&self) -> u32 {
        self.rules.max_attempts
    }

    /// The window, which is also how long a lock lasts.
    pub fn window(&self) -> Duration {
        self.rules.window
    }

    /// The store the counts live in.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    async fn check(&self, client: Key, bucket: Key, quota: &Quota) -> Result<Decision, StoreError> {
        let check = [Check::new(bucket, quota)];
        Ok(self.store.check_all_tagged(client, &check).await?.binding)
    }
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisLockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockout")
            .field("max_attempts", &self.rules.max_attempts)
            .field("window", &self.rules.window)
            .field("store", &self.store)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::ManualClock;

    fn lockout(max: u32, secs: u64) -> (Lockout<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap());
        (
            Lockout::new(store, max, Duration::from_secs(secs)).unwrap(),
            clock,
        )
    }

    #[test]
    fn max_failures_within_the_window_lock() {
        let (l, clock) = lockout(5, 300);
        let c = Key::from_u128(0xc);
        for i in 0..4 {
            assert_eq!(l.record_failure(c), Failure::Counted { remaining: 4 - i });
            clock.advance(Duration::from_secs(70));
        }
        // the fifth failure, 280 s after the first
        assert_eq!(
            l.record_failure(c),
            Failure::Locked(Duration::from_secs(300))
        );
        clock.advance(Duration::from_secs(299));
        assert_eq!(l.locked_for(c), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.locked_for(c), None);
        // after the lock the count starts over
        assert_eq!(l.record_failure(c), Failure::Counted { remaining: 4 });
    }

    #[test]
    fn failures_a_window_apart_never_lock() {
        let (l, clock) = lockout(2, 60);
        let c = Key::from_u128(0xc);
        for _ in 0..20 {
            assert_eq!(l.record_failure(c), Failure::Counted { remaining: 1 });
            clock.advance(Duration::from_secs(60));
        }
    }

    #[test]
    fn success_resets_and_clients_are_separate() {
        let (l, _clock) = lockout(2, 60);
        let (a, b) = (Key::from_u128(0xa), Key::from_u128(0xb));
        assert_eq!(l.record_failure(a), Failure::Counted { remaining: 1 });
        l.record_success(a);
        assert_eq!(l.record_failure(a), Failure::Counted { remaining: 1 });
        assert!(matches!(l.record_failure(a), Failure::Locked(_)));
        assert!(l.locked_for(a).is_some());
        assert_eq!(l.locked_for(b), None);
    }

    #[test]
    fn zero_settings_are_refused() {
        let store = Arc::new(MemoryStore::builder().build().unwrap());
        let err = Lockout::new(store, 0, Duration::ZERO).unwrap_err();
        assert_eq!(err.problems().len(), 2);
    }
}
