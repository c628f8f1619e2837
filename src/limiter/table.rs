//! One shard's key → TAT table: open addressing with linear probing and backward-shift
//! deletion, so there are no tombstones and a table never has to grow to get rid of them.
//!
//! A slot is 24 bytes (the 128-bit key and the TAT) and the table is kept at most 3/4 full,
//! so a table at its cap costs 32 bytes per key. A TAT of zero marks an empty slot (a stored
//! TAT is always at least one interval past its clock's epoch).

use std::hash::BuildHasher;

use foldhash::fast::FixedState;

use super::Key;

/// How many occupied slots one eviction looks at.
const SAMPLE: usize = 16;

#[derive(Clone, Copy, Default)]
struct Slot {
    hi: u64,
    lo: u64,
    tat: u64,
}

pub(crate) struct Table {
    slots: Vec<Slot>,
    len: usize,
    max_len: usize,
    max_slots: usize,
    hasher: FixedState,
    /// Where the next eviction starts looking (a CLOCK hand).
    hand: usize,
    /// Entries dropped because their bucket was full again: lossless.
    pub(crate) expired: u64,
    /// Entries dropped at the cap while still in debt: the key starts over with a full bucket.
    pub(crate) evicted: u64,
}

#[inline]
pub(crate) fn hash(hasher: &FixedState, key: Key) -> u64 {
    hasher.hash_one((key.hi, key.lo))
}

