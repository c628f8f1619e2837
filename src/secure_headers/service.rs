use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, header};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::Shared;
use super::nonce::CspNonce;

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

/// Whether this request gets `Strict-Transport-Security`: it came over HTTPS (as the
/// [client context](crate::client_ip::ClientContext) says, or HSTS is always on) and is not
/// addressed to this machine's loopback. The cheap test goes first: a plain-HTTP request needs
/// no look at its `Host`.
fn hsts_applies<B>(shared: &Shared, req: &Request<B>) -> bool {
    let https = shared.hsts_always || shared.client_ip.context(req).is_https();
    https && !is_localhost(req)
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
    crate::host::is_loopback_host(host)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("localhost:8000"), "localhost");
        assert_eq!(strip_port("[::1]:8000"), "[::1]");
        assert_eq!(strip_port("[::1"), "[::1");
    }
}
