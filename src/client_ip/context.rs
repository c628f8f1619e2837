//! Who the client is, resolved once per request and shared by every layer.

use std::net::IpAddr;

use http::uri::Scheme;
use http::{Extensions, HeaderMap, HeaderName, Request, Uri};

use super::forwarded::{RevElements, forwarded_parameter, is_https};
use super::{ClientIpError, ClientIpStrategy, ForwardingHeader, PeerAddr, Source};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Who the client of a request is, as one [`ClientIpStrategy`] resolved it: its address (or
/// why it has none) and whether it spoke HTTPS, to this server or to the nearest trusted
/// proxy.
///
/// The outermost layer that needs it ([`SecurityLog`](crate::security_log) in a
/// [`Shield`](crate::Shield)) stores it in the request's extensions; every layer inside it
/// whose strategy is equal reads it instead of resolving again, and a layer used alone
/// resolves it with the same code. Handlers can read it too.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use http::Request;
/// use tower_shield::client_ip::{ClientContext, ClientIpStrategy};
///
/// let strategy = ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse()?])?;
/// let mut request = Request::builder()
///     .header("x-forwarded-for", "203.0.113.7")
///     .header("x-forwarded-proto", "https")
///     .extension("10.0.0.5:51234".parse::<SocketAddr>()?)
///     .body(())?;
/// let client = strategy.store_context(&mut request);
/// assert_eq!(client.ip()?, "203.0.113.7".parse::<IpAddr>()?);
/// assert!(client.is_https());
/// // what the layers inside read
/// assert_eq!(request.extensions().get::<ClientContext>(), Some(&client));
/// assert_eq!(strategy.context(&request), client);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientContext {
    ip: Result<IpAddr, ClientIpError>,
    https: bool,
    /// The [`ClientIpStrategy::id`] that resolved it.
    strategy: u64,
}

impl ClientContext {
    /// The client's address (canonical: IPv4 as IPv4), or why it cannot be known.
    pub fn ip(&self) -> Result<IpAddr, ClientIpError> {
        self.ip
    }

    /// Whether the request came over HTTPS: its URI says so (HTTP/2, absolute form), or the
    /// nearest proxy, trusted by the strategy, says so in `X-Forwarded-Proto` (with
    /// `X-Forwarded-For`) or in `Forwarded`'s `proto` (with `Forwarded`). A strategy that
    /// reads no header ([`peer`](ClientIpStrategy::peer)) believes no proxy.
    pub fn is_https(&self) -> bool {
        self.https
    }
}

impl ClientIpStrategy {
    /// The client of `request`: the [`ClientContext`] an outer layer with an equal strategy
    /// stored, or one resolved now (and not stored).
    #[inline]
    pub fn context<B>(&self, request: &Request<B>) -> ClientContext {
        self.context_from(request.uri(), request.headers(), request.extensions())
    }

    /// [`context`](Self::context) from the parts of a request.
    pub fn context_from(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> ClientContext {
        match extensions.get::<ClientContext>() {
            Some(stored) if stored.strategy == self.id => *stored,
            _ => self.resolve_context(uri, headers, extensions),
        }
    }

    /// [`context`](Self::context), stored in `request` for the layers inside.
    pub fn store_context<B>(&self, request: &mut Request<B>) -> ClientContext {
        let context = self.context(request);
        request.extensions_mut().insert(context);
        context
    }

    /// Resolves the client of a request with this strategy.
    fn resolve_context(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> ClientContext {
        tracing::trace!(target: "tower_shield::client_ip", "client resolved");
        let peer = PeerAddr::find(extensions).map(|a| a.ip().to_canonical());
        let https = uri.scheme() == Some(&Scheme::HTTPS)
            || (self.believes_proxy(peer) && self.forwarded_https(headers));
        ClientContext {
            ip: self.resolve_from(peer, headers),
            https,
            strategy: self.id,
        }
    }

    /// Whether the peer is a proxy whose forwarding headers this strategy believes.
    fn believes_proxy(&self, peer: Option<IpAddr>) -> bool {
        match &self.source {
            Source::Peer => false,
            Source::Trusted(trusted) => peer.is_some_and(|p| trusted.contains(p)),
            Source::Hops(_) => true,
        }
    }

    /// What the nearest proxy says of the scheme, in the header family this strategy reads:
    /// the last `X-Forwarded-Proto` element, or the last `Forwarded` element's `proto`.
    /// Anything unreadable is not HTTPS.
    fn forwarded_https(&self, headers: &HeaderMap) -> bool {
        let (name, forwarded) = match self.header {
            ForwardingHeader::XForwardedFor => (X_FORWARDED_PROTO, false),
            ForwardingHeader::Forwarded => (self.header.header_name(), true),
        };
        let values = headers.get_all(name).iter().rev().map(|v| v.as_bytes());
        let Some(Ok((_, last))) = RevElements::new(values).next() else {
            return false;
        };
        if forwarded {
            matches!(forwarded_parameter(last, b"proto"), Ok(Some(proto)) if is_https(proto))
        } else {
            is_https(last)
        }
    }
}
