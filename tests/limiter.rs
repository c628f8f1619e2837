//! Black-box tests of the token-bucket core against a plain token-bucket model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use tower_shield::limiter::{Check, Clock, Decision, Key, ManualClock, MemoryStore, Quota};

/// A token bucket kept the obvious way: `credit` nanoseconds of allowance, refilled by elapsed
/// time up to `burst × interval`, spent `cost × interval` at a time. It shares no code with the
/// GCRA store.
#[derive(Clone, Debug)]
struct ModelBucket {
    credit: u64,
    at: u64,
}

struct Expect {
    allowed: bool,
    remaining: u32,
    reset_after: u64,
    retry_after: Option<u64>,
}

fn model(bucket: &mut Option<ModelBucket>, now: u64, q: &Quota, cost: u32, charge: bool) -> Expect {
    let t = q.interval().as_nanos() as u64;
    let cap = t * u64::from(q.burst());
    let b = bucket.get_or_insert(ModelBucket {
        credit: cap,
        at: now,
    });
    let credit = (b.credit + (now - b.at)).min(cap);
    let need = t * u64::from(cost);
    let allowed = cost <= q.burst() && need <= credit;
    let after = if allowed { credit - need } else { credit };
    if charge {
        b.credit = after;
        b.at = now;
    }
    Expect {
        allowed,
        remaining: (after / t) as u32,
        reset_after: cap - after,
        retry_after: (!allowed && cost <= q.burst()).then(|| need - credit),
    }
}

fn same(d: &Decision, e: &Expect) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.is_allowed(), e.allowed);
    prop_assert_eq!(d.remaining(), e.remaining);
    prop_assert_eq!(d.reset_after().as_nanos() as u64, e.reset_after);
    prop_assert_eq!(d.retry_after().map(|r| r.as_nanos() as u64), e.retry_after);
    Ok(())
}

