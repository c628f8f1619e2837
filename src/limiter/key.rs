use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::OnceLock;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::error::ConfigError;

/// Who is limited: a fixed 128-bit value, whatever it was derived from.
///
/// An IP address is its own key (IPv4 in its IPv4-mapped IPv6 form, so `::ffff:1.2.3.4` and
/// `1.2.3.4` are one client). Any other identifier (a session or device id, an API key hash)
/// is hashed to 128 bits with SipHash-1-3 under a secret drawn once per process, so a long
/// identifier costs no more memory than an address and an attacker cannot choose identifiers
/// that collide.
///
/// ```
/// use std::net::IpAddr;
/// use tower_shield::limiter::{Key, Namespace};
///
/// let v4: IpAddr = "192.0.2.7".parse().unwrap();
/// let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
/// assert_eq!(Key::from_ip(v4), Key::from_ip(mapped));
/// assert_eq!(Key::hashed(b"device-42"), Key::hashed(b"device-42"));
///
/// // The same client under two policies of one store needs two keys.
/// let login = Namespace::new("login");
/// let search = Namespace::new("search");
/// assert_ne!(Key::from_ip(v4).in_namespace(&login), Key::from_ip(v4).in_namespace(&search));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    pub(crate) hi: u64,
    pub(crate) lo: u64,
}

impl Key {
    /// One key shared by every request: a global limit.
    pub const GLOBAL: Key = Key { hi: 0, lo: 0 };

    /// The key of an IP address.
    #[inline]
    pub fn from_ip(ip: IpAddr) -> Key {
        let bits = match ip {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        Key::from_u128(bits)
    }

    /// The key of an arbitrary identifier, hashed under the process secret.
    pub fn hashed(identifier: &[u8]) -> Key {
        let mut h = SipHasher13::new_with_keys(secret().0, secret().1);
        h.write(identifier);
        let hash = h.finish128();
        Key {
            hi: hash.h1,
            lo: hash.h2,
        }
    }

    /// Derives the secret of [`Key::hashed`] and [`Namespace::new`] from `secret` (at least 32
    /// bytes, such as `SECRET_KEY`) for the rest of the process, instead of a random one.
    ///
    /// Instances that share a store ([`RedisStore`](super::RedisStore)) must compute the
    /// same key for the same session or device id, and the same namespace for the same
    /// policy: give every instance the same secret, and call this at start-up, before any
    /// key is hashed (before building a rate-limit or API-key layer). Calling it again with
    /// the same secret is harmless.
    ///
    /// # Errors
    ///
    /// When `secret` is shorter than 32 bytes, or keys were already hashed under another
    /// secret (the random one, or a different shared one): changing it now would split every
    /// limit in two.
    ///
    /// ```
    /// use tower_shield::limiter::Key;
    ///
    /// let secret = b"0123456789abcdef0123456789abcdef-shared-by-every-instance";
    /// Key::use_secret(secret)?;
    /// Key::use_secret(secret)?; // the same again: fine
    /// assert!(Key::use_secret(b"another secret, another process?!!").is_err());
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn use_secret(secret: &[u8]) -> Result<(), ConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::new(
                "limiter.secret",
                format!(
                    "is shorter than {MIN_SECRET_LEN} bytes (the value is not shown); expected \
                     at least {MIN_SECRET_LEN} random bytes shared by every instance"
                ),
            ));
        }
        let keys = derive(secret);
        if *SECRET.get_or_init(|| keys) == keys {
            Ok(())
        } else {
            Err(ConfigError::new(
                "limiter.secret",
                "keys were already hashed under another secret in this process: call \
                 Key::use_secret at start-up, before any layer is built",
            ))
        }
    }

    /// A raw 128-bit key, for callers that derive keys themselves.
    #[inline]
    pub const fn from_u128(bits: u128) -> Key {
        Key {
            hi: (bits >> 64) as u64,
            lo: bits as u64,
        }
    }

    /// The 128 bits of this key.
    #[inline]
    pub const fn to_u128(self) -> u128 {
        ((self.hi as u128) << 64) | self.lo as u128
    }

    /// This key within `namespace`, distinct from the same key within any other namespace.
    #[inline]
    pub fn in_namespace(self, namespace: &Namespace) -> Key {
        Key {
            hi: self.hi ^ namespace.mask.hi,
            lo: self.lo ^ namespace.mask.lo,
        }
    }

    /// The key that [`in_namespace`](Self::in_namespace) made this one from.
    #[cfg_attr(not(all(feature = "redis", feature = "rate-limit")), allow(dead_code))]
    #[inline]
    pub(crate) fn out_of_namespace(self, namespace: &Namespace) -> Key {
        // The mask is applied by XOR, its own inverse.
        self.in_namespace(namespace)
    }
}

