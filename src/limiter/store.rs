use std::sync::{Arc, Weak};

use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;
use std::thread;
use std::time::Duration;

use foldhash::fast::FixedState;

use super::gcra::{Decision, evaluate};
use super::table::{Table, hash};
use super::{Clock, Key, KeyHasher, QuantaClock, Quota};
use crate::SecretKey;
use crate::error::{ConfigError, ConfigErrors};

/// The most checks [`MemoryStore::check_all`] handles without a heap allocation.
const INLINE_CHECKS: usize = 8;

/// One shard, alone on its cache lines so threads working on different shards never share one.
///
/// A spin lock rather than `std::sync::Mutex`: a lock is held for a few nanoseconds, and the
/// spin lock's release is a plain store where the futex mutex needs a second locked
/// instruction, which also lets the processor overlap one check's cache miss with the next.
/// A waiter yields its thread between attempts, so a holder that was preempted gets the CPU.
#[repr(align(128))]
struct Shard(SpinMutex<Table, Yield>);

type Guard<'a> = SpinMutexGuard<'a, Table>;

impl Shard {
    #[inline]
    fn lock(&self) -> Guard<'_> {
        self.0.lock()
    }
}

/// The in-memory keyed token-bucket store: GCRA state for up to `max_keys` keys.
///
/// Keys are spread over shards, each a mutex around a small open-addressing table of
/// 24-byte entries. The table never holds more than `max_keys`: when a shard is full, a new
/// key first pushes out entries whose bucket is full again (they are indistinguishable from a
/// fresh key, so nothing is lost), and only if there is none, the sampled entry closest to
/// full. That work is done on insert, a few entries at a time, with no background thread;
/// [`sweep`](MemoryStore::sweep) and [`spawn_sweeper`](MemoryStore::spawn_sweeper) remove
/// idle keys eagerly for those who want memory back between floods.
///
/// ```
/// use std::net::IpAddr;
/// use tower_shield::limiter::{Key, MemoryStore, Quota};
///
/// let store = MemoryStore::builder().max_keys(100_000).build()?;
/// let per_ip = Quota::per_minute(60)?;
/// let client: IpAddr = "203.0.113.9".parse().unwrap();
///
/// let decision = store.check(Key::from_ip(client), &per_ip);
/// assert!(decision.is_allowed());
/// assert_eq!(decision.remaining(), 59);
/// assert_eq!(store.len(), 1);
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
pub struct MemoryStore<C: Clock = QuantaClock> {
    shards: Box<[Shard]>,
    hasher: FixedState,
    keys: KeyHasher,
    clock: C,
    max_keys: usize,
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder<C> {
    max_keys: usize,
    shards: Option<usize>,
    clock: C,
    keys: Option<KeyHasher>,
}

/// One (key, quota, cost) triple of an all-or-nothing `check_all`, on any store.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    pub(crate) key: Key,
    pub(crate) quota: &'a Quota,
    pub(crate) cost: u32,
}

impl<'a> Check<'a> {
    /// A check of cost 1.
    pub fn new(key: Key, quota: &'a Quota) -> Self {
        Check {
            key,
            quota,
            cost: 1,
        }
    }

    /// The same check with another cost (0 asks without charging).
    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }
}

/// The outcome of [`MemoryStore::check_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The decision that binds hardest: the refusal with the longest wait if any check was
    /// refused, else the admission with the fewest remaining.
    pub binding: Decision,
    /// The position of that decision's check in the slice.
    pub index: usize,
}

impl Verdict {
    /// Admitted against no limit: what an empty call reports, and what a store that fails
    /// open answers while it cannot decide. A layer adds no rate-limit headers for it.
    pub const UNLIMITED: Verdict = Verdict {
        binding: Decision::NOTHING_CHECKED,
        index: 0,
    };

    /// Whether this is [`UNLIMITED`](Self::UNLIMITED).
    #[inline]
    pub fn is_unlimited(&self) -> bool {
        // Every quota has a burst of at least 1: only `UNLIMITED` has a limit of 0.
        self.binding.limit() == 0
    }

    /// Whether every check was admitted (and all were charged).
    pub fn is_allowed(&self) -> bool {
        self.binding.is_allowed()
    }
}

impl MemoryStore<QuantaClock> {
    /// A builder with the defaults: at most 1,000,000 keys, 64 shards, the [`QuantaClock`].
    pub fn builder() -> MemoryStoreBuilder<QuantaClock> {
        MemoryStoreBuilder {
            max_keys: 1_000_000,
            shards: None,
            clock: QuantaClock::new(),
            keys: None,
        }
    }
}

impl<C: Clock> MemoryStoreBuilder<C> {
    /// The hard cap on keys held at once (default 1,000,000; at most 32 bytes each when full).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The number of shards (default 64, fewer when `max_keys` is smaller). More shards mean
    /// less contention between threads; each shard evicts within itself, so a shard may start
    /// evicting slightly before the whole store reaches `max_keys`.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The clock to read, once per check.
    pub fn clock<D: Clock>(self, clock: D) -> MemoryStoreBuilder<D> {
        MemoryStoreBuilder {
            max_keys: self.max_keys,
            shards: self.shards,
            clock,
            keys: self.keys,
        }
    }

