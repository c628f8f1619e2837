//! Auth-attempt lockout on the token-bucket core: failures are requests against a quota.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::{Clock, CoarseClock, Key, MemoryStore, Namespace, Quota};

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
/// let client = Key::hashed(b"203.0.113.9");
///
/// assert_eq!(lockout.record_failure(client), Failure::Counted { remaining: 2 });
/// assert_eq!(lockout.record_failure(client), Failure::Counted { remaining: 1 });
/// assert_eq!(lockout.record_failure(client), Failure::Locked(Duration::from_secs(300)));
/// assert_eq!(lockout.locked_for(client), Some(Duration::from_secs(300)));
///
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(lockout.locked_for(client), None);
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
pub struct Lockout<C: Clock = CoarseClock> {
    store: Arc<MemoryStore<C>>,
    failures: Quota,
    lock: Quota,
    failures_ns: Namespace,
    lock_ns: Namespace,
    max_attempts: u32,
    window: Duration,
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

impl<C: Clock> Lockout<C> {
    /// A lockout after `max_attempts` failures within `window`, lasting `window`, kept in
    /// `store`. Both must be non-zero (problems named `MAX_AUTH_ATTEMPTS` and
    /// `AUTH_ATTEMPT_TIMEOUT`).
    pub fn new(
        store: Arc<MemoryStore<C>>,
        max_attempts: u32,
        window: Duration,
    ) -> Result<Self, ConfigError> {
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
        Ok(Lockout {
            store,
            failures,
            lock,
            failures_ns: Namespace::new("tower-shield/api-key/failures"),
            lock_ns: Namespace::new("tower-shield/api-key/lock"),
            max_attempts,
            window,
        })
    }

    /// How much longer `client` is locked out, or `None` when it is not. Charges nothing.
    pub fn locked_for(&self, client: Key) -> Option<Duration> {
        let d = self
            .store
            .peek(client.in_namespace(&self.lock_ns), &self.lock, 1);
        if d.is_allowed() {
            None
        } else {
            Some(d.retry_after().unwrap_or(self.window))
        }
    }

    /// Counts a failed attempt of `client`, locking it out when it was the last one allowed.
    pub fn record_failure(&self, client: Key) -> Failure {
        let failures_key = client.in_namespace(&self.failures_ns);
        let d = self.store.check(failures_key, &self.failures);
        if d.is_allowed() && d.remaining() > 0 {
            return Failure::Counted {
                remaining: d.remaining(),
            };
        }
        let lock_key = client.in_namespace(&self.lock_ns);
        let lock = self.store.check(lock_key, &self.lock);
        self.store.reset(failures_key);
        if lock.is_allowed() {
            Failure::Locked(self.window)
        } else {
            // A concurrent failure locked it first; report what is left of that lock.
            Failure::Locked(lock.retry_after().unwrap_or(self.window))
        }
    }

    /// Forgets the failures of `client` after a success.
    pub fn record_success(&self, client: Key) {
        self.store.reset(client.in_namespace(&self.failures_ns));
    }

    /// The failures allowed within the window.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The window, which is also how long a lock lasts.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The store the counts live in.
    pub fn store(&self) -> &Arc<MemoryStore<C>> {
        &self.store
    }
}

impl<C: Clock> std::fmt::Debug for Lockout<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("max_attempts", &self.max_attempts)
            .field("window", &self.window)
            .finish_non_exhaustive()
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
        let c = Key::hashed(b"c");
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
        let c = Key::hashed(b"c");
        for _ in 0..20 {
            assert_eq!(l.record_failure(c), Failure::Counted { remaining: 1 });
            clock.advance(Duration::from_secs(60));
        }
    }

    #[test]
    fn success_resets_and_clients_are_separate() {
        let (l, _clock) = lockout(2, 60);
        let (a, b) = (Key::hashed(b"a"), Key::hashed(b"b"));
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
