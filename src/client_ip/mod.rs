//! Who is the client: the peer address, or the address your own proxies say they forwarded.
//!
//! Every per-client limit and every security log line needs the client's IP address. Behind
//! a reverse proxy or load balancer the TCP peer is the proxy, and the client's address is in
//! a forwarding header (`X-Forwarded-For` or RFC 7239 `Forwarded`) that **anyone can also
//! write**. A [`ClientIpStrategy`] says, explicitly, which addresses to believe:
//!
//! | strategy | use when | the client is |
//! |---|---|---|
//! | [`peer()`](ClientIpStrategy::peer) (the default) | clients connect directly | the peer address; headers are never read |
//! | [`trusted_proxies(cidrs)`](ClientIpStrategy::trusted_proxies) | you know your proxies' networks (recommended behind proxies) | the rightmost address in the header that is *not* one of your proxies |
//! | [`hops(n)`](ClientIpStrategy::hops) | exactly `n` proxies sit in front and the app is unreachable otherwise | the `n`-th address from the right |
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use http::Request;
//! use tower_shield::client_ip::{ClientIpError, ClientIpStrategy, PeerAddr};
//!
//! // The app runs behind a load balancer in 10.0.0.0/8.
//! let strategy = ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse()?])?;
//!
//! // The client put a fake address in front; the load balancer appended the real one.
//! let request = Request::builder()
//!     .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
//!     .extension(PeerAddr("10.0.0.5:51234".parse::<SocketAddr>()?))
//!     .body(())?;
//! assert_eq!(strategy.resolve_request(&request)?, "203.0.113.7".parse::<IpAddr>()?);
//!
//! // The same header from a client that connects directly is ignored.
//! let direct = Request::builder()
//!     .header("x-forwarded-for", "6.6.6.6")
//!     .extension(PeerAddr("198.51.100.9:40000".parse::<SocketAddr>()?))
//!     .body(())?;
//! let (parts, ()) = direct.into_parts();
//! assert_eq!(strategy.resolve(&parts)?, "198.51.100.9".parse::<IpAddr>()?);
//!
//! // Without a peer address there is no client: an error, never a shared bucket.
//! let no_peer = Request::builder().body(())?;
//! assert_eq!(strategy.resolve_request(&no_peer), Err(ClientIpError::MissingPeer));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The peer address
//!
//! [`resolve`](ClientIpStrategy::resolve) finds the peer in the request extensions, in this
//! order: this crate's [`PeerAddr`], a plain [`SocketAddr`], and, with the `axum` cargo
//! feature, axum's `ConnectInfo<SocketAddr>` (serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`). No peer is
//! [`ClientIpError::MissingPeer`], for every strategy that needs one.
//!
//! # How the header is read
//!
//! The rules follow Adam Pritchard's ["The perils of the 'real' client IP"][perils] and the
//! reference implementation `realclientip-go`; each closes a hole found in widely used
//! extractors.
//!
//! - **One header, chosen by you**: `X-Forwarded-For` by default, or `Forwarded` with
//!   [`header`](ClientIpStrategy::header). The other is ignored, so a client cannot add a
//!   header your proxy does not set and have it win. `X-Real-IP` and the like are never read.
//! - **Only from a trusted peer.** With `trusted_proxies`, a peer outside the trusted
//!   networks is the client and the header is not looked at: a server also reachable
//!   directly cannot be fooled.
//! - **All instances, merged, read from the right.** Every instance of the header is merged
//!   in order into one list (a client can send its own instance, and a proxy may append to
//!   either), which is walked from the right, where your proxies write. The leftmost entries
//!   are whatever the client sent and are never believed for that reason. Entries are
//!   skipped while they are trusted proxies; the first untrusted one is the client. If
//!   every entry and the peer are trusted, the leftmost entry (or the peer, when there is no
//!   header) is the client.
//! - **Garbage at the trust boundary is an error, never a reason to look further left.** An
//!   entry that is not an address ([`Malformed`](ClientIpError::Malformed)), or a `Forwarded`
//!   `unknown`/`_obfuscated` identifier ([`Obfuscated`](ClientIpError::Obfuscated)), stops the
//!   walk; stepping over it would hand the choice to the client on its left.
//! - **`Forwarded` is parsed element by element from the right**, so a client's unclosed
//!   quote (`for="1.1.1.1`) cannot sabotage the elements your proxy appended after it.
//! - Accepted entry forms: `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`,
//!   `[2001:db8::1]:443`, `fe80::1%eth0`, and in `Forwarded` `for=203.0.113.7` and
//!   `for="[2001:db8::1]:4711"` (a bare `for=[2001:db8::1]:4711` is tolerated too). Ports and
//!   IPv6 zones are dropped; `0.0.0.0` and `::` are malformed. Empty list elements
//!   (`1.2.3.4,,5.6.7.8`) are ignored, as HTTP list syntax requires, and spaces and tabs around
//!   entries are trimmed.
//! - **`::ffff:a.b.c.d` is IPv4** everywhere: in the header, for the peer and when matching
//!   the trusted networks.
//! - **Bounded work.** At most 32 list elements (empty ones included) are examined per
//!   request; needing more is [`TooManyEntries`](ClientIpError::TooManyEntries). Values
//!   are read as bytes, so non-UTF-8 input is simply malformed. Nothing is allocated for
//!   ordinary input and nothing panics on any input.
//!
//! # Errors
//!
//! A [`ClientIpError`] means the client cannot be identified. [`MissingPeer`] is a server
//! set-up problem (answer 500 and fix the server); the others come from the request or the
//! proxy chain (answer 400 and log it). Their messages name the header and the position of
//! the bad entry, never its content, so they are safe to log and to show.
//!
//! # Rate-limit keys
//!
//! An IPv6 client controls at least a /64 network. Key limits by [`Ipv6Grouping`] (a /64 by
//! default), not by the bare address, or one client gets 2⁶⁴ buckets.
//!
//! [perils]: https://adam-p.ca/blog/2022/03/x-forwarded-for/
//! [`MissingPeer`]: ClientIpError::MissingPeer

