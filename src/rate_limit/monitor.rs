//! Who is being refused most: a bounded "top offenders" view of rate-limit refusals.
//!
//! The EchoTuner guide's monitor keeps a counter per user for ever; under an attack from many
//! addresses that map grows without bound. [`RateLimitMonitor`] instead keeps a fixed number
//! of counters ([Space-Saving], Metwally et al. 2005): memory stays bounded whatever the
//! traffic, every client refused more than `refusals / capacity` times is guaranteed to be
//! listed, and each count comes with its largest possible overestimate.
//!
//! The monitor is told about refusals only, so it costs nothing on the allow path. It stores
//! the label it is given for a client, so callers pass something fit to show an operator (the
//! client address, `device:` and a short hash), never a raw session or device id.
//!
//! ```
//! use tower_shield::rate_limit::monitor::RateLimitMonitor;
//!
//! let monitor = RateLimitMonitor::new(1024)?;
//! for _ in 0..3 {
//!     monitor.record_refusal("auth-init", "203.0.113.9");
//! }
//! monitor.record_refusal("search", "device:7f3a91c2");
//!
//! let top = monitor.top(10);
//! assert_eq!((top[0].key.as_str(), top[0].count, top[0].error), ("203.0.113.9", 3, 0));
//! assert_eq!(
//!     monitor.top_json(1),
//!     serde_json::json!([{"policy": "auth-init", "key": "203.0.113.9", "count": 3, "error": 0}])
//! );
//! # Ok::<(), tower_shield::ConfigError>(())
//! ```
//!
//! [Space-Saving]: https://doi.org/10.1007/978-3-540-30570-5_27

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use crate::ConfigError;
use crate::limiter::Key;

/// The number of counters a monitor keeps unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The most counters a monitor may keep. Each costs at most about 400 bytes, so the largest
/// monitor stays under 30 MiB.
pub const MAX_CAPACITY: usize = 65_536;

/// Policy names and client labels longer than this many bytes are cut (at a character
/// boundary) before they are counted, so a counter's memory is bounded whatever it is given.
pub const MAX_LABEL_LEN: usize = 128;

/// One entry of [`RateLimitMonitor::top`]: a client refused under a policy, and how often.
///
/// The true number of refusals lies between `count - error` and `count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offender {
    /// The policy that refused the client.
    pub policy: String,
    /// The client's label (an address, `device:` and a short hash…), as recorded.
    pub key: String,
    /// Refusals counted for this client under this policy: never fewer than the true number.
    pub count: u64,
    /// How much `count` may overstate the true number (0 when the count is exact).
    pub error: u64,
}

