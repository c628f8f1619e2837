//! API-key verification throughput for a valid, a wrong and a malformed key: tower-shield
//! (checksum first, then SHA-256 and a constant-time compare of 32-byte digests) against the
//! EchoTuner guide's sketch (`sha256(key).hexdigest() == stored`, a hex string compared with
//! `==`), same inputs, same run. Ids: `api_key/<case>/{tower_shield,guide_hex_eq}`.
//!
//! `cargo bench --bench api_key -- --warm-up-time 1 --measurement-time 3 --noplot`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tower_shield::api_key::{ApiKey, KeyHasher, KeyPrefix};

/// The guide's check: hex of the SHA-256 of the key string, compared as strings.
fn guide(presented: &str, stored_hex: &str) -> bool {
    let hex: String = Sha256::digest(presented.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex == stored_hex
}

/// tower-shield's check: parse (prefix, length, alphabet, CRC32 checksum), then the digest
/// compared in constant time.
fn ours(
    presented: &str,
    prefix: &KeyPrefix,
    hasher: &KeyHasher,
    stored: &tower_shield::api_key::KeyDigest,
) -> bool {
    match ApiKey::parse(presented, prefix) {
        Ok(key) => hasher.verify(&key, stored),
        Err(_) => false,
    }
}

fn cases(c: &mut Criterion) {
    let prefix = KeyPrefix::new("ech_").expect("a valid prefix");
    let valid = ApiKey::generate(&prefix).expect("OS randomness");
    let other = ApiKey::generate(&prefix).expect("OS randomness");
    let hasher = KeyHasher::sha256();
    let stored = hasher.digest(&valid);
    let stored_hex = stored.to_hex();
    let mut malformed = valid.expose_secret().to_string();
    let flipped = if malformed.as_bytes()[10] == b'a' {
        "b"
    } else {
        "a"
    };
    malformed.replace_range(10..11, flipped);
    for (case, presented) in [
        ("valid", valid.expose_secret()),
        ("wrong", other.expose_secret()),
        ("malformed", malformed.as_str()),
    ] {
        let expected = case == "valid";
        assert_eq!(ours(presented, &prefix, &hasher, &stored), expected);
        assert_eq!(guide(presented, &stored_hex), expected);
        let mut g = c.benchmark_group(format!("api_key/{case}"));
        g.bench_function("tower_shield", |b| {
            b.iter(|| ours(black_box(presented), &prefix, &hasher, &stored))
        });
        g.bench_function("guide_hex_eq", |b| {
            b.iter(|| guide(black_box(presented), &stored_hex))
        });
        g.finish();
    }
}

criterion_group!(benches, cases);
criterion_main!(benches);
