//! API keys as values: generate, parse, checksum, hash, verify. No tower types here.
//!
//! A key is `<prefix><body><checksum>`:
//!
//! - the prefix names the issuer and kind (`myapp_`, or `myapp_live_` and `myapp_test_`…),
//!   lower-case ASCII letters, digits and `_`, ending in `_`; the application chooses it (the
//!   EchoTuner reference server uses `ech_`);
//! - the body is 43 base62 characters drawn from the operating system's CSPRNG, 256 bits of
//!   entropy (43 × log2 62 ≈ 256.03);
//! - the checksum is the CRC32 of prefix and body, as 6 base62 digits with leading zeros
//!   (GitHub's token format), so a mistyped or truncated key is refused without a lookup.
//!
//! The body and checksum share the alphabet `[0-9A-Za-z]`, which has no `_`: the whole key is
//! one "word" (a double click selects it) and the regex [`KeyPrefix::regex`] matches it exactly.

use std::borrow::Cow;
use std::fmt;

use hmac::{KeyInit, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::SecretKey;
use crate::error::ConfigError;

/// Characters of randomness in a key's body: 43 base62 characters carry 256 bits.
pub const BODY_LEN: usize = 43;

/// Characters of the CRC32 checksum at the end of a key (base62, zero-padded).
pub const CHECKSUM_LEN: usize = 6;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The longest prefix accepted.
const MAX_PREFIX_LEN: usize = 32;

/// The issuer-and-kind prefix of keys, such as `ech_` or `ech_live_`.
///
/// Rules, checked by [`KeyPrefix::new`]: 2 to 32 characters of `a-z`, `0-9` and `_`, starting
/// with a letter, ending with `_`, with no `__`. Give test and live keys different prefixes
/// (`ech_test_`, `ech_live_`) so that a test key is refused by a live server before any
/// lookup, and a leaked live key is told apart by scanners.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(Cow<'static, str>);

impl KeyPrefix {
    /// A prefix, or a [`ConfigError`] (setting `api_key.prefix`) saying what is wrong.
    pub fn new(prefix: impl Into<Cow<'static, str>>) -> Result<KeyPrefix, ConfigError> {
        let prefix = prefix.into();
        let bytes = prefix.as_bytes();
        let problem = if bytes.len() < 2 || bytes.len() > MAX_PREFIX_LEN {
            Some(format!("must be 2 to {MAX_PREFIX_LEN} characters long"))
        } else if !bytes[0].is_ascii_lowercase() {
            Some("must start with a lower-case letter a-z".to_owned())
        } else if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        {
            Some("may hold only a-z, 0-9 and _".to_owned())
        } else if bytes[bytes.len() - 1] != b'_' {
            Some("must end with _ (as in ech_), which separates it from the random part".to_owned())
        } else if prefix.contains("__") {
            Some("must not hold __".to_owned())
        } else {
            None
        };
        match problem {
            Some(message) => Err(ConfigError::new(
                "api_key.prefix",
                format!("{prefix:?} {message}"),
            )),
            None => Ok(KeyPrefix(prefix)),
        }
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The regex that matches exactly the keys of this prefix, for secret scanners (GitHub
    /// secret scanning custom patterns, gitleaks, trufflehog…); anchor or bound it as the
    /// scanner expects.
    ///
    /// ```
    /// use tower_shield::api_key::KeyPrefix;
    /// assert_eq!(KeyPrefix::new("ech_")?.regex(), "ech_[0-9A-Za-z]{49}");
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn regex(&self) -> String {
        format!("{}[0-9A-Za-z]{{{}}}", self.0, BODY_LEN + CHECKSUM_LEN)
    }

    /// The length in bytes of every key of this prefix.
    pub fn key_len(&self) -> usize {
        self.0.len() + BODY_LEN + CHECKSUM_LEN
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", self.0)
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not an API key. The messages never repeat the string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// It does not start with the expected prefix (another issuer or environment).
    WrongPrefix,
    /// It is not as long as every key of this prefix (truncated, or with trailing junk).
    WrongLength {
        /// The length of every key of this prefix.
        expected: usize,
        /// The length given, in bytes.
        found: usize,
    },
    /// A character after the prefix is not one of `0-9A-Za-z` (a space, newline, `_`…).
    InvalidCharacter {
        /// Its byte offset in the string.
        position: usize,
    },
    /// The checksum does not match: a mistyped, altered or made-up key.
    BadChecksum,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::WrongPrefix => f.write_str("not an API key of the expected prefix"),
            ParseError::WrongLength { expected, found } => {
                write!(f, "an API key is {expected} characters long, not {found}")
            }
            ParseError::InvalidCharacter { position } => write!(
                f,
                "invalid character at offset {position} of the API key (expected 0-9, A-Z, a-z)"
            ),
            ParseError::BadChecksum => f.write_str("the API key's checksum does not match"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The operating system's random number generator failed: no key was made.
#[derive(Debug)]
pub struct GenerateError(rand::rand_core::OsError);

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the operating system's random number generator failed: {}",
            self.0
        )
    }
}

impl std::error::Error for GenerateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An API key: the secret itself.
///
/// It shows as `ApiKey(<redacted>)` in `Debug` and `<redacted>` in `Display`, so it cannot
/// reach a log by accident, and its bytes are zeroed when it is dropped. The text is reached
/// only through [`expose_secret`](ApiKey::expose_secret), to show a new key once.
///
/// ```
/// use tower_shield::api_key::{ApiKey, KeyPrefix};
///
/// let key = ApiKey::generate(&KeyPrefix::new("ech_").unwrap())?;
/// assert!(key.expose_secret().starts_with("ech_"));
/// assert_eq!(key.expose_secret().len(), 53);
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
///
/// // What a client sends is parsed (checksum checked) before anything is looked up.
/// let parsed = ApiKey::parse(key.expose_secret(), &KeyPrefix::new("ech_").unwrap())?;
/// assert_eq!(parsed.sha256(), key.sha256());
/// assert!(ApiKey::parse("ech_not-a-key", &KeyPrefix::new("ech_").unwrap()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    text: String,
}

impl ApiKey {
    /// A new key of `prefix`: 256 bits from the operating system's CSPRNG (`OsRng`), base62,
    /// with its checksum.
    pub fn generate(prefix: &KeyPrefix) -> Result<ApiKey, GenerateError> {
        let mut text = String::with_capacity(prefix.key_len());
        text.push_str(prefix.as_str());
        // Rejection sampling: a byte below 248 = 4 × 62 maps uniformly onto the alphabet.
        let mut pool = Zeroizing::new([0u8; 64]);
        let mut body = Zeroizing::new([0u8; BODY_LEN]);
        let mut filled = 0;
        while filled < BODY_LEN {
            OsRng.try_fill_bytes(&mut pool[..]).map_err(GenerateError)?;
            for b in pool.iter() {
                if *b < 248 && filled < BODY_LEN {
                    body[filled] = ALPHABET[usize::from(*b % 62)];
                    filled += 1;
                }
            }
        }
        for b in body.iter() {
            text.push(char::from(*b));
        }
        let checksum = encode_checksum(crc32fast::hash(text.as_bytes()));
        for b in checksum {
            text.push(char::from(b));
        }
        Ok(ApiKey { text })
    }

    /// Parses what a client sent: the exact prefix, the exact length, only `0-9A-Za-z` after
    /// the prefix, and a matching checksum. Nothing is trimmed: a key with a trailing space
    /// or newline is refused. Never panics, whatever the input.
    pub fn parse(text: &str, prefix: &KeyPrefix) -> Result<ApiKey, ParseError> {
        check_format(text, prefix)?;
        Ok(ApiKey {
            text: text.to_owned(),
        })
    }

    /// Whether `text` is a well-formed key of `prefix` (the checks of [`parse`](Self::parse),
    /// without copying the secret).
    pub fn is_well_formed(text: &str, prefix: &KeyPrefix) -> bool {
        check_format(text, prefix).is_ok()
    }

    /// The key's text, to show it once to its owner. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The guide's storage form: SHA-256 of the whole key string, as Python's
    /// `hashlib.sha256(key.encode()).hexdigest()` computes it (use
    /// [`to_hex`](KeyDigest::to_hex) for the hex).
    pub fn sha256(&self) -> KeyDigest {
        KeyHasher::sha256().digest(self)
    }
}

impl Drop for ApiKey {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn check_format(text: &str, prefix: &KeyPrefix) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let p = prefix.as_str().as_bytes();
    if bytes.len() < p.len() || &bytes[..p.len()] != p {
        return Err(ParseError::WrongPrefix);
    }
    if bytes.len() != prefix.key_len() {
        return Err(ParseError::WrongLength {
            expected: prefix.key_len(),
            found: bytes.len(),
        });
    }
    if let Some(offset) = bytes[p.len()..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
    {
        return Err(ParseError::InvalidCharacter {
            position: p.len() + offset,
        });
    }
    let (signed, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    match decode_checksum(checksum) {
        Some(value) if value == u64::from(crc32fast::hash(signed)) => Ok(()),
        _ => Err(ParseError::BadChecksum),
    }
}

/// A CRC32 as 6 base62 digits, most significant first, zero-padded.
fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [ALPHABET[0]; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

/// The value of 6 base62 digits (up to 62⁶ − 1, which fits a u64), or `None` for a byte
/// outside the alphabet.
fn decode_checksum(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        Some(acc * 62 + u64::from(d))
    })
}

/// The stored form of a key: a 32-byte digest (SHA-256, or HMAC-SHA-256 with a pepper).
///
/// Equality is constant-time ([`subtle::ConstantTimeEq`]): two digests are compared over all
/// 32 bytes whatever they hold. A digest is not secret, but `Debug` shows only its
/// [`id`](KeyDigest::id), as the configuration does.
///
/// ```
/// use tower_shield::api_key::KeyDigest;
///
/// // `echo -n hello | sha256sum`
/// let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/// let digest = KeyDigest::from_hex(hex).unwrap();
/// assert_eq!(digest.to_hex(), hex);
/// assert_eq!(digest.id().to_string(), "2cf24dba");
/// assert!(KeyDigest::from_hex("2cf2").is_none());
/// ```
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// A digest from its 32 bytes (an `API_KEY_HASHES` entry, hex-decoded).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyDigest(bytes)
    }

    /// A digest from 64 hex digits (either case), or `None`.
    pub fn from_hex(hex: &str) -> Option<Self> {
        hex::FromHex::from_hex(hex).ok().map(KeyDigest)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, the form of `API_KEY_HASHES`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 4 bytes: enough to tell keys apart in logs, useless to find the key.
    pub fn id(&self) -> KeyId {
        KeyId([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl ConstantTimeEq for KeyDigest {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for KeyDigest {
    /// Constant-time: all 32 bytes are compared whatever they hold.
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for KeyDigest {}

impl From<[u8; 32]> for KeyDigest {
    fn from(bytes: [u8; 32]) -> Self {
        KeyDigest(bytes)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({}…)", self.id())
    }
}

impl fmt::Display for KeyDigest {
    /// The full lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The first 4 bytes of a key's digest, shown as 8 hex digits: what logs and the
/// [`Authenticated`](super::Authenticated) extension say about a key. Never the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// The 4 bytes.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// How keys are turned into their stored digest.
///
/// - [`KeyHasher::sha256`] (the default): SHA-256 of the whole key string, the guide's form,
///   so the digests already in `API_KEY_HASHES` keep working. A key holds 256 random bits, so
///   a fast hash is enough (NIST SP 800-63B §5.1.2.2: look-up secrets of at least 112 bits
///   "SHALL be hashed with an approved one-way function"); a slow password hash would cost
///   milliseconds per request for nothing.
/// - [`KeyHasher::hmac_sha256`]: HMAC-SHA-256 keyed with a server-side pepper
///   (`SECRET_KEY`, at least 32 bytes). A copy of the stored digests alone is then useless
///   for checking guesses. The stored digests must have been made with the same pepper.
///
/// The pepper is zeroed on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct KeyHasher(Kind);

#[derive(Clone)]
enum Kind {
    Sha256,
    Hmac(Zeroizing<Vec<u8>>),
}

impl KeyHasher {
    /// Plain SHA-256 of the key string.
    pub const fn sha256() -> Self {
        KeyHasher(Kind::Sha256)
    }

    /// HMAC-SHA-256 keyed by `pepper`, which must be at least 32 bytes (a [`ConfigError`] for
    /// the setting `SECRET_KEY`, value not shown, otherwise).
    pub fn hmac_sha256(pepper: &[u8]) -> Result<Self, ConfigError> {
        if pepper.len() < SecretKey::MIN_LEN {
            return Err(ConfigError::new(
                "SECRET_KEY",
                format!(
                    "an API-key pepper must be at least {} bytes (the value is not shown)",
                    SecretKey::MIN_LEN
                ),
            ));
        }
        Ok(KeyHasher(Kind::Hmac(Zeroizing::new(pepper.to_vec()))))
    }

    /// HMAC-SHA-256 keyed by the configuration's `SECRET_KEY` (already checked to be at
    /// least 32 bytes).
    pub fn from_secret_key(secret: &SecretKey) -> Self {
        KeyHasher(Kind::Hmac(Zeroizing::new(secret.as_bytes().to_vec())))
    }

    /// Whether a pepper is used.
    pub fn is_peppered(&self) -> bool {
        matches!(self.0, Kind::Hmac(_))
    }

    /// The stored form of `key`.
    pub fn digest(&self, key: &ApiKey) -> KeyDigest {
        self.digest_str(key.expose_secret())
    }

    pub(crate) fn digest_str(&self, text: &str) -> KeyDigest {
        match &self.0 {
            Kind::Sha256 => KeyDigest(Sha256::digest(text.as_bytes()).into()),
            Kind::Hmac(pepper) => {
                // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
                let mut mac = match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(pepper) {
                    Ok(mac) => mac,
                    Err(_) => return KeyDigest([0; 32]),
                };
                mac.update(text.as_bytes());
                KeyDigest(mac.finalize().into_bytes().into())
            }
        }
    }

    /// Whether `key` hashes to `expected`, compared in constant time.
    pub fn verify(&self, key: &ApiKey, expected: &KeyDigest) -> bool {
        self.digest(key).ct_eq(expected).into()
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::sha256()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Sha256 => f.write_str("KeyHasher::Sha256"),
            Kind::Hmac(_) => f.write_str("KeyHasher::HmacSha256(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_digits_round_trip() {
        for crc in [0, 1, 61, 62, u32::MAX, 0x1234_5678] {
            let digits = encode_checksum(crc);
            assert_eq!(decode_checksum(&digits), Some(u64::from(crc)));
        }
        assert_eq!(&encode_checksum(0), b"000000");
        assert_eq!(&encode_checksum(61), b"00000z");
        assert_eq!(&encode_checksum(62), b"000010");
    }

    #[test]
    fn generated_keys_have_the_format() {
        let prefix = KeyPrefix::new("ech_").unwrap();
        for _ in 0..50 {
            let key = ApiKey::generate(&prefix).unwrap();
            let text = key.expose_secret();
            assert_eq!(text.len(), 53);
            assert!(text.starts_with("ech_"));
            assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(check_format(text, &prefix), Ok(()));
        }
    }

    #[test]
    fn body_characters_are_spread_over_the_alphabet() {
        let mut seen = [0u32; 128];
        for _ in 0..200 {
            let key = ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap();
            for b in key.expose_secret()[4..4 + BODY_LEN].bytes() {
                seen[usize::from(b)] += 1;
            }
        }
        // 8600 draws over 62 symbols: about 139 each; every symbol appears.
        for &c in ALPHABET {
            assert!(
                seen[usize::from(c)] > 50,
                "{} seen {}",
                c as char,
                seen[usize::from(c)]
            );
        }
    }

    #[test]
    fn prefixes_are_checked() {
        for good in ["ech_", "ech_live_", "ab_", "x1_"] {
            assert!(KeyPrefix::new(good).is_ok(), "{good}");
        }
        for bad in [
            "", "e", "ech", "Ech_", "1ch_", "ech-", "ech__", "ech_live", "é_",
        ] {
            assert!(KeyPrefix::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hmac_differs_from_sha256_and_needs_32_bytes() {
        let key = ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap();
        let peppered = KeyHasher::hmac_sha256(&[7; 32]).unwrap();
        assert!(peppered.is_peppered());
        assert_ne!(peppered.digest(&key), key.sha256());
        assert!(peppered.verify(&key, &peppered.digest(&key)));
        assert!(KeyHasher::hmac_sha256(&[7; 31]).is_err());
        assert_eq!(format!("{peppered:?}"), "KeyHasher::HmacSha256(<redacted>)");
    }

    #[test]
    fn digests_match_known_answers() {
        // FIPS 180-2 "abc"; `hashlib.sha256(b"abc").hexdigest()` gives the same.
        assert_eq!(
            KeyHasher::sha256().digest_str("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 6: a 131-byte key.
        let hasher = KeyHasher::hmac_sha256(&[0xaa; 131]).unwrap();
        assert_eq!(
            hasher
                .digest_str("Test Using Larger Than Block-Size Key - Hash Key First")
                .to_hex(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
