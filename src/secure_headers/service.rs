use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::Scheme;
use http::{HeaderMap, Request, Response, header};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::Shared;
use super::nonce::CspNonce;

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The [`SecureHeadersLayer`](super::SecureHeadersLayer)'s service.
#[derive(Clone, Debug)]
pub struct SecureHeadersService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SecureHeadersService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let shared = &self.shared;
        let hsts = shared.hsts.is_some() && hsts_applies(shared, &req);
        let nonce = if shared.nonce {
            let nonce = CspNonce::generate();
            req.extensions_mut().insert(nonce);
            Some(nonce)
        } else {
            None
        };
        ResponseFuture::new(self.inner.call(req), shared.clone(), hsts, nonce)
    }
}

/// Whether this request gets `Strict-Transport-Security`: it came over HTTPS (or HSTS is
/// always on) and is not addressed to this machine's loopback. The cheap test goes first: a
/// plain-HTTP request needs no look at its `Host`.
fn hsts_applies<B>(shared: &Shared, req: &Request<B>) -> bool {
    let https = shared.hsts_always
        || req.uri().scheme() == Some(&Scheme::HTTPS)
        || via_trusted_https_proxy(shared, req);
    https && !is_localhost(req)
}

/// Whether a trusted proxy says the client spoke HTTPS to it.
fn via_trusted_https_proxy<B>(shared: &Shared, req: &Request<B>) -> bool {
    if shared.trusted_proxies.is_empty() {
        return false;
    }
    let Some(peer) = crate::client_ip::PeerAddr::find(req.extensions()) else {
        return false;
    };
    let peer = peer.ip().to_canonical();
    shared.trusted_proxies.iter().any(|net| net.contains(&peer)) && forwarded_https(req.headers())
}

/// What the nearest (trusted) proxy says about the scheme: the last `X-Forwarded-Proto`
/// entry, else the last `Forwarded` element's `proto`.
fn forwarded_https(headers: &HeaderMap) -> bool {
    if let Some(v) = headers.get_all(X_FORWARDED_PROTO).iter().next_back() {
        return v
            .to_str()
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    }
    if let Some(v) = headers.get_all(header::FORWARDED).iter().next_back() {
        let Some(last) = v.to_str().ok().and_then(|s| s.rsplit(',').next()) else {
            return false;
        };
        return last.split(';').any(|pair| {
            let mut kv = pair.splitn(2, '=');
            let key = kv.next().unwrap_or("").trim();
            let value = kv.next().unwrap_or("").trim().trim_matches('"');
            key.eq_ignore_ascii_case("proto") && value.eq_ignore_ascii_case("https")
        });
    }
    false
}

/// Whether the request is addressed to this machine's loopback (`localhost`, `*.localhost`,
/// `127.0.0.0/8`, `[::1]`).
fn is_localhost<B>(req: &Request<B>) -> bool {
    let host = match req.uri().host() {
        Some(h) => h,
        None => match req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
        {
            Some(h) => strip_port(h),
            None => return false,
        },
    };
    is_loopback_host(host)
}

fn strip_port(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if host.len() > 10 && host.is_char_boundary(host.len() - 10) {
        let (_, tail) = host.split_at(host.len() - 10);
        if tail.eq_ignore_ascii_case(".localhost") {
            return true;
        }
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "app.localhost",
            "127.0.0.1",
            "127.9.8.7",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "localhost.example.com",
            "mylocalhost",
            "128.0.0.1",
            "[::2]",
            "",
            "é",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
        assert_eq!(strip_port("localhost:8000"), "localhost");
        assert_eq!(strip_port("[::1]:8000"), "[::1]");
        assert_eq!(strip_port("[::1"), "[::1");
    }

    #[test]
    fn forwarded_proto() {
        let mut h = HeaderMap::new();
        assert!(!forwarded_https(&h));
        h.insert("x-forwarded-proto", "http, HTTPS".parse().unwrap());
        assert!(forwarded_https(&h));
        h.insert("x-forwarded-proto", "https, http".parse().unwrap());
        assert!(!forwarded_https(&h));
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            "for=1.2.3.4;proto=http, for=5.6.7.8;proto=\"https\""
                .parse()
                .unwrap(),
        );
        assert!(forwarded_https(&h));
    }
}
