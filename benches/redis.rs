//! Decisions per second through `RedisStore` with 50 concurrent callers, against what Redis
//! itself does with the same script: `redis-benchmark` running `EVALSHA` of `GCRA_LUA` with 50
//! clients, same machine, same run. Also p50 and p99 latency.
//!
//! `cargo bench --bench redis --features redis` (needs `redis-server` on 127.0.0.1:6379 and
//! `redis-benchmark` on the PATH; `REDIS_BENCH_REQUESTS` sets the request count, 200000).

use std::process::Command;
use std::time::{Duration, Instant};

use tower_shield::limiter::{Check, GCRA_LUA, Key, Quota, RedisStore};

const CLIENTS: usize = 50;

fn requests() -> usize {
    std::env::var("REDIS_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// `redis-benchmark` with 50 clients running the store's script on one hot key, as the store
/// would for one check (charge, interval 1 µs, burst 10⁹, cost 1): requests per second, p50
/// and p99 in ms.
fn redis_itself(requests: usize) -> (f64, f64, f64) {
    let sha = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "SCRIPT", "LOAD", GCRA_LUA])
        .output()
        .expect("redis-cli SCRIPT LOAD");
    let sha = String::from_utf8(sha.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert_eq!(sha.len(), 40, "SCRIPT LOAD answered {sha:?}");
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-c",
            &CLIENTS.to_string(),
            "-n",
            &requests.to_string(),
            "--csv",
        ])
        .args([
            "EVALSHA",
            &sha,
            "1",
            "bench:redis-benchmark:{hot}",
            "1",
            "1",
            "1000000000",
            "1",
        ])
        .output()
        .expect("redis-benchmark");
    let csv = String::from_utf8(out.stdout).expect("utf-8");
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let row = csv
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no result from redis-benchmark: {csv}"));
    let cols: Vec<f64> = row
        .split(',')
        .skip(1)
        .map(|c| c.trim_matches('"').parse().expect("a number"))
        .collect();
    (cols[0], cols[3], cols[5])
}

/// The same decisions through `RedisStore` from 50 concurrent tasks.
async fn through_the_store(requests: usize) -> (f64, f64, f64) {
    let store = RedisStore::builder("redis://127.0.0.1:6379/")
        .key_prefix("bench:")
        .build()
        .expect("store");
    let quota = Quota::per(1_000_000_000, Duration::from_secs(1_000)).expect("quota");
    let key = Key::from_u128(u128::from_be_bytes(*b"hot-key-of-bench"));
    // warm up: connect and load the script
    store
        .check_all(&[Check::new(key, &quota)])
        .await
        .expect("redis answers");
    let per_task = requests / CLIENTS;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let verdict = store
                        .check_all(&[Check::new(key, &quota)])
                        .await
                        .expect("redis answers");
                    assert!(verdict.is_allowed());
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
    )
}

fn main() {
    let requests = requests();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (theirs, their_p50, their_p99) = redis_itself(requests);
    let (ours, our_p50, our_p99) = runtime.block_on(through_the_store(requests));
    println!(
        "| {CLIENTS} concurrent callers, {requests} decisions | decisions/s | p50 (ms) | p99 (ms) |"
    );
    println!("|---|---|---|---|");
    println!(
        "| redis-benchmark EVALSHA (Redis itself) | {theirs:.0} | {their_p50:.3} | {their_p99:.3} |"
    );
    println!("| RedisStore::check_all | {ours:.0} | {our_p50:.3} | {our_p99:.3} |");
    println!(
        "ratio RedisStore / redis-benchmark: {:.2} (goal at least 0.8)",
        ours / theirs
    );
}
