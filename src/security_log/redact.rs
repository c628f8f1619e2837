//! What is never logged: credentials in headers and in query parameters. Pure functions.
//!
//! [`SecurityLog`](super::SecurityLog) records a fixed, short list of request facts (method,
//! path without its query, client address, `User-Agent`, a validated request id and a hash of
//! a valid device id). It never records header values other than those, never a query string
//! and never a body, so credentials cannot reach a log through it. These functions state the
//! policy for the rest of the crate and for your own code: use [`is_sensitive_header`] before
//! logging a header, and [`redact_query`] before logging a URI with its query.

use std::borrow::Cow;

use http::HeaderName;

/// Headers whose values are credentials and are never logged, by exact name.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
];

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Whether a header's value must never be logged: one of [`SENSITIVE_HEADERS`], or a name
/// that says it carries a credential (`token`, `secret`, `password`, `session`, `api-key`,
/// `apikey`, `auth`, `cookie`, `signature`).
///
/// ```
/// use http::HeaderName;
/// use tower_shield::security_log::redact::is_sensitive_header;
///
/// assert!(is_sensitive_header(&HeaderName::from_static("authorization")));
/// assert!(is_sensitive_header(&HeaderName::from_static("x-session-token")));
/// assert!(!is_sensitive_header(&HeaderName::from_static("user-agent")));
/// ```
pub fn is_sensitive_header(name: &HeaderName) -> bool {
    let name = name.as_str(); // lowercase by construction
    SENSITIVE_HEADERS.contains(&name)
        || [
            "token",
            "secret",
            "password",
            "passwd",
            "session",
            "api-key",
            "apikey",
            "api_key",
            "auth",
            "cookie",
            "signature",
            "credential",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// Whether a query parameter's value must never be logged: `key`, `api_key`, `apikey`,
/// `token`, `access_token`, `password`, `secret`, `client_secret`, `sig`, `signature`,
/// `session`, `code`… (case and `-`/`_` ignored; any name ending in `key` or containing
/// `token`, `secret`, `pass`, `auth`, `session` or `signature`).
///
/// ```
/// use tower_shield::security_log::redact::is_sensitive_param;
///
/// assert!(is_sensitive_param("api_key") && is_sensitive_param("API-KEY"));
/// assert!(is_sensitive_param("access_token") && is_sensitive_param("password"));
/// assert!(!is_sensitive_param("q") && !is_sensitive_param("page"));
/// ```
pub fn is_sensitive_param(name: &str) -> bool {
    let mut folded = [0u8; 64];
    let mut len = 0;
    for b in name.bytes().filter(|b| !matches!(b, b'-' | b'_' | b'.')) {
        if len == folded.len() {
            // A 64-character parameter name is not a name anyone logs: treat it as secret.
            return true;
        }
        folded[len] = b.to_ascii_lowercase();
        len += 1;
    }
    let name = &folded[..len];
    let contains = |word: &[u8]| name.windows(word.len()).any(|w| w == word);
    matches!(name, b"pwd" | b"sig" | b"code" | b"sid" | b"jwt")
        || name.ends_with(b"key")
        || [
            &b"token"[..],
            b"secret",
            b"pass",
            b"auth",
            b"session",
            b"signature",
            b"credential",
        ]
        .iter()
        .any(|w| contains(w))
}

/// `query` (without the `?`) with the value of every [sensitive](is_sensitive_param)
/// parameter replaced by [`REDACTED`]. Parameter names are compared percent-decoded only as
/// far as `%5F` (`_`) and `%2D` (`-`) go; anything else unusual in a name is kept as is. The
/// result is not escaped: pass it through [`escape`](super::escape::escape) before logging.
///
/// ```
/// use tower_shield::security_log::redact::redact_query;
///
/// assert_eq!(redact_query("q=jazz&api_key=sk_live_123"), "q=jazz&api_key=[redacted]");
/// assert_eq!(redact_query("q=jazz&page=2"), "q=jazz&page=2");
/// ```
pub fn redact_query(query: &str) -> Cow<'_, str> {
    let sensitive = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        let name = name
            .replace("%5F", "_")
            .replace("%5f", "_")
            .replace("%2D", "-");
        let name = name.replace("%2d", "-");
        is_sensitive_param(&name)
    };
    if !query.split('&').any(sensitive) {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        if sensitive(pair) {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            out.push_str(name);
            out.push('=');
            out.push_str(REDACTED);
        } else {
            out.push_str(pair);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_header_is_sensitive() {
        for name in SENSITIVE_HEADERS {
            assert!(
                is_sensitive_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in [
            "x-device-id",
            "x-request-id",
            "accept",
            "origin",
            "x-forwarded-for",
        ] {
            assert!(
                !is_sensitive_header(&HeaderName::from_static(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn query_secrets_are_redacted_whatever_their_spelling() {
        let q = "api%5Fkey=sk_live_1&Token=t&x=1&password=p&key=k&q=ok";
        let r = redact_query(q);
        for secret in ["sk_live_1", "=t&", "=p&", "=k&"] {
            assert!(!r.contains(secret), "{r}");
        }
        assert!(r.contains("x=1") && r.contains("q=ok"));
    }
}
