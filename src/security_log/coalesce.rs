//! Flood control for security events: identical events beyond a few per window are counted,
//! not logged, and reported as one summary with `suppressed = N`.
//!
//! An attacker who can trigger a security event (a refused request, a failed login) can
//! trigger a million of them. Logging each one lets the attacker fill disks, bury the
//! interesting lines and run up the log bill (OWASP Logging Cheat Sheet: "ensure logging
//! cannot be used to deplete system resources"). A [`Coalescer`] lets the first
//! `per_window` identical events of each window through and counts the rest in a table of
//! fixed capacity; when the window of an event is over, one summary event, the same event
//! with a `suppressed` field, reports how many were dropped. The summary goes out with the
//! next event emitted after the window (any event), on [`Coalescer::flush_expired`] (which
//! the `SecurityLog` layer calls on each request, at the cost of one atomic load while nothing
//! is pending, and which [`Coalescer::spawn_flusher`] calls from a thread the server starts
//! if it wants one), or on [`Coalescer::flush`] (at shutdown).
//!
//! A coalescer belongs to the layer that emits through it: two layers built with different
//! settings never share counts, and building one starts no thread.
//!
//! "Identical" means every field equal, the client address included. The table holds at
//! most `capacity` distinct events; when it is full the oldest entry is evicted, and its
//! summary emitted first, so no count is lost and memory stays bounded.
//!
//! A flood from many addresses makes every event distinct, so each kind of event (each
//! `owasp` name) also has a budget of distinct events per window
//! ([`Coalescer::with_class_budget`], 20 × `per_window` by default). Beyond it, events of
//! that kind are counted together, whatever their fields, and reported by one summary
//! without a client address. The log of any flood is therefore at most
//! `class budget × kinds` lines per window, plus the summaries.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::SecurityEvent;
use crate::ConfigError;
use crate::error::ConfigErrors;
use crate::limiter::{Clock, MonotonicClock};

/// What a [`Table`] says about one occurrence of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it.
    Pass,
    /// Count it; do not log it.
    Suppress,
}

/// One distinct event: when its window started, how many passed and were suppressed in it,
/// and a copy to describe it in its summary.
#[derive(Debug)]
struct Entry<T> {
    window_start: u64,
    passed: u32,
    suppressed: u64,
    sample: T,
}

/// The budget of one class of events (one `owasp` name) in its current window: distinct
/// events beyond it are counted here, whatever their fields.
#[derive(Debug)]
struct Class<T> {
    window_start: u64,
    passed: u32,
    suppressed: u64,
    sample: Option<T>,
}

/// How many classes a table keeps budgets for; class ids are taken modulo this.
pub(crate) const CLASSES: usize = 24;

/// The pure coalescing table: fingerprints, windows in nanoseconds of some clock, bounded.
#[derive(Debug)]
pub(crate) struct Table<T> {
    entries: HashMap<u64, Entry<T>, foldhash::fast::RandomState>,
    classes: Vec<Class<T>>,
    per_window: u32,
    class_budget: u32,
    window: u64,
    capacity: usize,
    /// When a sweep of expired entries is next worth doing.
    next_sweep: u64,
}

impl<T> Table<T> {
    pub(crate) fn new(per_window: u32, class_budget: u32, window: u64, capacity: usize) -> Self {
        Table {
            entries: HashMap::with_capacity_and_hasher(
                capacity.min(64),
                foldhash::fast::RandomState::default(),
            ),
            classes: (0..CLASSES)
                .map(|_| Class {
                    window_start: 0,
                    passed: 0,
                    suppressed: 0,
                    sample: None,
                })
                .collect(),
            per_window,
            class_budget,
            window,
            capacity,
            next_sweep: window,
        }
    }

    /// Whether `class` may log one more distinct event now; starts its next window (and
    /// reports the last one's count) when the current one is over.
    fn class_open(&mut self, class: usize, now: u64, due: &mut Vec<(T, u64)>) -> bool {
        let window = self.window;
        let c = &mut self.classes[class % CLASSES];
        if now.saturating_sub(c.window_start) >= window {
            if let Some(sample) = c.sample.take().filter(|_| c.suppressed > 0) {
                due.push((sample, c.suppressed));
            }
            c.window_start = now;
            c.passed = 0;
            c.suppressed = 0;
        }
        c.passed < self.class_budget
    }

    fn class_suppress(&mut self, class: usize, sample: impl FnOnce() -> T) -> Verdict {
        let c = &mut self.classes[class % CLASSES];
        c.suppressed += 1;
        c.sample.get_or_insert_with(sample);
        Verdict::Suppress
    }

