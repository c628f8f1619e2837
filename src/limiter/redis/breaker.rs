//! A circuit breaker with no clock and no I/O of its own: every method takes `now` (any
//! monotonic nanosecond count), so it is tested with plain numbers.
//!
//! Closed: calls go through; `threshold` consecutive failures open it. Open: calls are refused
//! without touching the backend until `cool_down` has passed. Half-open: one trial call goes
//! through (the others are refused); its success closes the breaker, its failure opens it for
//! another cool-down. A trial that never reports (its future was dropped) is given up after
//! one cool-down, so the breaker cannot stay stuck half-open.

/// What the breaker lets a caller do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Call the backend.
    Call,
    /// Call the backend as the one half-open trial.
    Trial,
    /// Do not call: fail at once.
    Refuse,
}

/// A change of state worth logging once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The breaker opened (a degraded episode starts).
    Opened,
    /// The breaker closed again (the episode ends).
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: u64 },
    HalfOpen { trial_expires: u64 },
}

/// The breaker's state machine.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: u64,
    state: State,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` (at least 1) consecutive failures, for
    /// `cool_down` nanoseconds.
    pub(crate) fn new(threshold: u32, cool_down: u64) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            state: State::Closed { failures: 0 },
        }
    }

    /// Whether a call may go to the backend at `now`.
    pub(crate) fn admit(&mut self, now: u64) -> Admit {
        match self.state {
            State::Closed { .. } => Admit::Call,
            State::Open { until }
            | State::HalfOpen {
                trial_expires: until,
            } if now >= until => {
                self.state = State::HalfOpen {
                    trial_expires: now.saturating_add(self.cool_down),
                };
                Admit::Trial
            }
            State::Open { .. } | State::HalfOpen { .. } => Admit::Refuse,
        }
    }

    /// Records a successful call.
    pub(crate) fn success(&mut self) -> Option<Transition> {
        let was_closed = matches!(self.state, State::Closed { .. });
        self.state = State::Closed { failures: 0 };
        (!was_closed).then_some(Transition::Closed)
    }

    /// Records a failed call at `now`.
    pub(crate) fn failure(&mut self, now: u64) -> Option<Transition> {
        match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                self.state = State::Closed {
                    failures: failures + 1,
                };
                None
            }
            State::Closed { .. } => {
                self.open(now);
                Some(Transition::Opened)
            }
            // A failed trial (or a late failure of a call admitted before the breaker
            // opened) keeps the episode going: no new transition to log.
            State::HalfOpen { .. } | State::Open { .. } => {
                self.open(now);
                None
            }
        }
    }

    fn open(&mut self, now: u64) {
        self.state = State::Open {
            until: now.saturating_add(self.cool_down),
        };
    }

    /// Whether calls are being refused (open, or half-open with a trial in flight).
    pub(crate) fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let mut b = Breaker::new(3, S);
        assert_eq!(b.admit(0), Admit::Call);
        assert_eq!(b.failure(0), None);
        assert_eq!(b.failure(1), None);
        assert_eq!(b.success(), None, "a success resets the count");
        assert_eq!(b.failure(2), None);
        assert_eq!(b.failure(3), None);
        assert_eq!(b.failure(4), Some(Transition::Opened));
        assert!(b.is_open());
        assert_eq!(b.admit(5), Admit::Refuse);
        assert_eq!(b.admit(4 + S - 1), Admit::Refuse);
    }

    #[test]
    fn half_open_admits_one_trial_then_closes_or_reopens() {
        let mut b = Breaker::new(1, S);
        assert_eq!(b.failure(0), Some(Transition::Opened));
        assert_eq!(b.admit(S), Admit::Trial);
        assert_eq!(b.admit(S + 1), Admit::Refuse, "only one trial at a time");
        assert_eq!(b.failure(S + 2), None, "a failed trial does not log again");
        assert_eq!(b.admit(2 * S + 1), Admit::Refuse);
        assert_eq!(b.admit(2 * S + 2), Admit::Trial);
        assert_eq!(b.success(), Some(Transition::Closed));
        assert_eq!(b.admit(2 * S + 3), Admit::Call);
        assert!(!b.is_open());
    }

    #[test]
    fn a_lost_trial_is_given_up_after_a_cool_down() {
        let mut b = Breaker::new(2, S);
        b.failure(0);
        b.failure(0);
        assert_eq!(b.admit(S), Admit::Trial);
        // the trial's future is dropped: no success, no failure
        assert_eq!(b.admit(2 * S - 1), Admit::Refuse);
        assert_eq!(b.admit(2 * S), Admit::Trial);
    }
}
