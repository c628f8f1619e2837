//! Grouping a client address into the network it most likely controls, for rate-limit keys.

use std::net::IpAddr;

use crate::ConfigError;
use crate::limiter::Key;

/// How much of an IPv6 address identifies one client: the length of the prefix kept when an
/// address becomes a rate-limit key. IPv4 addresses are always kept whole.
///
/// # Why /64 by default
///
/// An IPv4 client rarely has more than one address, but an IPv6 customer is given a whole
/// network: at least a /64, often a /56 or a /48 (RIPE-690, RFC 6177), and any host can pick
/// a fresh address from its /64 for every request (privacy extensions, or tools such as
/// `freebind` that exist precisely to dodge per-address limits). Keyed per address, one
/// IPv6 client owns 2⁶⁴ rate-limit buckets, and fills a limiter's memory as a side effect.
/// Keyed per /64, it owns one, which is what Cloudflare does ("an individual IPv4 address or
/// IPv6 /64"). A shorter prefix (/56, /48) catches clients with bigger allocations at the
/// price of grouping more neighbours together; 32 is the shortest accepted, 128 keys every
/// address on its own (not recommended).
///
/// ```
/// use std::net::IpAddr;
/// use tower_shield::client_ip::Ipv6Grouping;
///
/// let grouping = Ipv6Grouping::default(); // /64
/// let a: IpAddr = "2001:db8:1:2:aaaa::1".parse()?;
/// let b: IpAddr = "2001:db8:1:2:bbbb::2".parse()?;
/// let other: IpAddr = "2001:db8:1:3::1".parse()?;
/// assert_eq!(grouping.group(a), "2001:db8:1:2::".parse::<IpAddr>()?);
/// assert_eq!(grouping.key(a), grouping.key(b));
/// assert_ne!(grouping.key(a), grouping.key(other));
///
/// // IPv4 is unchanged (an IPv4-mapped IPv6 address counts as IPv4).
/// let mapped: IpAddr = "::ffff:192.0.2.7".parse()?;
/// assert_eq!(grouping.group(mapped), "192.0.2.7".parse::<IpAddr>()?);
///
/// assert!(Ipv6Grouping::new(48).is_ok());
/// assert!(Ipv6Grouping::new(16).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Grouping {
    prefix_len: u8,
}

impl Ipv6Grouping {
    /// The default prefix length: 64, the smallest network an IPv6 customer is given.
    pub const DEFAULT_PREFIX_LEN: u8 = 64;
    /// The shortest prefix accepted.
    pub const MIN_PREFIX_LEN: u8 = 32;
    /// The longest prefix accepted: the whole address.
    pub const MAX_PREFIX_LEN: u8 = 128;

    /// Group IPv6 addresses by their first `prefix_len` bits (32 to 128).
    pub fn new(prefix_len: u8) -> Result<Self, ConfigError> {
        if (Self::MIN_PREFIX_LEN..=Self::MAX_PREFIX_LEN).contains(&prefix_len) {
            Ok(Ipv6Grouping { prefix_len })
        } else {
            Err(ConfigError::new(
                "client_ip.ipv6_prefix",
                format!(
                    "{prefix_len} is not a usable IPv6 prefix length; expected 32 to 128 \
                     (64 is the usual customer allocation, 56 or 48 group whole sites)"
                ),
            ))
        }
    }

    /// The prefix length kept from an IPv6 address.
    pub const fn prefix_len(self) -> u8 {
        self.prefix_len
    }

    /// The network `ip` belongs to: an IPv6 address with every bit after the prefix cleared,
    /// or the IPv4 address itself (`::ffff:a.b.c.d` is first turned into `a.b.c.d`).
    pub fn group(self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shr(u32::from(self.prefix_len))
                    .map_or(u128::MAX, |host_bits| !host_bits);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// The rate-limit key of `ip`'s group: `Key::from_ip(self.group(ip))`.
    pub fn key(self, ip: IpAddr) -> Key {
        Key::from_ip(self.group(ip))
    }
}

impl Default for Ipv6Grouping {
    /// Group by /64.
    fn default() -> Self {
        Ipv6Grouping {
            prefix_len: Self::DEFAULT_PREFIX_LEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_ipv6_at_every_length() {
        let addr = ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
        let cases = [
            (32, "2001:db8::"),
            (48, "2001:db8:aaaa::"),
            (56, "2001:db8:aaaa:bb00::"),
            (64, "2001:db8:aaaa:bbbb::"),
            (127, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:fffe"),
            (128, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"),
        ];
        for (len, want) in cases {
            assert_eq!(
                Ipv6Grouping::new(len).unwrap().group(addr),
                ip(want),
                "/{len}"
            );
        }
    }

    #[test]
    fn ipv4_is_kept_whole() {
        let g = Ipv6Grouping::new(32).unwrap();
        assert_eq!(g.group(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(g.group(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
    }

    #[test]
    fn out_of_range_lengths_are_config_errors() {
        for len in [0, 1, 31, 129, 255] {
            let err = Ipv6Grouping::new(len).unwrap_err();
            assert_eq!(err.problems()[0].setting(), "client_ip.ipv6_prefix");
            assert!(err.to_string().contains("32 to 128"), "{err}");
        }
        assert_eq!(Ipv6Grouping::default().prefix_len(), 64);
    }
}
