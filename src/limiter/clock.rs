use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic source of time for the limiter, in nanoseconds since an epoch of its own.
///
/// A store reads its clock once per check, from the clock it was built with: building a clock
/// per request is what makes tower_governor's refusals slow.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's epoch. Never decreases.
    fn now(&self) -> u64;
}

/// The default clock: the processor's time-stamp counter through [`quanta`], scaled to
/// nanoseconds, or the operating system's monotonic clock where the counter is unreliable.
///
/// Each clock is its own: building one starts no thread and sets no global (quanta calibrates
/// the counter once, on the first `QuantaClock::new()` of a process). Clones share the epoch.
///
/// [`quanta`]: https://docs.rs/quanta
#[derive(Clone, Debug)]
pub struct QuantaClock {
    clock: quanta::Clock,
    origin: u64,
}

impl QuantaClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        QuantaClock { clock, origin }
    }
}

impl Default for QuantaClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for QuantaClock {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// A clock over [`Instant`]: one read of the operating system's monotonic clock per check.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// A clock that moves only when told to, for tests. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use tower_shield::limiter::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let view = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(view.now(), 1_500_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating at the end of time).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Moves the clock forward to `nanos`; a time in the past is ignored, so it stays monotonic.
    pub fn set(&self, nanos: u64) {
        self.now.fetch_max(nanos, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

impl<C: Clock> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_advance_from_their_own_epoch() {
        fn advances(clock: &dyn Clock) {
            let start = clock.now();
            std::thread::sleep(Duration::from_millis(20));
            let later = clock.now();
            assert!(later >= start + 19_000_000, "{start} then {later}");
            assert!(later < start + 10_000_000_000, "{start} then {later}");
        }
        advances(&QuantaClock::new());
        advances(&MonotonicClock::new());
    }

    #[test]
    fn manual_clock_is_monotonic() {
        let c = ManualClock::new();
        c.set(10);
        c.set(5);
        assert_eq!(c.now(), 10);
        c.advance(Duration::MAX);
        assert_eq!(c.now(), u64::MAX);
    }
}