    /// Hash with `keys` (a store standing in for another one shares its keys).
    #[cfg_attr(not(any(feature = "redis", feature = "rate-limit")), allow(dead_code))]
    pub(crate) fn key_hasher(mut self, keys: KeyHasher) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Hash identifiers and policy names under `secret` (default: a random secret of this
    /// store's own). See [`KeyHasher`].
    pub fn secret(mut self, secret: &SecretKey) -> Self {
        self.keys = Some(KeyHasher::from_secret(secret));
        self
    }

    /// The store, or every problem with the settings.
    pub fn build(self) -> Result<MemoryStore<C>, ConfigError> {
        let mut errors = ConfigErrors::default();
        if self.max_keys == 0 {
            errors.push("max_keys", "must be at least 1");
        }
        if self.shards == Some(0) {
            errors.push("shards", "must be at least 1");
        }
        if let Some(shards) = self.shards {
            if shards > self.max_keys && self.max_keys > 0 {
                errors.push(
                    "shards",
                    format!(
                        "{shards} shards cannot share {} keys; use at most max_keys shards",
                        self.max_keys
                    ),
                );
            }
        }
        errors.finish(|| ())?;
        let shards = self.shards.unwrap_or(64).min(self.max_keys);
        let hasher = FixedState::with_seed(rand::random());
        let per_shard = self.max_keys / shards;
        Ok(MemoryStore {
            shards: (0..shards)
                .map(|_| Shard(SpinMutex::new(Table::new(per_shard, hasher.clone()))))
                .collect(),
            hasher,
            keys: self.keys.unwrap_or_else(KeyHasher::random),
            clock: self.clock,
            max_keys: per_shard * shards,
        })
    }
}

impl<C: Clock> MemoryStore<C> {
    #[inline]
    fn locate(&self, key: Key) -> (usize, u64) {
        let h = hash(&self.hasher, key);
        // The low half picks the shard; the table indexes by the high bits of the product.
        let shard = ((h & 0xffff_ffff) * self.shards.len() as u64) >> 32;
        (shard as usize, h)
    }

    /// Checks one request of cost 1 for `key` and charges it if admitted.
    #[inline]
    pub fn check(&self, key: Key, quota: &Quota) -> Decision {
        self.check_n(key, quota, 1)
    }

    /// Checks one request of `cost` for `key` and charges it if admitted. A cost above the
    /// quota's burst is refused with no `retry_after`, since no wait can admit it.
    #[inline]
    pub fn check_n(&self, key: Key, quota: &Quota, cost: u32) -> Decision {
        let (shard, h) = self.locate(key);
        let mut table = self.shards[shard].lock();
        let now = self.clock.now();
        table.update(key, h, now, |tat| evaluate(tat, now, quota, cost))
    }

    /// What [`check_n`](Self::check_n) would decide now, without charging anything.
    pub fn peek(&self, key: Key, quota: &Quota, cost: u32) -> Decision {
        let (shard, h) = self.locate(key);
        let table = self.shards[shard].lock();
        let now = self.clock.now();
        evaluate(table.get(key, h), now, quota, cost).0
    }

    /// Forgets `key`, so its next check sees a full bucket (as after a successful login);
    /// whether it was held.
    ///
    /// ```
    /// use tower_shield::limiter::{Key, MemoryStore, Quota};
    ///
    /// let store = MemoryStore::builder().build()?;
    /// let quota = Quota::per_minute(2)?;
    /// let client = store.key_hasher().hash(b"client");
    /// store.check(client, &quota);
    /// store.check(client, &quota);
    /// assert!(!store.check(client, &quota).is_allowed());
    /// assert!(store.reset(client));
    /// assert_eq!(store.check(client, &quota).remaining(), 1);
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn reset(&self, key: Key) -> bool {
        let (shard, h) = self.locate(key);
        self.shards[shard].lock().remove(key, h)
    }

