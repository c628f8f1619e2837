use std::fmt;
use std::time::Duration;

use crate::error::{ConfigError, ConfigErrors};

/// The longest span a quota may cover (about 146 years), so that `now + burst × interval`
/// always fits in the 64-bit nanosecond arithmetic of the limiter.
const MAX_SPAN_NANOS: u128 = (u64::MAX / 4) as u128;

/// How much a key may do: `requests` per `window`, with a burst of `requests` unless set.
///
/// A quota is written the way limits are spoken: `Quota::per(10, 300 s)` is "10 per 300 s",
/// `Quota::per_minute(60)` is "60 per minute". Requests refill evenly (one every
/// `window / requests`), and up to `burst` may be spent at once.
///
/// ```
/// use std::time::Duration;
/// use tower_shield::limiter::Quota;
///
/// let q = Quota::per(10, Duration::from_secs(300))?;
/// assert_eq!(q.burst(), 10);
/// assert_eq!(q.interval(), Duration::from_secs(30));
///
/// // `per_second(n)` means n per second, never one per n seconds.
/// assert_eq!(Quota::per_second(4000)?.interval(), Duration::from_micros(250));
///
/// // Zero is refused with a message naming the setting.
/// assert!(Quota::per_minute(0).is_err());
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Nanoseconds between two refills (the GCRA emission interval), rounded up so a quota is
    /// never looser than written.
    interval: u64,
    /// Requests the bucket holds when full.
    burst: u32,
    /// `burst × interval`: how far ahead of now the theoretical arrival time may run.
    capacity: u64,
    /// The window as written, for `RateLimit-Policy`.
    window: Duration,
    requests: u32,
}

impl Quota {
    /// `requests` per `window`, with a burst of `requests`.
    pub fn per(requests: u32, window: Duration) -> Result<Quota, ConfigError> {
        Quota::build(requests, window, requests)
    }

    /// `requests` per second.
    pub fn per_second(requests: u32) -> Result<Quota, ConfigError> {
        Quota::per(requests, Duration::from_secs(1))
    }

    /// `requests` per minute.
    pub fn per_minute(requests: u32) -> Result<Quota, ConfigError> {
        Quota::per(requests, Duration::from_secs(60))
    }

    /// `requests` per hour.
    pub fn per_hour(requests: u32) -> Result<Quota, ConfigError> {
        Quota::per(requests, Duration::from_secs(3600))
    }

    /// One request every `interval`, with no burst.
    pub fn every(interval: Duration) -> Result<Quota, ConfigError> {
        Quota::per(1, interval)
    }

    /// The same refill rate with a different burst (how many requests may be spent at once).
    pub fn with_burst(self, burst: u32) -> Result<Quota, ConfigError> {
        Quota::build(self.requests, self.window, burst)
    }

    fn build(requests: u32, window: Duration, burst: u32) -> Result<Quota, ConfigError> {
        let mut errors = ConfigErrors::default();
        if requests == 0 {
            errors.push(
                "quota.requests",
                "must be at least 1 (to refuse everything, use a block list)",
            );
        }
        if window.is_zero() {
            errors.push("quota.window", "must be longer than zero");
        }
        if burst == 0 && requests != 0 {
            errors.push("quota.burst", "must be at least 1");
        }
        if window.as_nanos() > MAX_SPAN_NANOS {
            errors.push(
                "quota.window",
                format!("{window:?} is longer than the ~146 years a quota may span"),
            );
        }
        errors.finish(|| ())?;
        let interval = window.as_nanos().div_ceil(u128::from(requests));
        let capacity = interval * u128::from(burst);
        if capacity > MAX_SPAN_NANOS {
            return Err(ConfigError::new(
                "quota.burst",
                format!(
                    "a burst of {burst} at one per {:?} spans more than ~146 years",
                    Duration::from_nanos(interval as u64)
                ),
            ));
        }
        Ok(Quota {
            interval: interval as u64,
            burst,
            capacity: capacity as u64,
            window,
            requests,
        })
    }

    /// The number of requests per window, as written.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The window, as written.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How many requests may be spent at once; the `limit` every [`Decision`](super::Decision)
    /// reports.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time it takes to earn one request back.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        self.interval
    }

    pub(crate) fn capacity_nanos(&self) -> u64 {
        self.capacity
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Quota({} per {:?}, burst {})",
            self.requests, self.window, self.burst
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_written() {
        let q = Quota::per_minute(60).unwrap();
        assert_eq!(
            (q.requests(), q.burst(), q.interval()),
            (60, 60, Duration::from_secs(1))
        );
        let q = Quota::per(5, Duration::from_secs(60))
            .unwrap()
            .with_burst(1)
            .unwrap();
        assert_eq!((q.burst(), q.interval()), (1, Duration::from_secs(12)));
        assert_eq!(Quota::every(Duration::from_secs(4)).unwrap().burst(), 1);
    }

    #[test]
    fn interval_rounds_up_so_the_quota_is_never_looser() {
        let q = Quota::per_second(3).unwrap();
        assert_eq!(q.interval_nanos(), 333_333_334);
        assert!(u128::from(q.interval_nanos()) * 3 >= 1_000_000_000);
    }

    #[test]
    fn zero_and_overflow_name_the_setting() {
        let e = Quota::per(0, Duration::ZERO).unwrap_err();
        let settings: Vec<_> = e.problems().iter().map(|p| p.setting()).collect();
        assert_eq!(settings, ["quota.requests", "quota.window"]);
        assert_eq!(
            Quota::per_hour(1)
                .unwrap()
                .with_burst(0)
                .unwrap_err()
                .problems()[0]
                .setting(),
            "quota.burst"
        );
        let e = Quota::per(1, Duration::from_secs(200 * 365 * 86_400)).unwrap_err();
        assert_eq!(e.problems()[0].setting(), "quota.window");
        let e = Quota::every(Duration::from_secs(3600 * 24 * 365))
            .unwrap()
            .with_burst(1000)
            .unwrap_err();
        assert_eq!(e.problems()[0].setting(), "quota.burst");
    }
}
