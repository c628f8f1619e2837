//! Auth-attempt lockout on the token-bucket core: failures are requests against a quota, in
//! any [`LimiterStore`] (in memory, in Redis, or your own), with one set of rules.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::{Check, Decision, Key, LimiterStore, MemoryStore, Quota, StoreError, Verdict};

/// Locks a client out after too many failed authentications (`MAX_AUTH_ATTEMPTS` within
/// `AUTH_ATTEMPT_TIMEOUT`), with two token buckets of a [`LimiterStore`], which the rate
/// limiter may share:
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
/// algorithm or a background task.
///
/// A client's buckets are the keys `api-key:failures` and `api-key:lock-out` (as ASCII
/// bytes) under the client's [`Key`] as the tag (see [`LimiterStore`]): on Redis they live at
/// `<prefix>v1:{<client as 32 hex digits>}:<bucket>`, in one Cluster slot, named alike by
/// every instance with or without a shared secret. [`Key::from_ip`] (what
/// [`RequireApiKey`](super::RequireApiKey) uses) is the same in every process.
///
/// Limits worth knowing:
///
/// - Failures are counted per client (address, IPv6 by prefix), not per key: every guess is
///   a different key, so there is no account to count against. An attacker spread over many
///   addresses gets `max_attempts` guesses per address per window; with 256-bit keys that
///   buys nothing, and the lockout is there to stop noise and to make guessing visible.
/// - At a [`MemoryStore`]'s key cap, entries closest to expiry are evicted first; a lock is a
///   far-future entry, so it is among the last to go, but a flood of new clients can still
///   push it out. Size `max_keys` for the expected number of clients.
/// - A [`MemoryStore`] is per process: behind several replicas each keeps its own counts; a
///   [`RedisStore`](crate::limiter::RedisStore) (feature `redis`) shares them.
///
/// Every method answers with a future, ready at once on a [`MemoryStore`]. Usable on its
/// own, for a login handler:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_shield::api_key::{Failure, Lockout};
/// use tower_shield::limiter::{Key, ManualClock, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new();
/// let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build()?);
/// let lockout = Lockout::new(store, 3, Duration::from_secs(300))?;
/// let client = Key::from_ip("203.0.113.9".parse()?);
///
/// assert_eq!(lockout.record_failure(client).await?, Failure::Counted { remaining: 2 });
/// assert_eq!(lockout.record_failure(client).await?, Failure::Counted { remaining: 1 });
/// assert_eq!(lockout.record_failure(client).await?, Failure::Locked(Duration::from_secs(300)));
/// assert_eq!(lockout.locked_for(client).await?, Some(Duration::from_secs(300)));
///
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(lockout.locked_for(client).await?, None);
/// # Ok(())
/// # }
/// ```
pub struct Lockout<St = MemoryStore> {
    store: Arc<St>,
    rules: Rules,
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
    /// Not counted: the store admits without limits now (a Redis store that fails open while
    /// Redis cannot answer).
    NotCounted,
}

/// The bucket names inside a client's tag. Fixed values rather than namespaces: a namespace
/// is hashed under the store's secret, and every instance must name a client's buckets alike
/// with or without a shared secret. The bytes are ASCII, so the names read in the key's hex
/// (`…:6170692d6b65793a6661696c75726573`).
pub(crate) const FAILURES: Key = Key::from_u128(u128::from_be_bytes(*b"api-key:failures"));
pub(crate) const LOCK: Key = Key::from_u128(u128::from_be_bytes(*b"api-key:lock-out"));

/// The two quotas of a lockout and how their decisions read: the one place the lockout's
/// logic lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    pub(crate) failures: Quota,
    pub(crate) lock: Quota,
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
    pub(crate) fn lock_wait(&self, peek: Decision) -> Option<Duration> {
        if peek.is_allowed() {
            None
        } else {
            Some(peek.retry_after().unwrap_or(self.window))
        }
    }

    /// What one look at both buckets found: the lock, and whether there are failures to
    /// forget.
    pub(crate) fn standing(&self, peeked: &crate::limiter::Decisions) -> Standing {
        Standing {
            locked_for: peeked.get(0).and_then(|lock| self.lock_wait(lock)),
            has_failures: peeked
                .get(1)
                .is_some_and(|failures| !failures.reset_after().is_zero()),
        }
    }

    /// The outcome of a failure the failures bucket absorbed, or `None` when it took the last
    /// token (or found none): then the lock is to be taken and the failures forgotten.
    pub(crate) fn counted(&self, failures: Verdict) -> Option<Failure> {
        if failures.is_unlimited() {
            return Some(Failure::NotCounted);
        }
        let failures = failures.binding;
        (failures.is_allowed() && failures.remaining() > 0).then(|| Failure::Counted {
            remaining: failures.remaining(),
        })
    }

    /// The outcome of taking the lock token.
    pub(crate) fn locked(&self, lock: Verdict) -> Failure {
        if lock.is_unlimited() {
            Failure::NotCounted
        } else if lock.binding.is_allowed() {
            Failure::Locked(self.window)
        } else {
            // A concurrent failure locked it first; report what is left of that lock.
            Failure::Locked(lock.binding.retry_after().unwrap_or(self.window))
        }
    }

    /// The look at both buckets: the lock (cost 1) and the failures (cost 0).
    pub(crate) fn look(&self) -> [Check<'_>; 2] {
        [
            Check::new(LOCK, &self.lock),
            Check::new(FAILURES, &self.failures).cost(0),
        ]
    }
}