mod context;
mod forwarded;
mod prefix;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::header::FORWARDED;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use context::ClientContext;
pub use prefix::Ipv6Grouping;

use crate::ConfigError;
use crate::error::ConfigErrors;
use forwarded::{EntryError, MAX_ELEMENTS, RevElements, Syntax};

/// The address of the connection's peer, as a request extension.
///
/// Insert it when your server does not already provide a [`SocketAddr`] extension (or, with
/// the `axum` feature, axum's `ConnectInfo<SocketAddr>`), for example in a hyper
/// `service_fn` that knows the accepted connection's address:
///
/// ```
/// use std::net::SocketAddr;
/// use tower_shield::client_ip::PeerAddr;
///
/// let remote: SocketAddr = "192.0.2.7:50123".parse()?;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr(remote));
/// assert_eq!(PeerAddr::find(request.extensions()), Some(remote));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl PeerAddr {
    /// The peer address among `extensions`: a [`PeerAddr`], else a [`SocketAddr`], else (with
    /// the `axum` feature) axum's `ConnectInfo<SocketAddr>`.
    #[inline]
    pub fn find(extensions: &http::Extensions) -> Option<SocketAddr> {
        if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
            return Some(*addr);
        }
        if let Some(addr) = extensions.get::<SocketAddr>() {
            return Some(*addr);
        }
        #[cfg(feature = "axum")]
        {
            if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
                return Some(info.0);
            }
        }
        None
    }
}

/// The forwarding header a strategy reads. Exactly one is read; the other is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: <client>, <proxy1>, <proxy2>`, the de-facto standard (default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=<client>, for=<proxy1>;proto=https`.
    Forwarded,
}

impl ForwardingHeader {
    /// The header's name as usually written: `X-Forwarded-For` or `Forwarded`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ForwardingHeader::XForwardedFor => "X-Forwarded-For",
            ForwardingHeader::Forwarded => "Forwarded",
        }
    }

    /// The header's name for an [`http::HeaderMap`].
    pub fn header_name(self) -> HeaderName {
        match self {
            ForwardingHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ForwardingHeader::Forwarded => FORWARDED,
        }
    }

    fn syntax(self) -> Syntax {
        match self {
            ForwardingHeader::XForwardedFor => Syntax::XForwardedFor,
            ForwardingHeader::Forwarded => Syntax::Forwarded,
        }
    }
}

