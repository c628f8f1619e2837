//! The GCRA (generic cell rate algorithm) in integer nanoseconds, with no state of its own.
//!
//! A key's whole state is its theoretical arrival time `tat`: the instant at which its bucket
//! is full again. With `T` the refill interval and `burst × T` the capacity, a request costing
//! `n` is admitted at `now` iff `max(tat, now) + n·T ≤ now + burst·T`, and then
//! `tat' = max(tat, now) + n·T`. A `tat` at or before `now` is the same as a fresh key, which
//! is what makes dropping such keys lossless. `tat == 0` stands for "no state".

use std::time::Duration;

use super::Quota;

/// The answer to one check, all from one snapshot of the key's state and one clock reading.
///
/// ```
/// use std::time::Duration;
/// use tower_shield::limiter::{Key, ManualClock, MemoryStore, Quota};
///
/// let clock = ManualClock::new();
/// let store = MemoryStore::builder().clock(clock.clone()).build()?;
/// let quota = Quota::per(2, Duration::from_secs(10))?;
/// let key = Key::from_u128(1);
///
/// let d = store.check(key, &quota);
/// assert!(d.is_allowed());
/// assert_eq!((d.limit(), d.remaining()), (2, 1));
/// store.check(key, &quota);
///
/// let denied = store.check(key, &quota);
/// assert!(!denied.is_allowed());
/// let wait = denied.retry_after().unwrap();
/// assert_eq!(wait, Duration::from_secs(5));
///
/// // A client that waits exactly `retry_after` is admitted.
/// clock.advance(wait);
/// assert!(store.check(key, &quota).is_allowed());
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    limit: u32,
    /// Nanoseconds of allowance left after this decision; `remaining` is `slack / interval`,
    /// divided only when asked for, since a division is a tenth of a whole check.
    slack: u64,
    interval: u64,
    reset_after: u64,
    /// `None` when allowed, or when the cost is larger than the burst and waiting cannot help.
    retry_after: Option<u64>,
}

impl Decision {
    /// What an empty all-or-nothing check reports: admitted, against nothing.
    pub(crate) const NOTHING_CHECKED: Decision = Decision {
        allowed: true,
        limit: 0,
        slack: 0,
        interval: 1,
        reset_after: 0,
        retry_after: None,
    };

    /// A decision from its raw fields (nanoseconds), for stores that compute it elsewhere.
    #[cfg(feature = "redis")]
    pub(crate) fn from_raw(
        allowed: bool,
        limit: u32,
        slack: u64,
        interval: u64,
        reset_after: u64,
        retry_after: Option<u64>,
    ) -> Decision {
        Decision {
            allowed,
            limit,
            slack,
            interval,
            reset_after,
            retry_after,
        }
    }

    /// Whether the request was admitted (and, unless it was a peek, charged).
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The burst of the quota: how many requests a full bucket holds.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many requests of cost 1 could be admitted right now, after this decision.
    pub fn remaining(&self) -> u32 {
        // slack ≤ burst × interval, so the quotient fits the burst's u32.
        (self.slack / self.interval) as u32
    }

    /// The time until the bucket is full again (zero for a key that has no debt).
    pub fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.reset_after)
    }

    /// The time until one more request of cost 1 becomes available: zero for a full bucket,
    /// otherwise the rest of the current refill interval. This is draft-10's `t` ("time until
    /// additional quota is made available"); for a refused request of cost 1 it equals
    /// [`retry_after`](Self::retry_after).
    pub fn replenish_after(&self) -> Duration {
        if self.reset_after == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.interval - self.slack % self.interval)
        }
    }

    /// [`remaining`](Self::remaining) and [`replenish_after`](Self::replenish_after) from one
    /// division, for callers (the rate-limit headers) that need both.
    #[inline]
    pub fn remaining_and_replenish(&self) -> (u32, Duration) {
        let (whole, part) = (self.slack / self.interval, self.slack % self.interval);
        let replenish = if self.reset_after == 0 {
            0
        } else {
            self.interval - part
        };
        (whole as u32, Duration::from_nanos(replenish))
    }

    /// For a refused request, the wait after which the same request is admitted.
    ///
    /// `None` when the request was admitted, and when its cost exceeds the burst so that no
    /// wait can ever admit it.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after.map(Duration::from_nanos)
    }

    /// The decision for a key that is not limited at all (an exempt route, an allow-listed
    /// address): allowed, with the full burst remaining.
    pub fn unlimited(quota: &Quota) -> Decision {
        Decision {
            allowed: true,
            limit: quota.burst(),
            slack: quota.capacity_nanos(),
            interval: quota.interval_nanos(),
            reset_after: 0,
            retry_after: None,
        }
    }

    /// Orders two decisions by how strongly they bind: any refusal before any admission; among
    /// refusals the longer wait (never-admissible longest); among admissions the fewer
    /// remaining. Returns `true` when `self` binds more than `other`.
    pub(crate) fn binds_more_than(&self, other: &Decision) -> bool {
        match (self.allowed, other.allowed) {
            (false, true) => true,
            (true, false) => false,
            (false, false) => {
                self.retry_after.unwrap_or(u64::MAX) > other.retry_after.unwrap_or(u64::MAX)
            }
            (true, true) => self.remaining() < other.remaining(),
        }
    }
}