impl Offender {
    /// The refusals certainly seen for this client: `count - error`.
    pub fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// A bounded count of refusals per (policy, client), keeping the heaviest offenders.
///
/// [Space-Saving] with `capacity` counters: a refusal of a tracked client increments its
/// counter; a refusal of an untracked client, when every counter is in use, takes over the
/// counter with the smallest count `min`, which becomes `min + 1` with error `min`. This
/// guarantees, for `N` refusals recorded since the last [`reset`](Self::reset):
///
/// - every client refused more than `N / capacity` times is listed;
/// - for each listed client, `count - error ≤ true refusals ≤ count`;
/// - while no more than `capacity` distinct clients were refused, every count is exact.
///
/// Each call takes a lock, which is fine on the refusal path it is meant for. The counter
/// to replace is found with an indexed binary min-heap, so a refusal costs two hash lookups
/// and `O(log capacity)` work; [`top`](Self::top) sorts the counters, `O(capacity log
/// capacity)`, meant for an admin endpoint.
///
/// [Space-Saving]: https://doi.org/10.1007/978-3-540-30570-5_27
pub struct RateLimitMonitor {
    capacity: usize,
    summary: Mutex<Summary>,
}

impl RateLimitMonitor {
    /// A monitor with `capacity` counters (1 to [`MAX_CAPACITY`]; the error names setting
    /// `monitor.capacity`). Memory for the counters grows with use, up to the capacity.
    pub fn new(capacity: usize) -> Result<RateLimitMonitor, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::new(
                "monitor.capacity",
                "a monitor needs at least one counter (the default is 1024)",
            ));
        }
        if capacity > MAX_CAPACITY {
            return Err(ConfigError::new(
                "monitor.capacity",
                format!("{capacity} counters is more than the maximum of {MAX_CAPACITY}"),
            ));
        }
        Ok(RateLimitMonitor {
            capacity,
            summary: Mutex::new(Summary::default()),
        })
    }

    /// The number of counters.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counts one refusal of the client labelled `label` under `policy`.
    ///
    /// `label` must be fit to show an operator: an address or a short hash, never a raw
    /// session or device id. Labels longer than [`MAX_LABEL_LEN`] bytes are cut.
    pub fn record_refusal(&self, policy: &str, label: &str) {
        let policy = truncate(policy, MAX_LABEL_LEN);
        let label = truncate(label, MAX_LABEL_LEN);
        self.lock().record(self.capacity, policy, label.as_bytes());
    }

    /// [`record_refusal`](Self::record_refusal) of the client the layer knows by `client`
    /// (its limiter key under `policy`), labelled by `label` (ASCII, at most
    /// [`MAX_LABEL_LEN`] bytes, so neither checked nor cut).
    ///
    /// A client already counted is found by its key alone: `label` is written only when the
    /// client gets a counter, not on every refusal of a flood. Clients that share a key (the
    /// addresses of one IPv6 /64) share the counter, under the label of the first one.
    pub(crate) fn record_refusal_of<L: AsRef<[u8]>>(
        &self,
        policy: &str,
        client: Key,
        label: impl FnOnce() -> L,
    ) {
        let policy = truncate(policy, MAX_LABEL_LEN);
        let mut summary = self.lock();
        if !summary.count_known(policy, client) {
            let label = label();
            debug_assert!(label.as_ref().is_ascii() && label.as_ref().len() <= MAX_LABEL_LEN);
            let slot = summary.record(self.capacity, policy, label.as_ref());
            summary.know(client, slot);
        }
    }

    /// The `n` clients with the most refusals, most first (ties by policy, then label).
    pub fn top(&self, n: usize) -> Vec<Offender> {
        let summary = self.lock();
        let mut order: Vec<&Slot> = summary.slots.iter().collect();
        order.sort_unstable_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.error.cmp(&b.error))
                .then_with(|| a.policy.cmp(&b.policy))
                .then_with(|| a.label.cmp(&b.label))
        });
        order
            .into_iter()
            .take(n)
            .map(|slot| Offender {
                policy: slot.policy.to_string(),
                // Only ever recorded from a `&str` or ASCII.
                key: String::from_utf8_lossy(&slot.label).into_owned(),
                count: slot.count,
                error: slot.error,
            })
            .collect()
    }

    /// [`top`](Self::top) as a JSON array of objects with members `policy`, `key`, `count`
    /// and `error`, for an admin endpoint such as the reference server's `/admin/rate-limits`.
    pub fn top_json(&self, n: usize) -> Value {
        Value::Array(
            self.top(n)
                .into_iter()
                .map(|o| {
                    json!({
                        "policy": o.policy,
                        "key": o.key,
                        "count": o.count,
                        "error": o.error,
                    })
                })
                .collect(),
        )
    }

    /// The number of refusals recorded since the monitor was made or last reset.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// Forgets every count.
    pub fn reset(&self) {
        *self.lock() = Summary::default();
    }

    /// The summary; a panic in another thread while it held the lock cannot have left it
    /// inconsistent (no code under the lock panics), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Summary> {
        self.summary.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for RateLimitMonitor {
    /// A monitor with [`DEFAULT_CAPACITY`] counters.
    fn default() -> Self {
        RateLimitMonitor {
            capacity: DEFAULT_CAPACITY,
            summary: Mutex::new(Summary::default()),
        }
    }
}