impl fmt::Display for ForwardingHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request's client address cannot be determined.
///
/// Messages say what is wrong and where (the header, and the entry's position counted from
/// the right), never what the entry contained: forwarding headers are attacker-controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIpError {
    /// The request carries no peer address. A server set-up problem, not the client's.
    #[error(
        "the request has no peer address, so the client cannot be identified: serve with \
         axum's `into_make_service_with_connect_info::<SocketAddr>()` and enable \
         tower-shield's `axum` feature, or insert a `PeerAddr`/`SocketAddr` request extension"
    )]
    MissingPeer,
    /// The entry at the trust boundary is not an IP address in the header's syntax.
    #[error(
        "entry {entry_index} of the {header} header (counted from the right, starting at 0) \
         is not an IP address, so the client cannot be identified"
    )]
    Malformed {
        /// The header read.
        header: ForwardingHeader,
        /// The entry's position among the comma-separated elements of all the header's
        /// instances merged, counted from the right: 0 is the last element of the last
        /// instance. Empty elements count.
        entry_index: usize,
    },
    /// The entry at the trust boundary is `unknown` or an obfuscated identifier such as
    /// `_hidden`: a proxy deliberately hid the address it forwarded for.
    #[error(
        "entry {entry_index} of the {header} header (counted from the right, starting at 0) \
         is `unknown` or an obfuscated identifier where a trusted proxy should name the \
         client, so the client cannot be identified"
    )]
    Obfuscated {
        /// The header read.
        header: ForwardingHeader,
        /// The entry's position, counted as for [`ClientIpError::Malformed`].
        entry_index: usize,
    },
    /// The walk would have to examine more than `limit` list elements.
    #[error(
        "the {header} header has more than {limit} entries to examine; a longer chain of \
         trusted proxies is not accepted"
    )]
    TooManyEntries {
        /// The header read.
        header: ForwardingHeader,
        /// The most elements examined per request.
        limit: usize,
    },
    /// With [`ClientIpStrategy::hops`], the header has fewer entries than the hop count: the
    /// request did not pass through every configured proxy, or the count is wrong.
    #[error(
        "the {header} header names {found} of the {expected} hops this server is configured \
         to expect; the request did not pass through every proxy, or the hop count is wrong"
    )]
    MissingHops {
        /// The header read.
        header: ForwardingHeader,
        /// The configured hop count.
        expected: usize,
        /// The non-empty entries found.
        found: usize,
    },
}

/// How to find a request's client address: the peer, or a forwarding header written by
/// proxies you trust. See the [module documentation](self) for the rules.
///
/// Cheap to clone (the trusted networks are shared).
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use tower_shield::client_ip::{ClientIpStrategy, ForwardingHeader};
///
/// let strategy = ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse()?])?
///     .header(ForwardingHeader::Forwarded);
/// let mut headers = HeaderMap::new();
/// headers.insert("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#.parse()?);
/// let peer = "10.0.0.5".parse::<IpAddr>().ok();
/// assert_eq!(strategy.resolve_from(peer, &headers)?, "2001:db8::7".parse::<IpAddr>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientIpStrategy {
    source: Source,
    header: ForwardingHeader,
    /// A digest of `source` and `header`: equal strategies have equal ids, so a layer can tell
    /// whether a [`ClientContext`] in the request was resolved the way it would resolve it.
    id: u64,
}

impl Default for ClientIpStrategy {
    fn default() -> Self {
        ClientIpStrategy::new(Source::Peer, ForwardingHeader::default())
    }
}

#[derive(Clone, Debug, Default, Hash)]
enum Source {
    #[default]
    Peer,
    Trusted(TrustedNets),
    Hops(usize),
}

/// Trusted networks, split by family. IPv4-mapped IPv6 networks are stored as IPv4, so a
/// (canonical) address is only ever matched against networks of its own family.
#[derive(Clone, Debug, Hash)]
struct TrustedNets {
    v4: Arc<[Ipv4Net]>,
    v6: Arc<[Ipv6Net]>,
}

impl TrustedNets {
    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.iter().any(|net| net.contains(&v4)),
            IpAddr::V6(v6) => self.v6.iter().any(|net| net.contains(&v6)),
        }
    }
}

const TRUSTED_PROXIES: &str = "client_ip.trusted_proxies";
const HOPS: &str = "client_ip.hops";

/// `::ffff:0:0/96`, the IPv4-mapped addresses (checked at compile time).
const MAPPED_RANGE: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);