/// What one look at a client's two buckets found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Standing {
    /// How much longer the client is locked out.
    pub(crate) locked_for: Option<Duration>,
    /// Whether failures are counted, so a success has something to forget.
    pub(crate) has_failures: bool,
}

impl<St: LimiterStore> Lockout<St> {
    /// A lockout after `max_attempts` failures within `window`, lasting `window`, kept in
    /// `store`. Both must be non-zero (problems named `MAX_AUTH_ATTEMPTS` and
    /// `AUTH_ATTEMPT_TIMEOUT`).
    pub fn new(store: Arc<St>, max_attempts: u32, window: Duration) -> Result<Self, ConfigError> {
        Ok(Lockout {
            store,
            rules: Rules::new(max_attempts, window)?,
        })
    }

    /// How much longer `client` is locked out, or `None` when it is not. Charges nothing.
    pub async fn locked_for(&self, client: Key) -> Result<Option<Duration>, StoreError> {
        let peeked = self.store.peek_in(client, &self.rules.look()).await?;
        Ok(self.rules.standing(&peeked).locked_for)
    }

    /// Counts a failed attempt of `client`, locking it out when it was the last one allowed.
    pub async fn record_failure(&self, client: Key) -> Result<Failure, StoreError> {
        let failures = [Check::new(FAILURES, &self.rules.failures)];
        let failures = self.store.check_in(client, &failures).await?;
        if let Some(counted) = self.rules.counted(failures) {
            return Ok(counted);
        }
        let lock = [Check::new(LOCK, &self.rules.lock)];
        let lock = self.store.check_in(client, &lock).await?;
        // The lock is in force whatever happens next, so it is the answer even if forgetting
        // the failures fails: failures left standing only make the first failure after the
        // lock lock again, the strict side.
        let _ = self.store.reset_in(client, FAILURES).await;
        Ok(self.rules.locked(lock))
    }

    /// Forgets the failures of `client` after a success.
    pub async fn record_success(&self, client: Key) -> Result<(), StoreError> {
        self.store.reset_in(client, FAILURES).await.map(drop)
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
    pub fn store(&self) -> &Arc<St> {
        &self.store
    }

    pub(crate) fn rules(&self) -> &Rules {
        &self.rules
    }
}

impl<St> std::fmt::Debug for Lockout<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("max_attempts", &self.rules.max_attempts)
            .field("window", &self.rules.window)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::ManualClock;

    /// The answer of a future that is ready at once, as every answer of a `MemoryStore` is.
    fn now<T>(future: impl Future<Output = Result<T, StoreError>>) -> T {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(future).poll(&mut cx) {
            std::task::Poll::Ready(Ok(value)) => value,
            _ => panic!("a memory store answers at once"),
        }
    }

    fn lockout(max: u32, secs: u64) -> (Lockout<MemoryStore<ManualClock>>, ManualClock) {
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
            assert_eq!(
                now(l.record_failure(c)),
                Failure::Counted { remaining: 4 - i }
            );
            clock.advance(Duration::from_secs(70));
        }
        // the fifth failure, 280 s after the first
        assert_eq!(
            now(l.record_failure(c)),
            Failure::Locked(Duration::from_secs(300))
        );
        clock.advance(Duration::from_secs(299));
        assert_eq!(now(l.locked_for(c)), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(now(l.locked_for(c)), None);
        // after the lock the count starts over
        assert_eq!(now(l.record_failure(c)), Failure::Counted { remaining: 4 });
    }

    #[test]
    fn failures_a_window_apart_never_lock() {
        let (l, clock) = lockout(2, 60);
        let c = Key::from_u128(0xc);
        for _ in 0..20 {
            assert_eq!(now(l.record_failure(c)), Failure::Counted { remaining: 1 });
            clock.advance(Duration::from_secs(60));
        }
    }

    #[test]
    fn success_resets_and_clients_are_separate() {
        let (l, _clock) = lockout(2, 60);
        let (a, b) = (Key::from_u128(0xa), Key::from_u128(0xb));
        assert_eq!(now(l.record_failure(a)), Failure::Counted { remaining: 1 });
        now(l.record_success(a));
        assert_eq!(now(l.record_failure(a)), Failure::Counted { remaining: 1 });
        assert!(matches!(now(l.record_failure(a)), Failure::Locked(_)));
        assert!(now(l.locked_for(a)).is_some());
        assert_eq!(now(l.locked_for(b)), None);
    }

    #[test]
    fn zero_settings_are_refused() {
        let store = Arc::new(MemoryStore::builder().build().unwrap());
        let err = Lockout::new(store, 0, Duration::ZERO).unwrap_err();
        assert_eq!(err.problems().len(), 2);
    }
}