fn quotas() -> [Quota; 3] {
    [
        Quota::per(3, Duration::from_millis(30)).unwrap(),
        Quota::per(10, Duration::from_secs(1))
            .unwrap()
            .with_burst(4)
            .unwrap(),
        Quota::per(7, Duration::from_millis(100)).unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Check { key: usize, quota: usize, cost: u32 },
    Peek { key: usize, quota: usize, cost: u32 },
    All { a: usize, b: usize },
}

fn op() -> impl Strategy<Value = (u64, Op)> {
    let op = prop_oneof![
        4 => (0..4usize, 0..3usize, 0..6u32).prop_map(|(key, quota, cost)| Op::Check { key, quota, cost }),
        1 => (0..4usize, 0..3usize, 0..6u32).prop_map(|(key, quota, cost)| Op::Peek { key, quota, cost }),
        1 => (0..4usize, 0..4usize).prop_map(|(a, b)| Op::All { a, b }),
    ];
    (prop_oneof![3 => Just(0u64), 2 => 0..20_000_000u64], op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every decision equals the model's, field by field, for checks, peeks and
    /// all-or-nothing pairs. A (key, quota) pair is one bucket, kept apart by scopes.
    #[test]
    fn decisions_match_the_model(trace in proptest::collection::vec(op(), 1..300)) {
        let clock = ManualClock::new();
        clock.set(1);
        let store = MemoryStore::builder().max_keys(10_000).clock(clock.clone()).build().unwrap();
        let quotas = quotas();
        let keys = store.key_hasher();
        let scopes = [keys.namespace("q0"), keys.namespace("q1"), keys.namespace("q2")];
        let key = |k: usize, q: usize| keys.hash(&[k as u8]).in_namespace(&scopes[q]);
        let mut buckets: Vec<Vec<Option<ModelBucket>>> = vec![vec![None; 3]; 4];
        for (advance, op) in trace {
            clock.advance(Duration::from_nanos(advance));
            let now = clock.now();
            match op {
                Op::Check { key: k, quota: q, cost } => {
                    let d = store.check_n(key(k, q), &quotas[q], cost);
                    same(&d, &model(&mut buckets[k][q], now, &quotas[q], cost, true))?;
                }
                Op::Peek { key: k, quota: q, cost } => {
                    let d = store.peek(key(k, q), &quotas[q], cost);
                    same(&d, &model(&mut buckets[k][q], now, &quotas[q], cost, false))?;
                }
                Op::All { a, b } => {
                    // key a under quota 0 and key b under quota 2: distinct buckets
                    let v = store.check_all(&[Check::new(key(a, 0), &quotas[0]), Check::new(key(b, 2), &quotas[2])]);
                    let ea = model(&mut buckets[a][0].clone(), now, &quotas[0], 1, false);
                    let eb = model(&mut buckets[b][2].clone(), now, &quotas[2], 1, false);
                    prop_assert_eq!(v.is_allowed(), ea.allowed && eb.allowed);
                    if ea.allowed && eb.allowed {
                        model(&mut buckets[a][0], now, &quotas[0], 1, true);
                        model(&mut buckets[b][2], now, &quotas[2], 1, true);
                    }
                    let expected_index = match (ea.allowed, eb.allowed) {
                        (false, true) => 0,
                        (true, false) => 1,
                        (false, false) => usize::from(eb.retry_after > ea.retry_after),
                        (true, true) => usize::from(eb.remaining < ea.remaining),
                    };
                    prop_assert_eq!(v.index, expected_index);
                }
            }
        }
    }

    /// Over any trace of one key, admissions never exceed burst + elapsed / interval, and a
    /// client that waits exactly `retry_after` after a refusal is admitted.
    #[test]
    fn never_more_than_the_quota_and_retry_after_is_exact(
        steps in proptest::collection::vec((0..50_000_000u64, any::<bool>()), 1..400),
        q in 0..3usize,
    ) {
        let quota = quotas()[q];
        let clock = ManualClock::new();
        let store = MemoryStore::builder().clock(clock.clone()).build().unwrap();
        let key = store.key_hasher().hash(b"one");
        let interval = quota.interval().as_nanos() as u64;
        let mut admitted = 0u64;
        let mut elapsed = 0u64;
        for (advance, obey) in steps {
            clock.advance(Duration::from_nanos(advance));
            elapsed += advance;
            let d = store.check(key, &quota);
            if d.is_allowed() {
                admitted += 1;
            } else if obey {
                let wait = d.retry_after().unwrap();
                prop_assert!(wait > Duration::ZERO);
                clock.advance(wait);
                elapsed += wait.as_nanos() as u64;
                prop_assert!(store.check(key, &quota).is_allowed(), "waited {:?} and was refused", wait);
                admitted += 1;
            }
            prop_assert!(admitted <= u64::from(quota.burst()) + elapsed / interval);
        }
    }
}

#[test]
fn threads_on_one_key_admit_exactly_the_burst() {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::builder().clock(clock).build().unwrap());
    let quota = Quota::per_hour(20_000).unwrap();
    let admitted = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (store, admitted) = (store.clone(), admitted.clone());
            thread::spawn(move || {
                for _ in 0..10_000 {
                    if store.check(Key::GLOBAL, &quota).is_allowed() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 20_000);
}

#[test]
fn threads_with_overlapping_all_or_nothing_checks_never_overspend() {
    let store = Arc::new(
        MemoryStore::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap(),
    );
    let (wide, narrow) = (
        Quota::per_hour(5_000).unwrap(),
        Quota::per_hour(3_000).unwrap(),
    );
    let keys = *store.key_hasher();
    let shared = keys.hash(b"shared");
    let admitted = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let (store, admitted) = (store.clone(), admitted.clone());
            thread::spawn(move || {
                let own = keys.hash(&[i]);
                for _ in 0..2_000 {
                    let checks = [
                        Check::new(own, &wide),
                        Check::new(shared.in_namespace(&keys.namespace("n")), &narrow),
                    ];
                    if store.check_all(&checks).is_allowed() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // the shared bucket binds: exactly its burst, and the private buckets paid only for those
    assert_eq!(admitted.load(Ordering::Relaxed), 3_000);
    let spent: u32 = (0..4u8)
        .map(|i| 5_000 - store.peek(keys.hash(&[i]), &wide, 0).remaining())
        .sum();
    assert_eq!(spent, 3_000);
}

#[test]
fn a_flood_of_new_keys_stays_at_the_cap_and_leaves_a_legitimate_key_exact() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder()
        .max_keys(100_000)
        .clock(clock.clone())
        .build()
        .unwrap();
    let quiet = MemoryStore::builder().clock(clock.clone()).build().unwrap();
    let flood_quota = Quota::per_minute(60).unwrap();
    let legit_quota = Quota::per(10, Duration::from_secs(10)).unwrap();
    let legit = quiet.key_hasher().hash(b"legitimate");
    let mut allowed = 0;
    for i in 0..1_000_000u32 {
        clock.advance(Duration::from_micros(10));
        store.check(Key::from_u128(u128::from(i) + 1_000_000), &flood_quota);
        if i % 2_000 == 0 {
            let d = store.check(legit, &legit_quota);
            assert_eq!(d, quiet.check(legit, &legit_quota), "at flood key {i}");
            allowed += u32::from(d.is_allowed());
        }
        if i % 50_000 == 0 {
            assert!(store.len() <= 100_000);
        }
    }
    assert!(store.len() <= 100_000);
    assert!(
        store.len() >= 95_000,
        "the cap is used, not a fraction of it: {}",
        store.len()
    );
    let ev = store.evictions();
    assert!(ev.expired + ev.evicted >= 900_000, "{ev:?}");
    // the burst of 10, then one per second for the 9.98 s until the last legitimate request
    assert_eq!(allowed, 19);
}

#[test]
fn sweeping_drops_only_full_buckets() {
    let clock = ManualClock::new();
    let store = MemoryStore::builder().clock(clock.clone()).build().unwrap();
    let quota = Quota::per_second(1).unwrap();
    for i in 0..100u8 {
        store.check(store.key_hasher().hash(&[i]), &quota);
    }
    clock.advance(Duration::from_millis(500));
    store.check(store.key_hasher().hash(b"late"), &quota);
    clock.advance(Duration::from_millis(600));
    assert_eq!(store.sweep(), 100);
    assert_eq!(store.len(), 1);
    assert_eq!(store.evictions().expired, 100);
}

#[test]
fn builder_names_every_bad_setting() {
    let err = MemoryStore::builder()
        .max_keys(0)
        .shards(0)
        .build()
        .unwrap_err();
    let settings: Vec<_> = err.problems().iter().map(|p| p.setting()).collect();
    assert_eq!(settings, ["max_keys", "shards"]);
    assert!(
        MemoryStore::builder()
            .max_keys(10)
            .shards(11)
            .build()
            .is_err()
    );
    let small = MemoryStore::builder().max_keys(10).build().unwrap();
    assert_eq!(small.max_keys(), 10);
}