    /// Records one occurrence of the event `fingerprint`, of class `class`, at `now`.
    /// Summaries that became due (`(sample, suppressed)`) are pushed onto `due`, oldest first,
    /// and must be logged before this occurrence is. `sample` describes the event in its
    /// summary; `class_sample` describes the class's summary, should this occurrence be the
    /// first one over the class budget.
    pub(crate) fn admit(
        &mut self,
        fingerprint: u64,
        class: usize,
        now: u64,
        sample: impl FnOnce() -> T,
        class_sample: impl FnOnce() -> T,
        due: &mut Vec<(T, u64)>,
    ) -> Verdict {
        if now >= self.next_sweep {
            self.sweep(now, due);
        }
        let class_open = self.class_open(class, now, due);
        if let Some(entry) = self.entries.get_mut(&fingerprint) {
            if now.saturating_sub(entry.window_start) < self.window {
                if entry.passed >= self.per_window {
                    entry.suppressed += 1;
                    return Verdict::Suppress;
                }
                if !class_open {
                    return self.class_suppress(class, class_sample);
                }
                entry.passed += 1;
                self.classes[class % CLASSES].passed += 1;
                return Verdict::Pass;
            }
            // A new window for this event: report the last one's count, start afresh.
            if let Some(old) = self.entries.remove(&fingerprint) {
                if old.suppressed > 0 {
                    due.push((old.sample, old.suppressed));
                }
            }
        }
        if self.per_window == 0 {
            return Verdict::Suppress;
        }
        if !class_open {
            return self.class_suppress(class, class_sample);
        }
        self.classes[class % CLASSES].passed += 1;
        if self.entries.len() >= self.capacity {
            self.evict_oldest(due);
        }
        self.entries.insert(
            fingerprint,
            Entry {
                window_start: now,
                passed: 1,
                suppressed: 0,
                sample: sample(),
            },
        );
        Verdict::Pass
    }

    /// Removes every entry whose window is over, reporting those that suppressed something.
    pub(crate) fn sweep(&mut self, now: u64, due: &mut Vec<(T, u64)>) {
        let window = self.window;
        let mut next = u64::MAX;
        let mut expired = Vec::new();
        for (&fp, entry) in &self.entries {
            let end = entry.window_start.saturating_add(window);
            if end <= now {
                expired.push((entry.window_start, fp));
            } else {
                next = next.min(end);
            }
        }
        expired.sort_unstable();
        for (_, fp) in expired {
            if let Some(old) = self.entries.remove(&fp) {
                if old.suppressed > 0 {
                    due.push((old.sample, old.suppressed));
                }
            }
        }
        for c in &mut self.classes {
            if c.window_start.saturating_add(window) <= now {
                if let Some(sample) = c.sample.take().filter(|_| c.suppressed > 0) {
                    due.push((sample, c.suppressed));
                }
                c.suppressed = 0;
                c.passed = 0;
                c.window_start = now;
            }
        }
        self.next_sweep = if next == u64::MAX {
            now.saturating_add(window)
        } else {
            next
        };
    }

    /// Removes every entry, reporting those that suppressed something, oldest first.
    pub(crate) fn drain(&mut self, due: &mut Vec<(T, u64)>) {
        let mut all: Vec<_> = self.entries.drain().map(|(_, e)| e).collect();
        all.sort_by_key(|e| e.window_start);
        due.extend(
            all.into_iter()
                .filter(|e| e.suppressed > 0)
                .map(|e| (e.sample, e.suppressed)),
        );
        for c in &mut self.classes {
            if let Some(sample) = c.sample.take().filter(|_| c.suppressed > 0) {
                due.push((sample, c.suppressed));
            }
            c.suppressed = 0;
        }
    }

    fn evict_oldest(&mut self, due: &mut Vec<(T, u64)>) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.window_start)
            .map(|(&fp, _)| fp);
        if let Some(old) = oldest.and_then(|fp| self.entries.remove(&fp)) {
            if old.suppressed > 0 {
                due.push((old.sample, old.suppressed));
            }
        }
    }

    /// When the earliest pending summary falls due, if any is pending.
    fn next_summary(&self) -> Option<u64> {
        let entries = self
            .entries
            .values()
            .map(|e| (e.window_start, e.suppressed));
        let classes = self.classes.iter().map(|c| (c.window_start, c.suppressed));
        entries
            .chain(classes)
            .filter(|&(_, suppressed)| suppressed > 0)
            .map(|(start, _)| start.saturating_add(self.window))
            .min()
    }

    /// How many distinct events are being tracked.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many occurrences are counted but not yet reported.
    pub(crate) fn pending(&self) -> u64 {
        self.entries.values().map(|e| e.suppressed).sum::<u64>()
            + self.classes.iter().map(|c| c.suppressed).sum::<u64>()
    }
}

