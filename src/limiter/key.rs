use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::SecretKey;

/// Who is limited: a fixed 128-bit value, whatever it was derived from.
///
/// An IP address is its own key (IPv4 in its IPv4-mapped IPv6 form, so `::ffff:1.2.3.4` and
/// `1.2.3.4` are one client). Any other identifier (a session or device id, an API key hash)
/// is hashed to 128 bits by the store's [`KeyHasher`] (SipHash-1-3 under the store's secret),
/// so a long identifier costs no more memory than an address and an attacker cannot choose
/// identifiers that collide.
///
/// ```
/// use std::net::IpAddr;
/// use tower_shield::limiter::{Key, KeyHasher};
///
/// let v4: IpAddr = "192.0.2.7".parse().unwrap();
/// let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
/// assert_eq!(Key::from_ip(v4), Key::from_ip(mapped));
/// let keys = KeyHasher::random();
/// assert_eq!(keys.hash(b"device-42"), keys.hash(b"device-42"));
///
/// // The same client under two policies of one store needs two keys.
/// let login = keys.namespace("login");
/// let search = keys.namespace("search");
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
    #[cfg_attr(not(feature = "rate-limit"), allow(dead_code))]
    #[inline]
    pub(crate) fn out_of_namespace(self, namespace: &Namespace) -> Key {
        // The mask is applied by XOR, its own inverse.
        self.in_namespace(namespace)
    }
}

/// A namespace of keys (one per policy), so several policies can share one store.
///
/// Made by [`KeyHasher::namespace`]. Keys are moved into a namespace by XOR with a secret
/// 128-bit mask derived from its name; a client would need the store's secret to make its key
/// in one namespace equal another client's key in another.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Namespace {
    mask: Key,
}

/// Hashes identifiers into [`Key`]s and policy names into [`Namespace`]s under a secret: each
/// store holds one ([`MemoryStore`](super::MemoryStore) a random one unless given a
/// [`SecretKey`]), and the layers built on a store take it from there.
///
/// Instances that share a store (Redis) must agree on every key: give each of their stores the
/// same [`SecretKey`]. Two stores of one process with different secrets never see each other's
/// keys.
///
/// ```
/// use tower_shield::SecretKey;
/// use tower_shield::limiter::KeyHasher;
///
/// let secret = SecretKey::new("0123456789abcdef0123456789abcdef-shared-by-every-instance")?;
/// // Two processes (or two stores) given the same secret agree…
/// assert_eq!(KeyHasher::from_secret(&secret).hash(b"device-1"), KeyHasher::from_secret(&secret).hash(b"device-1"));
/// // …and random hashers agree with nobody.
/// assert_ne!(KeyHasher::random().hash(b"device-1"), KeyHasher::random().hash(b"device-1"));
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHasher {
    k0: u64,
    k1: u64,
}

impl KeyHasher {
    /// A hasher under a secret drawn at random: its keys mean nothing outside this value and
    /// its copies.
    pub fn random() -> KeyHasher {
        let (k0, k1) = rand::random();
        KeyHasher { k0, k1 }
    }

    /// A hasher under `secret`: equal secrets give equal keys in every process, and nothing
    /// about the secret can be learned from keys without it.
    pub fn from_secret(secret: &SecretKey) -> KeyHasher {
        let secret = secret.as_bytes();
        // `SecretKey` holds at least 32 bytes; the first 16 key a hash of the whole.
        let mut key = [0u8; 16];
        for (k, s) in key.iter_mut().zip(secret) {
            *k = *s;
        }
        let mut h = SipHasher13::new_with_key(&key);
        h.write(b"tower-shield limiter keys v1\0");
        h.write(secret);
        let hash = h.finish128();
        KeyHasher {
            k0: hash.h1,
            k1: hash.h2,
        }
    }

    /// The key of an arbitrary identifier (a session or device id, an API key hash).
    #[inline]
    pub fn hash(&self, identifier: &[u8]) -> Key {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(identifier);
        let hash = h.finish128();
        Key {
            hi: hash.h1,
            lo: hash.h2,
        }
    }

    /// The namespace called `name`: equal names give equal namespaces under one hasher.
    pub fn namespace(&self, name: &str) -> Namespace {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(b"scope\0");
        h.write(name.as_bytes());
        let hash = h.finish128();
        Namespace {
            mask: Key {
                hi: hash.h1,
                lo: hash.h2,
            },
        }
    }
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(<secret>)")
    }
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
        assert_ne!(Key::from_ip(v4), KeyHasher::random().hash(b"10.0.0.1"));
    }

    #[test]
    fn hashing_is_stable_under_one_hasher_and_spreads() {
        let keys = KeyHasher::random();
        assert_eq!(keys.hash(b"abc"), keys.hash(b"abc"));
        assert_ne!(keys.hash(b"abc"), keys.hash(b"abd"));
        assert_ne!(keys.hash(b""), Key::GLOBAL);
        assert_ne!(KeyHasher::random().hash(b"abc"), keys.hash(b"abc"));
    }

    #[test]
    fn a_shared_secret_gives_the_same_keys_in_every_process() {
        let secret = SecretKey::new("an example shared secret of 32+ bytes, for tests").unwrap();
        // another process: its own copy of the same bytes
        let copy = SecretKey::new(secret.as_bytes().to_vec()).unwrap();
        let other = SecretKey::new("an example shared secret of 32+ bytes, for tesTs").unwrap();
        let (a, b) = (
            KeyHasher::from_secret(&secret),
            KeyHasher::from_secret(&copy),
        );
        assert_eq!(a, b);
        assert_ne!(a, KeyHasher::from_secret(&other));
        assert_eq!(a.hash(b"device-1"), b.hash(b"device-1"));
        assert_eq!(a.namespace("ip"), b.namespace("ip"));
        assert_ne!(format!("{a:?}").len(), 0);
        assert!(!format!("{a:?}").contains(&a.k0.to_string()));
    }

    #[test]
    fn namespaces_separate_and_round_trip() {
        let keys = KeyHasher::random();
        let k = keys.hash(b"x");
        let a = keys.namespace("a");
        assert_ne!(k.in_namespace(&a), k);
        assert_eq!(k.in_namespace(&a).in_namespace(&a), k);
        assert_eq!(keys.namespace("a"), a);
        assert_ne!(keys.namespace("b"), a);
        assert_ne!(KeyHasher::random().namespace("a"), a);
    }
}
