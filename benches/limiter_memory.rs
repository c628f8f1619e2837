//! Heap bytes per key of tower-shield's store and governor's keyed limiter, measured with a
//! counting global allocator: 1,000,000 distinct IPv4 keys in each, then tower-shield at its
//! cap (1,000,000 keys offered to a store with `max_keys = 100_000`).
//!
//! `cargo bench --bench limiter_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicIsize, Ordering};

use governor::{Quota as GQuota, RateLimiter};
use tower_shield::limiter::{Key, MemoryStore, Quota};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers every call to `System`, only counting sizes on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Live heap bytes that `build` leaves behind, per key it reports holding.
fn bytes_per_key<T>(build: impl FnOnce() -> (T, usize)) -> (f64, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let (held, keys) = build();
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    drop(held);
    (bytes as f64 / keys as f64, keys)
}

fn main() {
    const OFFERED: u32 = 1_000_000;
    let quota = Quota::per_second(10).unwrap();
    let gquota = GQuota::per_second(NonZeroU32::new(10).unwrap());

    let (ours, ours_keys) = bytes_per_key(|| {
        let store = MemoryStore::builder()
            .max_keys(OFFERED as usize)
            .build()
            .unwrap();
        for i in 0..OFFERED {
            store.check(Key::from_ip(ip(i)), &quota);
        }
        let held = store.len();
        (store, held)
    });
    let (gov, gov_keys) = bytes_per_key(|| {
        let limiter = RateLimiter::keyed(gquota);
        for i in 0..OFFERED {
            let _ = limiter.check_key(&ip(i));
        }
        let held = limiter.len();
        (limiter, held)
    });
    let (cap, cap_keys) = bytes_per_key(|| {
        let store = MemoryStore::builder().max_keys(100_000).build().unwrap();
        for i in 0..OFFERED {
            store.check(Key::from_ip(ip(i)), &quota);
        }
        let held = store.len();
        (store, held)
    });
    println!("| store | keys offered | keys held | heap bytes per key held |");
    println!("|---|---|---|---|");
    println!("| tower_shield (max_keys 1,000,000) | {OFFERED} | {ours_keys} | {ours:.1} |");
    println!("| governor keyed (DashMap) | {OFFERED} | {gov_keys} | {gov:.1} |");
    println!("| tower_shield at its cap (max_keys 100,000) | {OFFERED} | {cap_keys} | {cap:.1} |");
    println!(
        "ratio tower_shield / governor at 1M keys offered: {:.2}",
        ours / gov
    );
}
