use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A monotonic source of time for the limiter, in nanoseconds since an epoch of its own.
///
/// A store reads its clock exactly once per check, from the clock it was built with; no clock
/// is ever constructed on the request path (the pitfall that makes tower_governor's 429 path
/// cost 30 µs under virtualisation).
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's epoch. Never decreases.
    fn now(&self) -> u64;
}

const TICK: Duration = Duration::from_millis(1);

struct Ticker {
    origin: Instant,
    now: AtomicU64,
    /// Set when the ticker thread could not be started: readers then ask `Instant` directly.
    stopped: std::sync::atomic::AtomicBool,
}

impl Ticker {
    fn elapsed(&self) -> u64 {
        // u64 nanoseconds last 584 years of uptime.
        self.origin.elapsed().as_nanos() as u64
    }
}

fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<Ticker> = OnceLock::new();
    static START: Once = Once::new();
    let ticker = TICKER.get_or_init(|| Ticker {
        origin: Instant::now(),
        now: AtomicU64::new(0),
        stopped: std::sync::atomic::AtomicBool::new(false),
    });
    START.call_once(|| {
        let spawned = thread::Builder::new()
            .name("tower-shield-clock".into())
            .spawn(move || {
                loop {
                    ticker.now.store(ticker.elapsed(), Ordering::Relaxed);
                    thread::sleep(TICK);
                }
            });
        if spawned.is_err() {
            ticker.stopped.store(true, Ordering::Relaxed);
        }
    });
    ticker
}

/// The default clock: an atomic that one background thread per process refreshes every
/// millisecond, so a reading costs one load instead of a system call.
///
/// Readings lag real time by at most about one millisecond (more if the machine is so loaded
/// that the thread is not scheduled), which only ever makes a limit slightly stricter. All
/// `CoarseClock`s of a process share the thread and the epoch. Should the thread fail to
/// start, readings fall back to [`Instant`], never to a stopped clock.
#[derive(Clone, Copy)]
pub struct CoarseClock {
    ticker: &'static Ticker,
}

impl CoarseClock {
    /// The process-wide coarse clock, starting its thread on first use.
    pub fn new() -> Self {
        CoarseClock { ticker: ticker() }
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoarseClock")
            .field("resolution", &TICK)
            .finish()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> u64 {
        if self.ticker.stopped.load(Ordering::Relaxed) {
            self.ticker.elapsed()
        } else {
            self.ticker.now.load(Ordering::Relaxed)
        }
    }
}

/// A precise clock over [`Instant`]: one system clock read per check (about 25 ns on a
/// virtual machine), for quotas that need sub-millisecond resolution.
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
    fn coarse_clock_advances_and_never_runs_ahead() {
        let clock = CoarseClock::new();
        let start = clock.now();
        thread::sleep(Duration::from_millis(50));
        let reading = clock.now();
        assert!(
            reading <= ticker().elapsed(),
            "a reading is a past instant, never a future one"
        );
        assert!(reading > start, "the ticker thread must advance the clock");
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