/// A namespace of keys (one per policy), so several policies can share one store.
///
/// Keys are moved into a namespace by XOR with a secret 128-bit mask derived from its name;
/// a client would need the process secret to make its key in one namespace equal another
/// client's key in another.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Namespace {
    mask: Key,
}

impl Namespace {
    /// The namespace called `name`. Equal names give equal namespaces within one process.
    pub fn new(name: &str) -> Namespace {
        let mut tagged = Vec::with_capacity(name.len() + 6);
        tagged.extend_from_slice(b"scope\0");
        tagged.extend_from_slice(name.as_bytes());
        Namespace {
            mask: Key::hashed(&tagged),
        }
    }
}

/// The SipHash keys of [`Key::hashed`] and [`Namespace::new`]: random on first use, unless
/// [`Key::use_secret`] set them first.
static SECRET: OnceLock<(u64, u64)> = OnceLock::new();

#[inline]
fn secret() -> (u64, u64) {
    *SECRET.get_or_init(rand::random)
}

/// The shortest secret [`Key::use_secret`] accepts, in bytes.
const MIN_SECRET_LEN: usize = 32;

/// The SipHash keys derived from a shared secret: SipHash-1-3 keyed with the secret's first
/// 16 bytes over a label and the whole secret, so equal secrets give equal keys in every
/// process and nothing about the secret can be learned from keys without it.
fn derive(secret: &[u8]) -> (u64, u64) {
    let mut key = [0u8; 16];
    key.copy_from_slice(&secret[..16]);
    let mut h = SipHasher13::new_with_key(&key);
    h.write(b"tower-shield limiter keys v1\0");
    h.write(secret);
    let hash = h.finish128();
    (hash.h1, hash.h2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_their_own_keys() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Key::from_ip(ip).to_u128(),
            0x2001_0db8_0000_0000_0000_0000_0000_0001
        );
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(Key::from_ip(v4).to_u128(), 0xffff_0a00_0001);
        assert_ne!(Key::from_ip(v4), Key::hashed(b"10.0.0.1"));
    }

    #[test]
    fn hashing_is_stable_in_a_process_and_spreads() {
        assert_eq!(Key::hashed(b"abc"), Key::hashed(b"abc"));
        assert_ne!(Key::hashed(b"abc"), Key::hashed(b"abd"));
        assert_ne!(Key::hashed(b""), Key::GLOBAL);
    }

    #[test]
    fn a_shared_secret_gives_the_same_keys_in_every_process() {
        let secret = b"an example shared secret of 32+ bytes, for tests";
        // `derive` is all a process computes from the secret: two processes given the same
        // secret hash with the same keys, and so agree on every key and namespace.
        // another process: its own copy of the same bytes
        let copy = String::from_utf8_lossy(secret).into_owned();
        assert_eq!(derive(secret), derive(copy.as_bytes()));
        assert_ne!(
            derive(secret),
            derive(b"an example shared secret of 32+ bytes, for tesTs")
        );
        assert_ne!(derive(secret), (0, 0));
        let hash = |keys: (u64, u64), id: &[u8]| {
            let mut h = SipHasher13::new_with_keys(keys.0, keys.1);
            h.write(id);
            h.finish128().as_u128()
        };
        assert_eq!(
            hash(derive(secret), b"device-1"),
            hash(derive(secret), b"device-1")
        );
    }

    #[test]
    fn use_secret_refuses_short_secrets_and_a_second_secret() {
        assert!(Key::use_secret(b"short").is_err());
        // Whichever secret this process settled on first (random or shared), a different
        // one is refused once keys exist.
        let _ = Key::hashed(b"x");
        let a = Key::use_secret(b"first secret of this test: 32 bytes or more");
        let b = Key::use_secret(b"second secret of this test: 32 bytes or more");
        assert!(a.is_err() || b.is_err());
    }

    #[test]
    fn namespaces_separate_and_round_trip() {
        let k = Key::hashed(b"x");
        let a = Namespace::new("a");
        assert_ne!(k.in_namespace(&a), k);
        assert_eq!(k.in_namespace(&a).in_namespace(&a), k);
        assert_eq!(Namespace::new("a"), a);
        assert_ne!(Namespace::new("b"), a);
    }
}