    /// Checks several (key, quota, cost) at one instant and charges all of them only if every
    /// one is admitted (nginx `limit_req` semantics): a refusal by one policy costs the others
    /// nothing. The same key may appear more than once; later checks see earlier charges.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_shield::limiter::{Check, ManualClock, MemoryStore, Quota};
    ///
    /// let store = MemoryStore::builder().clock(ManualClock::new()).build()?;
    /// let (burst, hourly) = (Quota::per_second(10)?, Quota::per_hour(1)?);
    /// let keys = store.key_hasher();
    /// let ip = keys.hash(b"client");
    /// let (a, b) = (ip.in_namespace(&keys.namespace("burst")), ip.in_namespace(&keys.namespace("hourly")));
    ///
    /// assert!(store.check_all(&[Check::new(a, &burst), Check::new(b, &hourly)]).is_allowed());
    /// let v = store.check_all(&[Check::new(a, &burst), Check::new(b, &hourly)]);
    /// assert!(!v.is_allowed());
    /// assert_eq!(v.index, 1);
    /// // the refused request did not spend from the per-second bucket
    /// assert_eq!(store.peek(a, &burst, 0).remaining(), 9);
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    ///
    /// With no checks it admits, reporting an unlimited decision of burst 0.
    pub fn check_all(&self, checks: &[Check<'_>]) -> Verdict {
        let n = checks.len();
        if n <= INLINE_CHECKS {
            let mut located = [(0, 0); INLINE_CHECKS];
            let mut tats = [0; INLINE_CHECKS];
            let mut shards = [0; INLINE_CHECKS];
            let mut guards: [Option<Guard<'_>>; INLINE_CHECKS] = Default::default();
            self.check_all_in(
                checks,
                &mut located[..n],
                &mut tats[..n],
                &mut shards[..n],
                &mut guards[..n],
            )
        } else {
            let mut guards: Vec<_> = (0..n).map(|_| None).collect();
            self.check_all_in(
                checks,
                &mut vec![(0, 0); n],
                &mut vec![0; n],
                &mut vec![0; n],
                &mut guards,
            )
        }
    }

    /// `check_all` over caller-provided scratch space, each slice as long as `checks`.
    fn check_all_in<'s>(
        &'s self,
        checks: &[Check<'_>],
        located: &mut [(usize, u64)],
        tats: &mut [u64],
        shards: &mut [usize],
        guards: &mut [Option<Guard<'s>>],
    ) -> Verdict {
        for ((slot, shard), c) in located.iter_mut().zip(shards.iter_mut()).zip(checks) {
            *slot = self.locate(c.key);
            *shard = slot.0;
        }
        // Lock each shard involved once, in ascending order, so concurrent callers can't deadlock.
        shards.sort_unstable();
        let mut distinct = 0;
        for r in 0..shards.len() {
            if distinct == 0 || shards[r] != shards[distinct - 1] {
                shards[distinct] = shards[r];
                distinct += 1;
            }
        }
        let shards = &shards[..distinct];
        for (g, s) in guards.iter_mut().zip(shards) {
            *g = Some(self.shards[*s].lock());
        }
        let guard_index = |shard: usize| shards.binary_search(&shard).unwrap_or(0);
        let now = self.clock.now();

        let mut verdict = Verdict {
            binding: Decision::NOTHING_CHECKED,
            index: 0,
        };
        let mut all_allowed = true;
        for (i, check) in checks.iter().enumerate() {
            let (shard, h) = located[i];
            // a key already charged earlier in this call continues from that charge
            let tat = match (0..i).rev().find(|&j| checks[j].key == check.key) {
                Some(j) => tats[j],
                None => guards[guard_index(shard)]
                    .as_deref()
                    .map_or(0, |t| t.get(check.key, h)),
            };
            let (decision, new) = evaluate(tat, now, check.quota, check.cost);
            tats[i] = new.unwrap_or(tat);
            all_allowed &= decision.is_allowed();
            if i == 0 || decision.binds_more_than(&verdict.binding) {
                verdict = Verdict {
                    binding: decision,
                    index: i,
                };
            }
        }
        if all_allowed {
            for (i, check) in checks.iter().enumerate() {
                let charged_again_later = checks[i + 1..].iter().any(|c| c.key == check.key);
                let (shard, h) = located[i];
                if let (false, Some(table)) = (
                    charged_again_later || tats[i] == 0,
                    guards[guard_index(shard)].as_deref_mut(),
                ) {
                    table.set(check.key, h, tats[i], now);
                }
            }
        }
        verdict
    }

    /// The number of keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hard cap on keys (the configured `max_keys`, rounded down to a multiple of the
    /// shard count).
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// How many keys were dropped so far, by kind.
    pub fn evictions(&self) -> Evictions {
        self.shards.iter().fold(Evictions::default(), |acc, s| {
            let t = s.lock();
            Evictions {
                expired: acc.expired + t.expired,
                evicted: acc.evicted + t.evicted,
            }
        })
    }

    /// Removes every key whose bucket is full again (which changes no decision) and returns
    /// how many went. Takes one shard lock at a time.
    pub fn sweep(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut t = s.lock();
                let now = self.clock.now();
                t.sweep(now)
            })
            .sum()
    }

    /// Starts a thread that calls [`sweep`](Self::sweep) every `every` (the guide's
    /// `SESSION_CLEANUP_INTERVAL`) and ends once the store is dropped.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        every: Duration,
    ) -> std::io::Result<thread::JoinHandle<()>> {
        let store: Weak<Self> = Arc::downgrade(self);
        thread::Builder::new()
            .name("tower-shield-sweeper".into())
            .spawn(move || {
                loop {
                    thread::sleep(every);
                    match store.upgrade() {
                        Some(s) => {
                            s.sweep();
                        }
                        None => return,
                    }
                }
            })
    }

    /// How this store's users turn identifiers and policy names into keys.
    pub fn key_hasher(&self) -> &KeyHasher {
        &self.keys
    }

    /// The clock this store reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

/// Keys dropped by a [`MemoryStore`], by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Keys dropped because their bucket was full again: no decision changes.
    pub expired: u64,
    /// Keys dropped at the cap while still in debt: that key starts over with a full bucket.
    pub evicted: u64,
}

impl<C: Clock> std::fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}