/// Evaluates a request of `cost` against the stored `tat` at `now`.
///
/// Returns the decision and, when admitted with a cost above zero, the new `tat` to store.
#[inline]
pub(crate) fn evaluate(tat: u64, now: u64, quota: &Quota, cost: u32) -> (Decision, Option<u64>) {
    let t = quota.interval_nanos();
    let capacity = quota.capacity_nanos();
    let base = tat.max(now);
    let horizon = now.saturating_add(capacity);
    let limit = quota.burst();
    if cost > limit {
        return (
            Decision {
                allowed: false,
                limit,
                slack: horizon.saturating_sub(base),
                interval: t,
                reset_after: base - now,
                retry_after: None,
            },
            None,
        );
    }
    // cost ≤ burst, so cost·T ≤ capacity, which `Quota` keeps below u64::MAX / 4.
    let new_tat = base + u64::from(cost) * t;
    if new_tat <= horizon {
        let decision = Decision {
            allowed: true,
            limit,
            slack: horizon - new_tat,
            interval: t,
            reset_after: new_tat - now,
            retry_after: None,
        };
        (decision, (cost > 0).then_some(new_tat))
    } else {
        let decision = Decision {
            allowed: false,
            limit,
            slack: horizon.saturating_sub(base),
            interval: t,
            reset_after: base - now,
            retry_after: Some(new_tat - horizon),
        };
        (decision, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: u32, secs: u64) -> Quota {
        Quota::per(n, Duration::from_secs(secs)).unwrap()
    }

    #[test]
    fn fresh_key_spends_its_burst_then_waits_one_interval() {
        let quota = q(3, 3);
        let mut tat = 0;
        let now = 1_000;
        for left in [2, 1, 0] {
            let (d, new) = evaluate(tat, now, &quota, 1);
            assert!(d.is_allowed());
            assert_eq!(d.remaining(), left);
            tat = new.unwrap();
        }
        let (d, new) = evaluate(tat, now, &quota, 1);
        assert!(!d.is_allowed());
        assert_eq!(new, None);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(d.reset_after(), Duration::from_secs(3));
        let (d, _) = evaluate(tat, now + 1_000_000_000 - 1, &quota, 1);
        assert!(!d.is_allowed());
        let (d, _) = evaluate(tat, now + 1_000_000_000, &quota, 1);
        assert!(d.is_allowed());
    }

    #[test]
    fn weighted_cost_and_impossible_cost() {
        let quota = q(10, 10);
        let (d, tat) = evaluate(0, 5, &quota, 10);
        assert!(d.is_allowed());
        assert_eq!(d.remaining(), 0);
        let (d, _) = evaluate(tat.unwrap(), 5, &quota, 3);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(3)));
        let (d, _) = evaluate(0, 5, &quota, 11);
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(), None);
        assert_eq!(d.remaining(), 10);
    }

    #[test]
    fn replenish_after_is_the_rest_of_the_interval() {
        let quota = q(2, 2);
        let (d, tat) = evaluate(0, 0, &quota, 1);
        assert_eq!(d.replenish_after(), Duration::from_secs(1));
        let (d, tat) = evaluate(tat.unwrap(), 300_000_000, &quota, 1);
        assert_eq!(d.replenish_after(), Duration::from_millis(700));
        let (denied, _) = evaluate(tat.unwrap(), 300_000_000, &quota, 1);
        assert_eq!(Some(denied.replenish_after()), denied.retry_after());
        let (full, _) = evaluate(0, 5, &quota, 0);
        assert_eq!(full.replenish_after(), Duration::ZERO);
        for d in [denied, full] {
            assert_eq!(
                d.remaining_and_replenish(),
                (d.remaining(), d.replenish_after())
            );
        }
    }

    #[test]
    fn peek_charges_nothing() {
        let quota = q(2, 2);
        let (d, new) = evaluate(0, 7, &quota, 0);
        assert!(d.is_allowed());
        assert_eq!((d.remaining(), new), (2, None));
    }

    #[test]
    fn binding_order() {
        let quota = q(5, 5);
        let (allowed_many, _) = evaluate(0, 0, &quota, 1);
        let (allowed_few, _) = evaluate(0, 0, &quota, 5);
        let (denied_short, _) = evaluate(5_000_000_000, 0, &quota, 1);
        let (never, _) = evaluate(0, 0, &quota, 6);
        assert!(allowed_few.binds_more_than(&allowed_many));
        assert!(denied_short.binds_more_than(&allowed_few));
        assert!(never.binds_more_than(&denied_short));
    }
}
