//! The Fetch standard's CORS-preflight rules: pure functions over methods and headers, no
//! tower types.

use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// At most this many names in `Access-Control-Request-Headers`; a browser sends a handful.
const MAX_REQUEST_HEADERS: usize = 64;

/// Whether a request is a CORS-preflight request as Fetch defines it: `OPTIONS`, with an
/// `Origin` and an `Access-Control-Request-Method`. Every other `OPTIONS` request is an
/// ordinary request for the application.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// Why a preflight was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The origin is not allowed (or was sent twice).
    Origin,
    /// The requested method is not allowed, or is not one method token.
    Method,
    /// A requested header is not allowed, or the list is malformed.
    Header,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Origin => "origin not allowed",
            Refusal::Method => "method not allowed",
            Refusal::Header => "request header not allowed",
        }
    }
}

/// The methods a browser may always use without listing them (CORS-safelisted methods).
pub(crate) const SAFELISTED_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// Methods browsers refuse to send at all; listing one is a configuration mistake.
pub(crate) const FORBIDDEN_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];

/// Whether the requested method (the `Access-Control-Request-Method` value) is allowed:
/// one of `allowed` byte for byte (`put` is not `PUT`), or a safelisted method.
pub(crate) fn method_allowed(requested: &HeaderValue, allowed: &[Method]) -> bool {
    let bytes = requested.as_bytes();
    SAFELISTED_METHODS.iter().any(|m| m.as_bytes() == bytes)
        || allowed.iter().any(|m| m.as_str().as_bytes() == bytes)
}

/// Which request headers a policy allows.
#[derive(Debug, Clone)]
pub(crate) struct HeaderRule {
    /// Allowed names, lower case.
    pub(crate) listed: Box<[HeaderName]>,
    /// Any name but `Authorization` (which must be listed: Fetch never lets `*` cover it).
    pub(crate) any: bool,
}

impl HeaderRule {
    fn allows(&self, name: &[u8]) -> bool {
        if self
            .listed
            .iter()
            .any(|l| l.as_str().as_bytes().eq_ignore_ascii_case(name))
        {
            return true;
        }
        self.any && !name.eq_ignore_ascii_case(b"authorization")
    }

    /// Checks every name of every `Access-Control-Request-Headers` line. Names are compared
    /// case-insensitively; optional whitespace and empty elements are tolerated (browsers
    /// send `a,b`, proxies may re-join lines as `a, b` or split them).
    pub(crate) fn check<'h>(
        &self,
        lines: impl Iterator<Item = &'h HeaderValue>,
    ) -> Result<(), Refusal> {
        let mut count = 0;
        for line in lines {
            for name in line.as_bytes().split(|&b| b == b',') {
                let name = name.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                count += 1;
                if count > MAX_REQUEST_HEADERS || !is_token(name) || !self.allows(name) {
                    return Err(Refusal::Header);
                }
            }
        }
        Ok(())
    }
}

/// An HTTP token (RFC 9110 `tchar`s): what a method or header name is made of.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn preflight_needs_all_three() {
        let mut h = HeaderMap::new();
        assert!(!is_preflight(&Method::OPTIONS, &h));
        h.insert(ORIGIN, hv("https://a.example"));
        assert!(!is_preflight(&Method::OPTIONS, &h));
        h.insert(ACCESS_CONTROL_REQUEST_METHOD, hv("PUT"));
        assert!(is_preflight(&Method::OPTIONS, &h));
        assert!(!is_preflight(&Method::GET, &h));
        h.remove(ORIGIN);
        assert!(!is_preflight(&Method::OPTIONS, &h));
    }

    #[test]
    fn methods_are_byte_exact() {
        let allowed = [Method::PUT, Method::from_bytes(b"NEW").unwrap()];
        assert!(method_allowed(&hv("PUT"), &allowed));
        assert!(method_allowed(&hv("NEW"), &allowed));
        assert!(method_allowed(&hv("GET"), &allowed));
        assert!(!method_allowed(&hv("put"), &allowed));
        assert!(!method_allowed(&hv("get"), &allowed));
        assert!(!method_allowed(&hv("DELETE"), &allowed));
        assert!(!method_allowed(&hv("PUT, DELETE"), &allowed));
    }

    #[test]
    fn headers_case_insensitive_and_authorization_never_by_star() {
        let rule = HeaderRule {
            listed: vec![HeaderName::from_static("x-device-id")].into(),
            any: false,
        };
        assert!(rule.check([hv("X-Device-ID")].iter()).is_ok());
        assert!(rule.check([hv(" , x-device-id ,, ")].iter()).is_ok());
        assert!(rule.check([hv("x-device-id, x-other")].iter()).is_err());
        assert!(
            rule.check([hv("x-device-id"), hv("x-other")].iter())
                .is_err()
        );
        assert!(rule.check([hv("x device")].iter()).is_err());
        let star = HeaderRule {
            listed: Box::new([]),
            any: true,
        };
        assert!(star.check([hv("x-anything,content-type")].iter()).is_ok());
        assert!(star.check([hv("authorization")].iter()).is_err());
        assert!(star.check([hv("Authorization")].iter()).is_err());
        let star_auth = HeaderRule {
            listed: vec![http::header::AUTHORIZATION].into(),
            any: true,
        };
        assert!(star_auth.check([hv("authorization,x-a")].iter()).is_ok());
        let many = HeaderValue::from_str(&vec!["x-a"; 65].join(",")).unwrap();
        assert!(star.check([many].iter()).is_err());
    }
}