/// Coalesces identical [`SecurityEvent`]s under flood: the first `per_window` of each window
/// pass, the rest are counted and reported by one summary event carrying
/// `suppressed = N`. See the [module documentation](self).
///
/// Every layer that emits events owns one ([`Coalescer::default`]: 5 per 60 seconds, 1024
/// distinct events) unless its builder is given one to share, such as
/// [`SecurityLogBuilder::coalescer`](super::SecurityLogBuilder::coalescer);
/// [`SecurityEvent::emit_via`] emits through any, with a
/// [`ManualClock`](crate::limiter::ManualClock) in tests. While no subscriber would
/// record the events (none installed, or the target `tower_shield::security` filtered out),
/// emitting costs nothing and counts nothing.
///
/// ```
/// use std::time::Duration;
/// use tower_shield::limiter::ManualClock;
/// use tower_shield::security_log::{Coalescer, SecurityEvent};
///
/// # let subscriber = tracing_subscriber::fmt().with_writer(std::io::sink).finish();
/// # let _guard = tracing::subscriber::set_default(subscriber);
/// let clock = ManualClock::new();
/// let coalescer = Coalescer::new(2, Duration::from_secs(10), 1024)?.with_clock(clock.clone());
/// let event = SecurityEvent::cors_refused("https://evil.example", "origin not allowed");
/// for _ in 0..100 {
///     event.emit_via(&coalescer); // 2 logged, 98 counted
/// }
/// assert_eq!(coalescer.pending(), 98);
/// clock.advance(Duration::from_secs(10));
/// coalescer.flush(); // one summary: the same event with suppressed = 98
/// assert_eq!(coalescer.pending(), 0);
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
pub struct Coalescer {
    clock: Box<dyn Clock>,
    hasher: foldhash::fast::RandomState,
    table: Mutex<Table<SecurityEvent<'static>>>,
    /// When [`flush_expired`](Coalescer::flush_expired) has a summary to emit, at the
    /// earliest; `u64::MAX` while none is pending, so the check per request is one load.
    due: AtomicU64,
    per_window: u32,
    class_budget: u32,
    window: Duration,
    capacity: usize,
}

impl fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("per_window", &self.per_window)
            .field("class_budget", &self.class_budget)
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The default class budget, as a multiple of `per_window`.
const DEFAULT_CLASS_FACTOR: u32 = 20;

/// The most distinct events a table may track.
const MAX_CAPACITY: usize = 1 << 20;

impl Default for Coalescer {
    /// 5 identical events per 60 seconds, 1024 distinct events tracked.
    fn default() -> Self {
        Coalescer::unchecked(5, Duration::from_secs(60), 1024)
    }
}