impl fmt::Debug for RateLimitMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = self.lock();
        f.debug_struct("RateLimitMonitor")
            .field("capacity", &self.capacity)
            .field("tracked", &summary.slots.len())
            .field("total", &summary.total)
            .finish()
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One counter.
struct Slot {
    policy: Arc<str>,
    /// UTF-8, as recorded.
    label: Box<[u8]>,
    count: u64,
    error: u64,
    /// Where this slot is in `Summary::heap`.
    heap_pos: usize,
    /// The layer's key for the client counted here, when the layer counted it.
    client: Option<Key>,
}

/// A policy's clients: label → slot.
type Labels = HashMap<Box<[u8]>, usize, RandomState>;

/// The Space-Saving summary: counters, an index by (policy, label), and a min-heap by count.
#[derive(Default)]
struct Summary {
    /// Policy → label → slot. Two levels so that a lookup borrows the caller's `&str`s and
    /// allocates nothing; a policy entry goes when its last counter does.
    // foldhash, seeded per process: labels are client-chosen, but at most `capacity` are held,
    // so a collision flood is bounded, and refusals (an attacker's traffic) stay cheap.
    index: HashMap<Arc<str>, Labels, RandomState>,
    slots: Vec<Slot>,
    /// The layer's clients by key: a shortcut past the label to their slot, so that a flood
    /// of refusals neither writes nor hashes labels. `clients[k] == s` only while
    /// `slots[s].client == Some(k)`.
    clients: HashMap<Key, usize, RandomState>,
    /// Slot numbers, a binary min-heap by count: `heap[0]` is the counter to replace.
    heap: Vec<usize>,
    total: u64,
}

impl Summary {
    /// Counts a refusal of `client` under `policy` if it has a counter; whether it had.
    fn count_known(&mut self, policy: &str, client: Key) -> bool {
        match self.clients.get(&client) {
            Some(&slot) if *self.slots[slot].policy == *policy => {
                self.increment(slot);
                true
            }
            _ => false,
        }
    }

    /// Notes that `client` is counted in `slot`.
    fn know(&mut self, client: Key, slot: usize) {
        if let Some(old) = self.slots[slot].client.replace(client) {
            self.forget(old, slot);
        }
        if let Some(other) = self.clients.insert(client, slot) {
            if other != slot {
                self.slots[other].client = None;
            }
        }
    }

    /// Drops the shortcut of `client` to `slot`, if it still leads there.
    fn forget(&mut self, client: Key, slot: usize) {
        if self.clients.get(&client) == Some(&slot) {
            self.clients.remove(&client);
        }
    }

    fn increment(&mut self, slot: usize) {
        self.total = self.total.saturating_add(1);
        let counter = &mut self.slots[slot];
        counter.count = counter.count.saturating_add(1);
        let pos = counter.heap_pos;
        self.sift_down(pos);
    }

    /// Counts a refusal of (`policy`, `label`); the slot that counted it.
    fn record(&mut self, capacity: usize, policy: &str, label: &[u8]) -> usize {
        if let Some(&slot) = self.index.get(policy).and_then(|labels| labels.get(label)) {
            self.increment(slot);
            return slot;
        }
        self.total = self.total.saturating_add(1);
        if self.slots.len() < capacity {
            let slot = self.slots.len();
            let policy = self.insert_index(policy, label, slot);
            self.slots.push(Slot {
                policy,
                label: label.into(),
                count: 1,
                error: 0,
                heap_pos: self.heap.len(),
                client: None,
            });
            self.heap.push(slot);
            self.sift_up(self.heap.len() - 1);
            return slot;
        }
        // Every counter is in use: the smallest one takes the new client over.
        let Some(&slot) = self.heap.first() else {
            return 0; // capacity is at least 1, so the heap is not empty here
        };
        if let Some(old) = self.slots[slot].client.take() {
            self.forget(old, slot);
        }
        let counter = &mut self.slots[slot];
        let old_policy = Arc::clone(&counter.policy);
        let old_label = std::mem::take(&mut counter.label);
        if let Some(labels) = self.index.get_mut(&old_policy) {
            labels.remove(&old_label);
            if labels.is_empty() {
                self.index.remove(&old_policy);
            }
        }
        let policy = self.insert_index(policy, label, slot);
        let counter = &mut self.slots[slot];
        counter.policy = policy;
        counter.label = label.into();
        counter.error = counter.count;
        counter.count = counter.count.saturating_add(1);
        self.sift_down(0);
        slot
    }