impl ClientIpStrategy {
    fn new(source: Source, header: ForwardingHeader) -> Self {
        use std::hash::{Hash, Hasher};
        let mut digest = std::hash::DefaultHasher::new();
        (&source, header).hash(&mut digest);
        ClientIpStrategy {
            source,
            header,
            id: digest.finish(),
        }
    }

    /// The client is the peer address; forwarding headers are never read. The default, and
    /// the only right choice when clients connect to the server directly.
    pub fn peer() -> Self {
        ClientIpStrategy::default()
    }

    /// The client is the rightmost address in the forwarding header that is not in one of
    /// `proxies`, read only when the peer itself is in one of them.
    ///
    /// A single address is a network too (`IpNet::from(ip)`). An IPv4-mapped network
    /// (`::ffff:10.0.0.0/104`) means the IPv4 network (`10.0.0.0/8`).
    ///
    /// List your proxies, not more: a client whose own address is in a trusted network (an
    /// internal service calling through the load balancer) is skipped like a proxy, and the
    /// walk goes on into the entries *it* wrote. Where internal clients exist, list the
    /// proxies' addresses rather than the whole internal range.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] listing every problem: an empty list (use [`peer`](Self::peer)), and
    /// any network that contains every address of a family (`0.0.0.0/0`, `::/0`, or an IPv6
    /// network holding all of `::ffff:0:0/96`), since trusting everyone lets any client
    /// write its own address.
    ///
    /// ```
    /// use tower_shield::client_ip::ClientIpStrategy;
    ///
    /// let err = ClientIpStrategy::trusted_proxies(["0.0.0.0/0".parse()?]).unwrap_err();
    /// assert!(err.to_string().contains("spoof"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trusted_proxies(proxies: impl IntoIterator<Item = IpNet>) -> Result<Self, ConfigError> {
        let mut errors = ConfigErrors::default();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut any = false;
        for net in proxies {
            any = true;
            if net.prefix_len() == 0 {
                errors.push(
                    TRUSTED_PROXIES,
                    format!(
                        "{net} trusts every address, so any client could put any address in \
                         the forwarding header and the client address would be spoofable; \
                         list only the networks of your own proxies"
                    ),
                );
                continue;
            }
            match net {
                IpNet::V4(net) => v4.push(net.trunc()),
                IpNet::V6(net) => {
                    let mapped = net
                        .network()
                        .to_ipv4_mapped()
                        .filter(|_| net.prefix_len() >= 96);
                    match mapped.map(|addr| Ipv4Net::new(addr, net.prefix_len() - 96)) {
                        Some(Ok(as_v4)) if as_v4.prefix_len() > 0 => v4.push(as_v4.trunc()),
                        _ if net.contains(&MAPPED_RANGE) => errors.push(
                            TRUSTED_PROXIES,
                            format!(
                                "{net} contains every IPv4-mapped address (::ffff:0:0/96), so \
                                 it trusts every IPv4 client and the client address would be \
                                 spoofable; list only the networks of your own proxies"
                            ),
                        ),
                        _ => v6.push(net.trunc()),
                    }
                }
            }
        }
        if !any {
            errors.push(
                TRUSTED_PROXIES,
                "the list is empty, so no forwarding header could ever be believed; use \
                 ClientIpStrategy::peer() to identify clients by their peer address",
            );
        }
        errors.finish(|| {
            let nets = TrustedNets {
                v4: v4.into(),
                v6: v6.into(),
            };
            ClientIpStrategy::new(Source::Trusted(nets), ForwardingHeader::default())
        })
    }

    /// The client is the `n`-th address from the right of the forwarding header, counting
    /// the peer as hop 0: the header's last entry is hop 1, the one before it hop 2, and so
    /// on. `n` is the number of reverse proxies in front of the server, each of which
    /// appends the address it received the request from:
    ///
    /// ```text
    /// client 203.0.113.7 ─▶ CDN 198.51.100.2 ─▶ load balancer 10.0.0.5 ─▶ app
    ///
    /// X-Forwarded-For: 6.6.6.6, 203.0.113.7, 198.51.100.2      peer: 10.0.0.5
    ///                  (spoof)  hop 2        hop 1                   hop 0
    ///
    /// hops(2) → 203.0.113.7
    /// ```
    ///
    /// The peer is neither read nor checked, so this works without a peer address (for
    /// example on a Unix socket). That is also its weakness: prefer
    /// [`trusted_proxies`](Self::trusted_proxies) unless the server cannot be reached except
    /// through exactly these `n` proxies. Empty list elements are not hops. Fewer than `n`
    /// entries is [`ClientIpError::MissingHops`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `n` is 0 (use [`peer`](Self::peer)) or above 32.
    pub fn hops(n: usize) -> Result<Self, ConfigError> {
        let source = match n {
            0 => Err(ConfigError::new(
                HOPS,
                "0 hops means no proxy in front of the server; use ClientIpStrategy::peer() \
                 to identify clients by their peer address",
            )),
            1..=MAX_ELEMENTS => Ok(Source::Hops(n)),
            _ => Err(ConfigError::new(
                HOPS,
                format!("{n} hops is more than the {MAX_ELEMENTS} proxies supported"),
            )),
        }?;
        Ok(ClientIpStrategy::new(source, ForwardingHeader::default()))
    }

    /// Read `header` instead of `X-Forwarded-For`. Only that header is read; no effect on
    /// [`peer`](Self::peer), which reads none.
    pub fn header(self, header: ForwardingHeader) -> Self {
        ClientIpStrategy::new(self.source, header)
    }

    /// The header this strategy reads, or `None` for [`peer`](Self::peer).
    pub fn forwarding_header(&self) -> Option<ForwardingHeader> {
        match self.source {
            Source::Peer => None,
            Source::Trusted(_) | Source::Hops(_) => Some(self.header),
        }
    }

    /// The client address of a request, from its peer address (see [`PeerAddr::find`]) and
    /// headers.
    pub fn resolve(&self, parts: &http::request::Parts) -> Result<IpAddr, ClientIpError> {
        self.resolve_from(
            PeerAddr::find(&parts.extensions).map(|a| a.ip()),
            &parts.headers,
        )
    }

    /// [`resolve`](Self::resolve) for a whole request, as a middleware holds it.
    pub fn resolve_request<B>(&self, request: &http::Request<B>) -> Result<IpAddr, ClientIpError> {
        self.resolve_from(
            PeerAddr::find(request.extensions()).map(|a| a.ip()),
            request.headers(),
        )
    }

    /// The client address given the peer address (if known) and the request headers.
    ///
    /// The result is always canonical: an IPv4-mapped IPv6 address comes back as IPv4.
    pub fn resolve_from(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<IpAddr, ClientIpError> {
        let peer = peer.map(|ip| ip.to_canonical());
        match &self.source {
            Source::Peer => peer.ok_or(ClientIpError::MissingPeer),
            Source::Trusted(trusted) => {
                let peer = peer.ok_or(ClientIpError::MissingPeer)?;
                if !trusted.contains(peer) {
                    return Ok(peer);
                }
                let mut client = peer;
                for element in self.elements(headers) {
                    let (index, entry) = element?;
                    let ip = self.parse(index, entry)?;
                    if !trusted.contains(ip) {
                        return Ok(ip);
                    }
                    client = ip;
                }
                Ok(client)
            }
            &Source::Hops(n) => {
                let mut found = 0;
                for element in self.elements(headers) {
                    let (index, entry) = element?;
                    found += 1;
                    if found == n {
                        return self.parse(index, entry);
                    }
                }
                Err(ClientIpError::MissingHops {
                    header: self.header,
                    expected: n,
                    found,
                })
            }
        }
    }

    /// The header's non-empty elements, right to left over all its instances.
    fn elements<'a>(
        &self,
        headers: &'a HeaderMap,
    ) -> impl Iterator<Item = Result<(usize, &'a [u8]), ClientIpError>> + use<'a> {
        let header = self.header;
        let values = headers
            .get_all(header.header_name())
            .iter()
            .rev()
            .map(HeaderValue::as_bytes);
        RevElements::new(values).map(move |element| {
            element.map_err(|_| ClientIpError::TooManyEntries {
                header,
                limit: MAX_ELEMENTS,
            })
        })
    }

    fn parse(&self, entry_index: usize, entry: &[u8]) -> Result<IpAddr, ClientIpError> {
        let header = self.header;
        self.header.syntax().parse(entry).map_err(|e| match e {
            EntryError::Malformed => ClientIpError::Malformed {
                header,
                entry_index,
            },
            EntryError::Obfuscated => ClientIpError::Obfuscated {
                header,
                entry_index,
            },
        })
    }
}