impl Coalescer {
    /// Lets `per_window` identical events through per `window`, and tracks at most
    /// `capacity` distinct events. Reads a [`MonotonicClock`]; see
    /// [`with_clock`](Self::with_clock).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every problem: `per_window` of 0, a `window` of zero, a
    /// `capacity` of 0 or above 1 048 576.
    pub fn new(per_window: u32, window: Duration, capacity: usize) -> Result<Self, ConfigError> {
        let mut errors = ConfigErrors::default();
        if per_window == 0 {
            errors.push(
                "security_log.coalesce.per_window",
                "0 would log no security event at all; use at least 1",
            );
        }
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            errors.push(
                "security_log.coalesce.window",
                "a zero window coalesces nothing; use a duration such as 60 seconds",
            );
        }
        if capacity == 0 || capacity > MAX_CAPACITY {
            errors.push(
                "security_log.coalesce.capacity",
                format!("{capacity} distinct events: use 1 to {MAX_CAPACITY} (1024 is plenty)"),
            );
        }
        errors.finish(|| Coalescer::unchecked(per_window, window, capacity))
    }

    fn unchecked(per_window: u32, window: Duration, capacity: usize) -> Self {
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let class_budget = per_window.saturating_mul(DEFAULT_CLASS_FACTOR);
        Coalescer {
            clock: Box::new(MonotonicClock::new()),
            hasher: foldhash::fast::RandomState::default(),
            table: Mutex::new(Table::new(per_window, class_budget, nanos, capacity)),
            due: AtomicU64::new(u64::MAX),
            per_window,
            class_budget,
            window,
            capacity,
        }
    }

    /// The same coalescer with at most `budget` *distinct* events of one kind (one `owasp`
    /// name) logged per window (at least 1; default 20 × `per_window`). Beyond it, events
    /// of that kind are counted together and reported by one summary, whose other fields
    /// are those of the first event suppressed, without its client address. This is what
    /// holds the log to a fixed size when a flood comes from many addresses, each event
    /// distinct.
    pub fn with_class_budget(mut self, budget: u32) -> Self {
        self.class_budget = budget.max(1);
        self.table
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .class_budget = self.class_budget;
        self
    }

    /// The same coalescer reading `clock` (a [`ManualClock`](crate::limiter::ManualClock) in
    /// tests).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Identical events let through per window.
    pub fn per_window(&self) -> u32 {
        self.per_window
    }

    /// Distinct events of one kind let through per window.
    pub fn class_budget(&self) -> u32 {
        self.class_budget
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The most distinct events tracked at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Occurrences counted and not yet reported by a summary.
    pub fn pending(&self) -> u64 {
        self.lock().pending()
    }

    /// Distinct events currently tracked (at most [`capacity`](Self::capacity)).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Emits the summary of every event with suppressed occurrences now, windows over or not,
    /// and forgets every event. Call it on shutdown so no count is lost.
    pub fn flush(&self) {
        let mut due = Vec::new();
        {
            let mut table = self.lock();
            table.drain(&mut due);
            self.due.store(u64::MAX, Ordering::Relaxed);
        }
        for (event, suppressed) in due {
            event.record(Some(suppressed));
        }
    }

    /// Emits the summaries of the events whose window is over. Cheap when none is due (one
    /// atomic load while nothing is pending), so it can be called on every request.
    #[inline]
    pub fn flush_expired(&self) {
        let due = self.due.load(Ordering::Relaxed);
        if due != u64::MAX && self.clock.now() >= due {
            self.sweep();
        }
    }

    #[cold]
    fn sweep(&self) {
        let mut due = Vec::new();
        {
            let now = self.clock.now();
            let mut table = self.lock();
            table.sweep(now, &mut due);
            let next = table.next_summary().unwrap_or(u64::MAX);
            self.due.store(next, Ordering::Relaxed);
        }
        for (event, suppressed) in due {
            event.record(Some(suppressed));
        }
    }

    /// Starts a thread that calls [`flush_expired`](Self::flush_expired) every `every`, so a
    /// flood that stops is still summarised within `every` of its window's end instead of
    /// waiting for the next event or request. The thread ends once the coalescer is dropped.
    /// No layer starts one: a server that wants it calls this.
    ///
    /// # Errors
    ///
    /// The operating system's, when it cannot start a thread.
    pub fn spawn_flusher(self: &Arc<Self>, every: Duration) -> io::Result<thread::JoinHandle<()>> {
        let coalescer: Weak<Self> = Arc::downgrade(self);
        spawn_flush_loop(every, move || coalescer.upgrade())
    }

    /// Logs `event` unless it is over its budget; logs the summaries that fell due first.
    #[inline]
    pub(crate) fn emit(&self, event: &SecurityEvent<'_>) {
        if listened() {
            self.log(event);
        }
    }

    /// [`emit`](Self::emit) once [`listened`] said someone records the event.
    pub(crate) fn log(&self, event: &SecurityEvent<'_>) {
        let fingerprint = self.hasher.hash_one(event);
        let now = self.clock.now();
        let mut due = Vec::new();
        let verdict = self.lock().admit(
            fingerprint,
            event.class(),
            now,
            || event.clone().into_owned(),
            || event.class_summary(),
            &mut due,
        );
        if verdict == Verdict::Suppress {
            // This count's summary is due when its window ends, at the latest one window on.
            let end = now.saturating_add(self.table_window());
            self.due.fetch_min(end, Ordering::Relaxed);
        }
        for (sample, suppressed) in due {
            sample.record(Some(suppressed));
        }
        if verdict == Verdict::Pass {
            event.record(None);
        }
    }

    fn table_window(&self) -> u64 {
        u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<SecurityEvent<'static>>> {
        // A panic while holding the lock leaves counts, never a broken invariant: go on.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A thread named `tower-shield-log-flusher` that flushes the expired summaries of what
/// `coalescer` gives every `every`, until it gives nothing.
fn spawn_flush_loop(
    every: Duration,
    coalescer: impl Fn() -> Option<Arc<Coalescer>> + Send + 'static,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("tower-shield-log-flusher".into())
        .spawn(move || {
            loop {
                thread::sleep(every);
                match coalescer() {
                    Some(c) => c.flush_expired(),
                    None => return,
                }
            }
        })
}

/// Whether a subscriber records security events at all. When none does (no subscriber, or
/// this target filtered out), a refusal under attack should not pay for building, hashing and
/// counting what nobody will read: inlined, this check lets the compiler skip all of it.
#[inline]
pub(crate) fn listened() -> bool {
    tracing::enabled!(target: super::TARGET, tracing::Level::ERROR)
        || tracing::enabled!(target: super::TARGET, tracing::Level::WARN)
        || tracing::enabled!(target: super::TARGET, tracing::Level::INFO)
}

// The fingerprint must hash the event's content, so `SecurityEvent` implements `Hash`.
const _: fn() = || {
    fn hashable<T: Hash>() {}
    hashable::<SecurityEvent<'static>>();
};

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 1_000;

    #[test]
    fn first_k_pass_then_one_summary_per_window() {
        let mut t = Table::new(3, u32::MAX, W, 16);
        let mut due = Vec::new();
        let verdicts: Vec<_> = (0..10)
            .map(|i| t.admit(7, 0, i, || "e", || unreachable!(), &mut due))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Pass).count(), 3);
        assert!(due.is_empty());
        assert_eq!(t.pending(), 7);
        // Next window: the summary comes first, then the event passes again.
        assert_eq!(
            t.admit(7, 0, W + 5, || "e", || unreachable!(), &mut due),
            Verdict::Pass
        );
        assert_eq!(due, vec![("e", 7)]);
    }

    #[test]
    fn distinct_events_are_counted_apart() {
        let mut t = Table::new(1, u32::MAX, W, 16);
        let mut due = Vec::new();
        assert_eq!(
            t.admit(1, 0, 0, || 1, || unreachable!(), &mut due),
            Verdict::Pass
        );
        assert_eq!(
            t.admit(2, 0, 0, || 2, || unreachable!(), &mut due),
            Verdict::Pass
        );
        assert_eq!(
            t.admit(1, 0, 0, || 1, || unreachable!(), &mut due),
            Verdict::Suppress
        );
        t.drain(&mut due);
        assert_eq!(due, vec![(1, 1)]);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_and_reports_it() {
        let mut t = Table::new(1, u32::MAX, W, 2);
        let mut due = Vec::new();
        t.admit(1, 0, 0, || 1, || unreachable!(), &mut due);
        t.admit(1, 0, 0, || 1, || unreachable!(), &mut due); // suppressed
        t.admit(2, 0, 1, || 2, || unreachable!(), &mut due);
        t.admit(3, 0, 2, || 3, || unreachable!(), &mut due); // evicts 1
        assert_eq!(t.len(), 2);
        assert_eq!(due, vec![(1, 1)]);
        for i in 0..10_000 {
            t.admit(100 + i, 0, 3, || 0, || unreachable!(), &mut due);
        }
        assert!(t.len() <= 2, "memory stays bounded");
    }

    #[test]
    fn distinct_events_beyond_the_class_budget_are_counted_together() {
        let mut t = Table::new(5, 3, W, 1024);
        let mut due = Vec::new();
        let passed = (0..100)
            .filter(|&i| t.admit(i, 1, 0, || i, || 999, &mut due) == Verdict::Pass)
            .count();
        assert_eq!(passed, 3);
        // Another class has its own budget.
        assert_eq!(t.admit(5000, 2, 0, || 0, || 0, &mut due), Verdict::Pass);
        assert_eq!(t.pending(), 97);
        assert!(due.is_empty());
        assert_eq!(t.len(), 4, "suppressed distinct events take no table entry");
        t.admit(7000, 1, W, || 0, || 0, &mut due);
        assert_eq!(due, vec![(999, 97)]);
    }

    #[test]
    fn expired_entries_are_swept_with_their_summaries() {
        let mut t = Table::new(1, u32::MAX, W, 16);
        let mut due = Vec::new();
        t.admit(1, 0, 0, || 1, || unreachable!(), &mut due);
        t.admit(1, 0, 1, || 1, || unreachable!(), &mut due);
        t.admit(2, 0, 2, || 2, || unreachable!(), &mut due);
        t.admit(3, 0, W + 3, || 3, || unreachable!(), &mut due); // sweep: 1 and 2 are over
        assert_eq!(due, vec![(1, 1)]);
        assert_eq!(t.len(), 1);
    }
}
