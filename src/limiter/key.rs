use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::OnceLock;

use siphasher::sip128::{Hasher128, SipHasher13};

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

fn secret() -> (u64, u64) {
    static SECRET: OnceLock<(u64, u64)> = OnceLock::new();
    *SECRET.get_or_init(rand::random)
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
    fn namespaces_separate_and_round_trip() {
        let k = Key::hashed(b"x");
        let a = Namespace::new("a");
        assert_ne!(k.in_namespace(&a), k);
        assert_eq!(k.in_namespace(&a).in_namespace(&a), k);
        assert_eq!(Namespace::new("a"), a);
        assert_ne!(Namespace::new("b"), a);
    }
}