/// Maps a hash onto `0..n` by multiply-shift, so `n` need not be a power of two.
#[inline]
fn index(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

impl Table {
    pub(crate) fn new(max_len: usize, hasher: FixedState) -> Table {
        let max_len = max_len.max(1);
        let max_slots = max_len + max_len / 3 + 1;
        Table {
            slots: vec![Slot::default(); max_slots.min(16)],
            len: 0,
            max_len,
            max_slots,
            hasher,
            hand: 0,
            expired: 0,
            evicted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes this table holds on the heap.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    #[inline]
    fn probe(&self, key: Key, hash: u64) -> Result<usize, usize> {
        let n = self.slots.len();
        let mut i = index(hash, n);
        loop {
            let s = &self.slots[i];
            if s.tat == 0 {
                return Err(i);
            }
            if s.hi == key.hi && s.lo == key.lo {
                return Ok(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The stored TAT of `key`, or 0 when it has none.
    #[inline]
    pub(crate) fn get(&self, key: Key, hash: u64) -> u64 {
        match self.probe(key, hash) {
            Ok(i) => self.slots[i].tat,
            Err(_) => 0,
        }
    }

    /// Looks `key` up once, lets `decide` turn its TAT (0 when absent) into a result and
    /// maybe a new TAT, and stores that TAT, making room at the cap if the key is new.
    #[inline]
    pub(crate) fn update<R>(
        &mut self,
        key: Key,
        hash: u64,
        now: u64,
        decide: impl FnOnce(u64) -> (R, Option<u64>),
    ) -> R {
        match self.probe(key, hash) {
            Ok(i) => {
                let (result, new) = decide(self.slots[i].tat);
                if let Some(tat) = new {
                    self.slots[i].tat = tat;
                }
                result
            }
            Err(i) => {
                let (result, new) = decide(0);
                if let Some(tat) = new {
                    self.insert_new(key, hash, tat, now, i);
                }
                result
            }
        }
    }

    /// Stores `tat` for `key`, present or not.
    pub(crate) fn set(&mut self, key: Key, hash: u64, tat: u64, now: u64) {
        self.update(key, hash, now, |_| ((), Some(tat)));
    }

    fn insert_new(&mut self, key: Key, hash: u64, tat: u64, now: u64, mut at: usize) {
        let mut moved = false;
        if self.len == self.max_len {
            self.make_room(now);
            moved = true;
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 && self.slots.len() < self.max_slots {
            self.grow();
            moved = true;
        }
        if moved {
            at = match self.probe(key, hash) {
                Ok(i) | Err(i) => i,
            };
        }
        self.slots[at] = Slot {
            hi: key.hi,
            lo: key.lo,
            tat,
        };
        self.len += 1;
    }

    fn grow(&mut self) {
        let n = (self.slots.len() * 2).min(self.max_slots);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); n]);
        for s in old.into_iter().filter(|s| s.tat != 0) {
            let mut i = index(hash(&self.hasher, Key { hi: s.hi, lo: s.lo }), n);
            while self.slots[i].tat != 0 {
                i = if i + 1 == n { 0 } else { i + 1 };
            }
            self.slots[i] = s;
        }
        self.hand = 0;
    }

    /// Frees at least one slot: every full-again bucket among the next [`SAMPLE`] entries
    /// under the hand goes (lossless); if there is none, the sampled entry with the earliest
    /// TAT goes, the one that would have been full again soonest.
    fn make_room(&mut self, now: u64) {
        let n = self.slots.len();
        let mut i = self.hand % n;
        let mut seen = 0;
        let mut freed = false;
        let mut victim: Option<(usize, u64)> = None;
        for _ in 0..n {
            if seen == SAMPLE {
                break;
            }
            let tat = self.slots[i].tat;
            if tat == 0 {
                i = if i + 1 == n { 0 } else { i + 1 };
                continue;
            }
            seen += 1;
            if tat <= now {
                // The next entry may shift into `i`: look at `i` again.
                self.remove_at(i);
                self.expired += 1;
                freed = true;
                continue;
            }
            if !freed && victim.is_none_or(|(_, t)| tat < t) {
                victim = Some((i, tat));
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        self.hand = i;
        if !freed {
            if let Some((at, _)) = victim {
                self.remove_at(at);
                self.evicted += 1;
            }
        }
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn remove(&mut self, key: Key, hash: u64) -> bool {
        match self.probe(key, hash) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes every entry whose bucket is full again; returns how many.
    pub(crate) fn sweep(&mut self, now: u64) -> usize {
        let before = self.len;
        let mut i = 0;
        while i < self.slots.len() {
            let tat = self.slots[i].tat;
            if tat != 0 && tat <= now {
                self.remove_at(i);
                self.expired += 1;
            } else {
                i += 1;
            }
        }
        before - self.len
    }

    /// Backward-shift deletion: entries after the hole move back if their home allows it, so
    /// every probe sequence stays unbroken without tombstones.
    fn remove_at(&mut self, mut hole: usize) {
        let n = self.slots.len();
        let mut j = hole;
        loop {
            j = if j + 1 == n { 0 } else { j + 1 };
            let s = self.slots[j];
            if s.tat == 0 {
                break;
            }
            let home = index(hash(&self.hasher, Key { hi: s.hi, lo: s.lo }), n);
            // `s` may fill the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn table(max_len: usize) -> Table {
        Table::new(max_len, FixedState::with_seed(7))
    }

    fn put(t: &mut Table, k: u64, tat: u64, now: u64) {
        let key = Key { hi: 0, lo: k };
        t.set(key, hash(&t.hasher, key), tat, now);
    }

    fn get(t: &Table, k: u64) -> u64 {
        let key = Key { hi: 0, lo: k };
        t.get(key, hash(&t.hasher, key))
    }

    proptest! {
        /// Below the cap the table behaves as a map, through growth and sweeps.
        #[test]
        fn matches_a_map_below_the_cap(ops in proptest::collection::vec((0u64..200, 1u64..50, any::<bool>()), 1..600)) {
            let mut t = table(10_000);
            let mut model = HashMap::new();
            let mut now = 0;
            for (k, tat, sweep) in ops {
                if sweep {
                    now += 5;
                    t.sweep(now);
                    model.retain(|_, v| *v > now);
                } else {
                    put(&mut t, k, now + tat, now);
                    model.insert(k, now + tat);
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for k in 0..200 {
                prop_assert_eq!(get(&t, k), model.get(&k).copied().unwrap_or(0));
            }
        }

        /// At the cap the table never holds more than `max_len`, every key it holds is still
        /// found, and a key with the largest debt is never the one evicted.
        #[test]
        fn holds_the_cap(max_len in 1usize..64, keys in proptest::collection::vec(0u64..1000, 1..500)) {
            let mut t = table(max_len);
            put(&mut t, u64::MAX, u64::MAX / 2, 0);
            let mut model = HashMap::new();
            for (step, k) in keys.into_iter().enumerate() {
                let now = step as u64;
                put(&mut t, k, now + 10, now);
                model.insert(k, now + 10);
                prop_assert!(t.len() <= max_len);
                if max_len > 1 {
                    prop_assert_eq!(get(&t, u64::MAX), u64::MAX / 2);
                }
                prop_assert_eq!(get(&t, k), now + 10);
            }
            for (k, tat) in model {
                let got = get(&t, k);
                prop_assert!(got == 0 || got == tat);
            }
        }
    }

    #[test]
    fn remove_forgets_one_key_and_keeps_the_others() {
        let mut t = table(100);
        for k in 0..40 {
            put(&mut t, k, 100 + k, 0);
        }
        let key = Key { hi: 0, lo: 7 };
        assert!(t.remove(key, hash(&t.hasher, key)));
        assert!(!t.remove(key, hash(&t.hasher, key)));
        assert_eq!((t.len(), get(&t, 7)), (39, 0));
        for k in (0..40).filter(|&k| k != 7) {
            assert_eq!(get(&t, k), 100 + k);
        }
    }

    #[test]
    fn full_again_buckets_go_first() {
        let mut t = table(4);
        for k in 0..4 {
            put(&mut t, k, if k == 2 { 5 } else { 100 }, 0);
        }
        // at now = 10, key 2 is full again; inserting a fifth key drops it and no other
        put(&mut t, 9, 100, 10);
        assert_eq!((get(&t, 2), t.expired, t.evicted), (0, 1, 0));
        assert_eq!(t.len(), 4);
        put(&mut t, 10, 100, 10);
        assert_eq!((t.len(), t.evicted), (4, 1));
    }

    #[test]
    fn thirty_two_bytes_per_key_at_the_cap() {
        let mut t = table(30_000);
        for k in 0..30_000 {
            put(&mut t, k, 1 + k, 0);
        }
        assert_eq!(t.len(), 30_000);
        assert!(
            t.heap_bytes() <= 30_000 * 32 + 32,
            "{} bytes",
            t.heap_bytes()
        );
    }
}
