//! tower-shield's limiter against governor 0.10's keyed limiter (default DashMap store and
//! quanta clock), case by case in one run. Ids: `limiter/<case>/{tower_shield,governor}`.
//!
//! `cargo bench --bench limiter -- --warm-up-time 1 --measurement-time 3 --noplot`, then
//! `python3 benches/ratios.py` prints ours ÷ governor per case.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{DefaultKeyedRateLimiter, Quota as GQuota, RateLimiter};
use tower_shield::limiter::{Key, MemoryStore, Quota};

/// Keys inserted into one limiter before `new_key` starts over with a fresh one (so neither
/// side pays for evictions, and both pay for table growth).
const FRESH_LIMITER_EVERY: u64 = 200_000;
const MANY_KEYS: u32 = 100_000;

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// A quota no allow case can exhaust: 4.29 billion per second, with that burst.
fn huge() -> (Quota, GQuota) {
    (
        Quota::per_second(u32::MAX).unwrap(),
        GQuota::per_second(NonZeroU32::new(u32::MAX).unwrap()),
    )
}

fn ours() -> MemoryStore {
    MemoryStore::builder().build().unwrap()
}

fn theirs(q: GQuota) -> DefaultKeyedRateLimiter<IpAddr> {
    RateLimiter::keyed(q)
}

fn hot_key(c: &mut Criterion) {
    let (q, gq) = huge();
    let mut g = c.benchmark_group("limiter/hot_key");
    let store = ours();
    g.bench_function("tower_shield", |b| {
        b.iter(|| store.check(Key::from_ip(black_box(ip(1))), &q).is_allowed())
    });
    let gov = theirs(gq);
    g.bench_function("governor", |b| {
        b.iter(|| gov.check_key(&black_box(ip(1))).is_ok())
    });
    g.finish();
}

fn many_keys(c: &mut Criterion) {
    let (q, gq) = huge();
    let mut g = c.benchmark_group("limiter/many_keys");
    let store = ours();
    let gov = theirs(gq);
    for i in 0..MANY_KEYS {
        store.check(Key::from_ip(ip(i)), &q);
        let _ = gov.check_key(&ip(i));
    }
    let mut i = 0;
    g.bench_function("tower_shield", |b| {
        b.iter(|| {
            i = if i + 1 == MANY_KEYS { 0 } else { i + 1 };
            store.check(Key::from_ip(ip(i)), &q).is_allowed()
        })
    });
    let mut i = 0;
    g.bench_function("governor", |b| {
        b.iter(|| {
            i = if i + 1 == MANY_KEYS { 0 } else { i + 1 };
            gov.check_key(&ip(i)).is_ok()
        })
    });
    g.finish();
}

/// Times `check` on `iters` keys never seen before, starting a fresh limiter (untimed) every
/// [`FRESH_LIMITER_EVERY`] keys.
fn time_new_keys<L>(
    iters: u64,
    fresh: impl Fn() -> L,
    check: impl Fn(&L, IpAddr) -> bool,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let limiter = fresh();
        let n = (iters - done).min(FRESH_LIMITER_EVERY);
        let start = Instant::now();
        for i in 0..n {
            black_box(check(&limiter, ip(i as u32)));
        }
        total += start.elapsed();
        drop(limiter);
        done += n;
    }
    total
}

fn new_key(c: &mut Criterion) {
    let (q, gq) = huge();
    let mut g = c.benchmark_group("limiter/new_key");
    g.bench_function("tower_shield", |b| {
        b.iter_custom(|iters| {
            time_new_keys(iters, ours, |s, ip| {
                s.check(Key::from_ip(ip), &q).is_allowed()
            })
        })
    });
    g.bench_function("governor", |b| {
        b.iter_custom(|iters| time_new_keys(iters, || theirs(gq), |l, ip| l.check_key(&ip).is_ok()))
    });
    g.finish();
}

fn deny(c: &mut Criterion) {
    let mut g = c.benchmark_group("limiter/deny");
    let q = Quota::per_hour(1).unwrap();
    let store = ours();
    store.check(Key::from_ip(ip(1)), &q);
    g.bench_function("tower_shield", |b| {
        b.iter(|| store.check(Key::from_ip(black_box(ip(1))), &q).is_allowed())
    });
    let gov = theirs(GQuota::per_hour(NonZeroU32::MIN));
    let _ = gov.check_key(&ip(1));
    g.bench_function("governor", |b| {
        b.iter(|| gov.check_key(&black_box(ip(1))).is_ok())
    });
    g.finish();
}

/// Two threads each run `iters` checks; the time is the wall time of the slower one, so the
/// figure is the time per check per thread, comparable to the one-thread cases.
fn two_threads(
    iters: u64,
    key_of: fn(usize) -> IpAddr,
    check: &(dyn Fn(IpAddr) -> bool + Sync),
) -> Duration {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let key = key_of(t);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(check(black_box(key)));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn threads(c: &mut Criterion) {
    let (q, gq) = huge();
    type KeyOfThread = fn(usize) -> IpAddr;
    let cases: [(&str, KeyOfThread); 2] = [
        ("limiter/two_threads_distinct_keys", |t| ip(1 + t as u32)),
        ("limiter/two_threads_same_key", |_| ip(1)),
    ];
    for (name, key_of) in cases {
        let mut g = c.benchmark_group(name);
        let store = ours();
        g.bench_function("tower_shield", |b| {
            b.iter_custom(|iters| {
                two_threads(iters, key_of, &|ip| {
                    store.check(Key::from_ip(ip), &q).is_allowed()
                })
            })
        });
        let gov = theirs(gq);
        g.bench_function("governor", |b| {
            b.iter_custom(|iters| two_threads(iters, key_of, &|ip| gov.check_key(&ip).is_ok()))
        });
        g.finish();
    }
}

criterion_group!(benches, hot_key, many_keys, new_key, deny, threads);
criterion_main!(benches);
