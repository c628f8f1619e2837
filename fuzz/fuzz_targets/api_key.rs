//! `KeyPrefix::new`, `ApiKey::parse` and hashing: keys built here by the documented format
//! parse, round-trip and verify; a one-byte change never parses; arbitrary text parses only
//! when it is such a key, and errors never repeat it.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_shield::api_key::{
    ApiKey, BODY_LEN, CHECKSUM_LEN, KeyDigest, KeyHasher, KeyPrefix, ParseError,
};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PREFIXES: &[&str] = &["ech_", "ech_live_", "ech_test_", "a_", "x9_y_"];
const PEPPER: &[u8] = b"a pepper of at least thirty-two bytes, for HMAC";

#[derive(Arbitrary, Debug)]
enum Prefix {
    Known(u8),
    Free(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: Prefix,
    body: [u8; BODY_LEN],
    change_at: u16,
    change_to: u8,
    raw: String,
}

/// The documented prefix rules, written out again.
fn prefix_ok(p: &str) -> bool {
    let b = p.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && b[b.len() - 1] == b'_'
        && !p.contains("__")
}

/// `<prefix><body><CRC32 of both as 6 base62 digits, zero-padded>`.
fn make_key(prefix: &str, body: &[u8; BODY_LEN]) -> String {
    let mut key = String::from(prefix);
    key.extend(
        body.iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % 62])),
    );
    let mut crc = crc32fast::hash(key.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    key.extend(digits.iter().map(|&d| char::from(d)));
    key
}

fn check_key(text: &str, prefix: &KeyPrefix, change_at: u16, change_to: u8) {
    let key = ApiKey::parse(text, prefix).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert!(ApiKey::is_well_formed(text, prefix));
    assert_eq!(key.expose_secret(), text);
    assert_eq!(text.len(), prefix.key_len());
    // Display and Debug never show the secret.
    assert!(!key.to_string().contains(text) && !format!("{key:?}").contains(text));
    let again = ApiKey::parse(key.expose_secret(), prefix).expect("re-parses");
    assert_eq!(again.sha256(), key.sha256());

    for hasher in [KeyHasher::sha256(), KeyHasher::hmac_sha256(PEPPER).unwrap()] {
        let digest = hasher.digest(&key);
        assert!(hasher.verify(&key, &digest));
        assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(
            KeyDigest::from_hex(&digest.to_hex().to_ascii_uppercase()),
            Some(digest)
        );
        let mut bytes = *digest.as_bytes();
        bytes[usize::from(change_at) % 32] ^= 1 << (change_to % 8);
        assert!(!hasher.verify(&key, &KeyDigest::from_bytes(bytes)));
    }
    assert_ne!(
        KeyHasher::sha256().digest(&key),
        KeyHasher::hmac_sha256(PEPPER).unwrap().digest(&key)
    );

    // Any one byte changed: refused before any lookup (CRC32 catches every error confined to
    // 32 consecutive bits).
    let mut changed = text.as_bytes().to_vec();
    let at = usize::from(change_at) % changed.len();
    if changed[at] == change_to {
        return;
    }
    changed[at] = change_to;
    if let Ok(changed) = std::str::from_utf8(&changed) {
        assert!(
            ApiKey::parse(changed, prefix).is_err(),
            "{changed:?} (one byte off {text:?}) parses"
        );
    }
}

fuzz_target!(|input: Input| {
    let prefix_text = match &input.prefix {
        Prefix::Known(i) => PREFIXES[usize::from(*i) % PREFIXES.len()].to_owned(),
        Prefix::Free(s) => s.clone(),
    };
    let prefix = match KeyPrefix::new(prefix_text.clone()) {
        Ok(p) => {
            assert!(prefix_ok(&prefix_text), "accepted prefix {prefix_text:?}");
            assert_eq!(p.as_str(), prefix_text);
            assert_eq!(p.key_len(), prefix_text.len() + BODY_LEN + CHECKSUM_LEN);
            assert_eq!(p.regex(), format!("{prefix_text}[0-9A-Za-z]{{49}}"));
            p
        }
        Err(_) => {
            assert!(!prefix_ok(&prefix_text), "refused prefix {prefix_text:?}");
            KeyPrefix::default()
        }
    };

    let key = make_key(prefix.as_str(), &input.body);
    check_key(&key, &prefix, input.change_at, input.change_to);

    let raw = input.raw.as_str();
    match ApiKey::parse(raw, &prefix) {
        Ok(_) => check_key(raw, &prefix, input.change_at, input.change_to),
        Err(e) => {
            assert!(!ApiKey::is_well_formed(raw, &prefix));
            match &e {
                ParseError::WrongPrefix => assert!(!raw.starts_with(prefix.as_str())),
                ParseError::WrongLength { expected, found } => {
                    assert_eq!((*expected, *found), (prefix.key_len(), raw.len()));
                    assert!(raw.starts_with(prefix.as_str()));
                }
                ParseError::InvalidCharacter { position } => {
                    assert!(*position >= prefix.as_str().len() && *position < raw.len());
                    assert!(!raw.as_bytes()[*position].is_ascii_alphanumeric());
                }
                ParseError::BadChecksum => {
                    assert_eq!(raw.len(), prefix.key_len());
                    assert_ne!(raw, make_key_like(raw, &prefix));
                }
                _ => {}
            }
            let message = e.to_string();
            // Only text the fixed messages cannot hold by themselves (they are letters, digits
            // and ` ',()-`).
            let foreign = |c: char| !(c.is_ascii_alphanumeric() || " ',()-".contains(c));
            if raw.chars().any(foreign) {
                assert!(
                    !message.contains(raw),
                    "the error repeats the key: {message}"
                );
            }
        }
    }
});

/// `raw` with its checksum recomputed (for a well-shaped `raw`).
fn make_key_like(raw: &str, prefix: &KeyPrefix) -> String {
    let p = prefix.as_str();
    let body: Vec<u8> = raw.as_bytes()[p.len()..p.len() + BODY_LEN]
        .iter()
        .map(|b| ALPHABET.iter().position(|a| a == b).unwrap() as u8)
        .collect();
    make_key(p, body.as_slice().try_into().unwrap())
}