    /// Records `slot` for (`policy`, `label`) and returns the shared policy name.
    fn insert_index(&mut self, policy: &str, label: &[u8], slot: usize) -> Arc<str> {
        match self.index.get_key_value(policy) {
            Some((name, _)) => {
                let name = Arc::clone(name);
                if let Some(labels) = self.index.get_mut(policy) {
                    labels.insert(label.into(), slot);
                }
                name
            }
            None => {
                let name: Arc<str> = Arc::from(policy);
                self.index.insert(
                    Arc::clone(&name),
                    HashMap::from_iter([(label.into(), slot)]),
                );
                name
            }
        }
    }

    fn count_at(&self, pos: usize) -> u64 {
        self.slots[self.heap[pos]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        let (sa, sb) = (self.heap[a], self.heap[b]);
        self.slots[sa].heap_pos = a;
        self.slots[sb].heap_pos = b;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.count_at(parent) <= self.count_at(pos) {
                break;
            }
            self.swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.count_at(right) < self.count_at(left) {
                right
            } else {
                left
            };
            if self.count_at(pos) <= self.count_at(child) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl RateLimitMonitor {
        /// Panics unless the index, the slots and the heap agree and the heap is ordered.
        fn check_invariants(&self) {
            let s = self.lock();
            assert!(s.slots.len() <= self.capacity);
            assert_eq!(s.heap.len(), s.slots.len());
            let indexed: usize = s.index.values().map(HashMap::len).sum();
            assert_eq!(indexed, s.slots.len());
            for (i, slot) in s.slots.iter().enumerate() {
                assert_eq!(s.heap[slot.heap_pos], i);
                assert_eq!(s.index[&*slot.policy][&*slot.label], i);
                assert!(slot.error < slot.count);
            }
            for pos in 1..s.heap.len() {
                assert!(s.count_at((pos - 1) / 2) <= s.count_at(pos));
            }
            // Space-Saving keeps every refusal in some counter.
            let sum: u64 = s.slots.iter().map(|slot| slot.count).sum();
            assert_eq!(sum, s.total);
            // A key leads to the slot that knows it, and only there.
            for (key, &slot) in &s.clients {
                assert_eq!(s.slots[slot].client, Some(*key));
            }
            let known = s.slots.iter().filter(|slot| slot.client.is_some()).count();
            assert_eq!(known, s.clients.len());
        }
    }

    /// A small deterministic generator (SplitMix64), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// Checks the Space-Saving guarantees of `monitor` against the true counts of `stream`.
    fn assert_guarantees(monitor: &RateLimitMonitor, stream: &[(String, String)]) {
        let mut truth: HashMap<(&str, &str), u64> = HashMap::new();
        for (p, l) in stream {
            *truth.entry((p.as_str(), l.as_str())).or_default() += 1;
        }
        let n = stream.len() as u64;
        let listed = monitor.top(usize::MAX);
        assert!(listed.len() <= monitor.capacity());
        assert_eq!(monitor.total(), n);
        for o in &listed {
            let t = truth
                .get(&(o.policy.as_str(), o.key.as_str()))
                .copied()
                .unwrap_or(0);
            assert!(
                o.guaranteed() <= t && t <= o.count,
                "{o:?} against true count {t}"
            );
        }
        let threshold = n / monitor.capacity() as u64;
        for (&(p, l), &t) in &truth {
            if t > threshold {
                assert!(
                    listed.iter().any(|o| o.policy == p && o.key == l),
                    "({p}, {l}) was refused {t} > {threshold} times but is not listed"
                );
            }
        }
        monitor.check_invariants();
    }

    #[test]
    fn capacity_must_be_at_least_one_and_at_most_the_maximum() {
        let err = RateLimitMonitor::new(0).expect_err("zero");
        assert_eq!(err.problems()[0].setting(), "monitor.capacity");
        assert!(RateLimitMonitor::new(MAX_CAPACITY + 1).is_err());
        assert_eq!(RateLimitMonitor::new(1).expect("one").capacity(), 1);
        assert_eq!(RateLimitMonitor::default().capacity(), DEFAULT_CAPACITY);
    }

    #[test]
    fn counts_are_exact_while_the_clients_fit() {
        let monitor = RateLimitMonitor::new(8).expect("capacity");
        let counts = [
            ("ip", "a", 5),
            ("ip", "b", 3),
            ("device", "a", 7),
            ("ip", "c", 1),
        ];
        for &(p, l, n) in &counts {
            for _ in 0..n {
                monitor.record_refusal(p, l);
            }
        }
        let top = monitor.top(10);
        let got: Vec<(&str, &str, u64, u64)> = top
            .iter()
            .map(|o| (o.policy.as_str(), o.key.as_str(), o.count, o.error))
            .collect();
        assert_eq!(
            got,
            [
                ("device", "a", 7, 0),
                ("ip", "a", 5, 0),
                ("ip", "b", 3, 0),
                ("ip", "c", 1, 0)
            ]
        );
        assert_eq!(monitor.top(2).len(), 2);
        assert_eq!(monitor.total(), 16);
        monitor.check_invariants();
    }

    #[test]
    fn the_same_label_under_two_policies_is_two_clients() {
        let monitor = RateLimitMonitor::new(4).expect("capacity");
        monitor.record_refusal("ip", "198.51.100.7");
        monitor.record_refusal("search", "198.51.100.7");
        monitor.record_refusal("search", "198.51.100.7");
        let top = monitor.top(4);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].policy.as_str(), top[0].count), ("search", 2));
        assert_eq!((top[1].policy.as_str(), top[1].count), ("ip", 1));
    }

    #[test]
    fn the_heavy_hitter_is_found_among_100k_mostly_unique_clients() {
        let monitor = RateLimitMonitor::new(64).expect("capacity");
        let mut stream = Vec::with_capacity(100_000);
        let mut rng = Rng(7);
        for i in 0..100_000u64 {
            let label = if i % 20 == 0 {
                "203.0.113.66".to_owned()
            } else {
                format!("10.{}.{}.{}", rng.next() % 256, rng.next() % 256, i % 256)
            };
            stream.push(("ip".to_owned(), label));
        }
        for (p, l) in &stream {
            monitor.record_refusal(p, l);
        }
        let top = monitor.top(1);
        assert_eq!(top[0].key, "203.0.113.66");
        assert!(top[0].count >= 5_000);
        assert!(top[0].guaranteed() <= 5_000);
        assert!(
            top[0].guaranteed() > 5_000 - 100_000 / 64,
            "error is bounded by N / capacity: {top:?}"
        );
        assert_guarantees(&monitor, &stream);
    }

    #[test]
    fn a_skewed_stream_keeps_the_guarantees() {
        let monitor = RateLimitMonitor::new(32).expect("capacity");
        let mut rng = Rng(42);
        let mut stream = Vec::new();
        for _ in 0..50_000 {
            // Roughly Zipf: small numbers far more often than large ones.
            let r = rng.next();
            let client = (r % 1000) / ((r >> 20) % 50 + 1);
            let policy = if r >> 40 & 1 == 0 { "ip" } else { "device" };
            stream.push((policy.to_owned(), format!("client-{client}")));
        }
        for (p, l) in &stream {
            monitor.record_refusal(p, l);
        }
        assert_guarantees(&monitor, &stream);
    }

    #[test]
    fn reset_forgets_everything() {
        let monitor = RateLimitMonitor::new(2).expect("capacity");
        for l in ["a", "b", "c", "a"] {
            monitor.record_refusal("ip", l);
        }
        monitor.reset();
        assert!(monitor.top(10).is_empty());
        assert_eq!(monitor.total(), 0);
        assert_eq!(monitor.top_json(10), json!([]));
        monitor.record_refusal("ip", "d");
        assert_eq!(monitor.top(10)[0].count, 1);
        monitor.check_invariants();
    }

    #[test]
    fn long_labels_are_cut_at_a_character_boundary() {
        let monitor = RateLimitMonitor::new(2).expect("capacity");
        let long = "é".repeat(MAX_LABEL_LEN); // two bytes each
        monitor.record_refusal(&long, &long);
        monitor.record_refusal(&long, &format!("{long}different tail"));
        let top = monitor.top(10);
        assert_eq!(top.len(), 1, "one client once cut: {top:?}");
        assert_eq!(top[0].key.len(), MAX_LABEL_LEN);
        assert_eq!(top[0].policy.len(), MAX_LABEL_LEN);
        assert_eq!(top[0].count, 2);
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn top_json_is_an_array_of_objects_most_first() {
        let monitor = RateLimitMonitor::new(1).expect("capacity");
        monitor.record_refusal("ip", "a");
        monitor.record_refusal("ip", "b");
        assert_eq!(
            monitor.top_json(5),
            json!([{"policy": "ip", "key": "b", "count": 2, "error": 1}])
        );
    }

    #[test]
    fn the_monitor_is_shared_across_threads() {
        let monitor = Arc::new(RateLimitMonitor::new(16).expect("capacity"));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let monitor = Arc::clone(&monitor);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        monitor.record_refusal("ip", &format!("c{}", (i + t) % 8));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        assert_eq!(monitor.total(), 4000);
        assert_eq!(monitor.top(16).iter().map(|o| o.count).sum::<u64>(), 4000);
        assert!(monitor.top(16).iter().all(|o| o.error == 0));
        monitor.check_invariants();
    }

    proptest! {
        #[test]
        fn space_saving_guarantees_hold(
            capacity in 1usize..12,
            stream in proptest::collection::vec((0u8..3, 0u8..24), 0..400),
        ) {
            let monitor = RateLimitMonitor::new(capacity).expect("capacity");
            let stream: Vec<(String, String)> = stream
                .into_iter()
                .map(|(p, l)| (format!("p{p}"), format!("c{l}")))
                .collect();
            for (p, l) in &stream {
                monitor.record_refusal(p, l);
            }
            assert_guarantees(&monitor, &stream);
        }

        /// The layer's path (known clients found by key, labels written once) counts exactly
        /// what the labelled path counts, mixed with it in any order.
        #[test]
        fn counting_by_key_is_counting_by_label(
            capacity in 1usize..12,
            stream in proptest::collection::vec((0u8..3, 0u8..24, any::<bool>()), 0..400),
        ) {
            let by_label = RateLimitMonitor::new(capacity).expect("capacity");
            let mixed = RateLimitMonitor::new(capacity).expect("capacity");
            let keys = crate::limiter::KeyHasher::random();
            for &(p, l, keyed) in &stream {
                let (policy, label) = (format!("p{p}"), format!("c{l}"));
                by_label.record_refusal(&policy, &label);
                if keyed {
                    // Keys are per policy, as the layer's are.
                    let key = keys.hash(format!("{policy}/{label}").as_bytes());
                    mixed.record_refusal_of(&policy, key, || label.clone());
                } else {
                    mixed.record_refusal(&policy, &label);
                }
                mixed.check_invariants();
            }
            prop_assert_eq!(by_label.top(capacity), mixed.top(capacity));
            prop_assert_eq!(by_label.total(), mixed.total());
        }
    }
}
