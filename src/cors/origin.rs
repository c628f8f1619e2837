//! Typed origins and the safe pattern language: pure parsing and matching, no tower types.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The scheme of an [`Origin`]: only `http` and `https` can be listed (documents with any
/// other scheme, such as `file:` or `data:`, send `Origin: null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`: readable and writable by anyone on the network path.
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn prefix(self) -> &'static [u8] {
        match self {
            Scheme::Http => b"http://",
            Scheme::Https => b"https://",
        }
    }
}

/// What kind of host an [`Origin`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HostKind {
    Domain,
    Ipv4,
    Ipv6,
}

/// A serialized web origin, checked: `scheme://host[:port]` exactly as a browser sends it in
/// the `Origin` header.
///
/// Parsing refuses everything a browser never sends, so a mistyped allow-list entry fails at
/// start-up instead of silently never matching: a trailing slash, a path, query or fragment,
/// userinfo, whitespace, upper-case letters, a default port (`:443` on `https`), a trailing
/// dot, a non-ASCII host (write its Punycode `xn--` form), a non-canonical IP address, and any
/// scheme but `http` and `https`. Each error says what would be right:
///
/// ```
/// use tower_shield::cors::Origin;
///
/// let origin: Origin = "https://app.example.com:8443".parse()?;
/// assert_eq!(origin.host(), "app.example.com");
/// assert_eq!(origin.port(), Some(8443));
/// assert_eq!(origin.to_string(), "https://app.example.com:8443");
///
/// let err = Origin::parse("https://app.example.com/").unwrap_err();
/// assert_eq!(err.suggestion(), Some("https://app.example.com"));
/// assert!(err.to_string().contains("did you mean `https://app.example.com`?"));
/// # Ok::<(), tower_shield::cors::OriginError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    kind: HostKind,
    port: Option<u16>,
    /// `scheme://host[:port]`.
    serialized: Box<str>,
    /// Where the host starts and ends in `serialized`.
    host: (usize, usize),
}

impl Origin {
    /// Parses a serialized origin (see the [type docs](Origin) for what is refused).
    pub fn parse(input: &str) -> Result<Origin, OriginError> {
        parse_origin(input, true)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: a lower-case domain name, a dotted IPv4 address, or a bracketed IPv6 address
    /// (`[::1]`).
    pub fn host(&self) -> &str {
        &self.serialized[self.host.0..self.host.1]
    }

    /// The port, when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The serialization: what a browser sends in `Origin`.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// Whether the host is this machine: `localhost`, `*.localhost`, `127.0.0.0/8` or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        crate::host::is_loopback_host(self.host())
    }

    /// Whether reading this origin's pages needs more than sitting on the network path:
    /// `https`, or a loopback host.
    pub fn is_secure(&self) -> bool {
        self.scheme == Scheme::Https || self.is_loopback()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialized)
    }
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Origin::parse(s)
    }
}

/// Why a string is not an [`Origin`] or an [`OriginPattern`], and what it probably should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError {
    input: String,
    reason: String,
    suggestion: Option<String>,
}

impl OriginError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        OriginError {
            input: input.to_owned(),
            reason: reason.into(),
            suggestion: None,
        }
    }

    fn suggest(mut self, candidate: Option<String>) -> Self {
        self.suggestion = candidate;
        self
    }

    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// A corrected form that does parse, when there is an obvious one.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.input.escape_debug(), self.reason)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for OriginError {}

/// The candidate if it parses as an origin, else the fix of its own next mistake. Every fix
/// removes one mistake (and adds none), so this ends.
fn if_valid(candidate: String) -> Option<String> {
    match parse_origin(&candidate, true) {
        Ok(_) => Some(candidate),
        Err(e) => e.suggestion,
    }
}

fn parse_origin(input: &str, suggest: bool) -> Result<Origin, OriginError> {
    let fix = |candidate: String| {
        if suggest { if_valid(candidate) } else { None }
    };
    if input.is_empty() {
        return Err(OriginError::new(input, "an empty origin"));
    }
    if input.chars().any(char::is_whitespace) {
        let trimmed: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        return Err(OriginError::new(input, "an origin has no whitespace").suggest(fix(trimmed)));
    }
    if input == "null" {
        return Err(OriginError::new(
            input,
            "`null` is sent by sandboxed frames, `file:` and `data:` documents, so allowing it \
             allows anyone; see `dangerously_allow_null_origin`",
        ));
    }
    if input == "*" {
        return Err(OriginError::new(input, "`*` is not an origin"));
    }
    let Some((scheme_text, rest)) = input.split_once("://") else {
        return Err(
            OriginError::new(input, "an origin starts with `https://` or `http://`")
                .suggest(fix(format!("https://{input}"))),
        );
    };
    let scheme = if scheme_text == "https" {
        Scheme::Https
    } else if scheme_text == "http" {
        Scheme::Http
    } else if scheme_text.eq_ignore_ascii_case("https") || scheme_text.eq_ignore_ascii_case("http")
    {
        return Err(
            OriginError::new(input, "browsers send the scheme in lower case").suggest(fix(
                format!("{}://{rest}", scheme_text.to_ascii_lowercase()),
            )),
        );
    } else {
        return Err(OriginError::new(
            input,
            "only `http` and `https` origins can be allowed (documents of other schemes send \
             `Origin: null`)",
        ));
    };
    if let Some(at) = rest.find(['/', '?', '#']) {
        let what = match &rest[at..] {
            "/" => "an origin has no trailing slash",
            t if t.starts_with('/') => "an origin has no path",
            t if t.starts_with('?') => "an origin has no query",
            _ => "an origin has no fragment",
        };
        return Err(
            OriginError::new(input, what).suggest(fix(format!("{scheme_text}://{}", &rest[..at])))
        );
    }
    if let Some(at) = rest.rfind('@') {
        return Err(
            OriginError::new(input, "an origin has no user name or password")
                .suggest(fix(format!("{scheme_text}://{}", &rest[at + 1..]))),
        );
    }
    let (host, port_text) = split_authority(rest)
        .ok_or_else(|| OriginError::new(input, "an IPv6 address is missing its closing `]`"))?;
    let port = match port_text {
        None => None,
        Some(p) => {
            let port = parse_port(p).ok_or_else(|| {
                OriginError::new(
                    input,
                    format!(
                        "`{}` is not a port (1 to 65535, no leading zero)",
                        p.escape_debug()
                    ),
                )
            })?;
            if port == scheme.default_port() {
                return Err(OriginError::new(
                    input,
                    format!("browsers leave the default port {port} of `{scheme_text}` out"),
                )
                .suggest(fix(format!("{scheme_text}://{host}"))));
            }
            Some(port)
        }
    };
    let with_host = |h: &str| match port {
        Some(p) => format!("{scheme_text}://{h}:{p}"),
        None => format!("{scheme_text}://{h}"),
    };
    let kind = check_host(host).map_err(|(reason, better)| {
        OriginError::new(input, reason).suggest(better.and_then(|h| fix(with_host(&h))))
    })?;
    let start = scheme_text.len() + 3;
    Ok(Origin {
        scheme,
        kind,
        port,
        host: (start, start + host.len()),
        serialized: input.into(),
    })
}

/// `host[:port]` → (host, port text); `None` for an unclosed IPv6 bracket.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    Some(match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

/// A port as browsers serialize it: 1–65535, decimal, no sign, no leading zero.
fn parse_port(text: &str) -> Option<u16> {
    parse_port_bytes(text.as_bytes())
}

fn parse_port_bytes(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || text[0] == b'0' {
        return None;
    }
    let mut n: u32 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    u16::try_from(n).ok()
}

/// Checks a host is in the form a browser serializes; else the reason and a better host.
fn check_host(host: &str) -> Result<HostKind, (String, Option<String>)> {
    if host.is_empty() {
        return Err(("an origin needs a host".into(), None));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        return match inner.parse::<Ipv6Addr>() {
            Ok(addr) => {
                let canonical = format!("[{addr}]");
                if canonical == host {
                    Ok(HostKind::Ipv6)
                } else {
                    Err((
                        "browsers send IPv6 addresses in their shortest, lower-case form".into(),
                        Some(canonical),
                    ))
                }
            }
            Err(_) => Err((
                format!("`{}` is not an IPv6 address", host.escape_debug()),
                None,
            )),
        };
    }
    if !host.is_ascii() {
        return Err((
            "browsers send international domain names in their Punycode (`xn--…`) form".into(),
            None,
        ));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err((
            "browsers send the host in lower case".into(),
            Some(host.to_ascii_lowercase()),
        ));
    }
    if let Some(bare) = host.strip_suffix('.') {
        return Err((
            "a trailing dot makes a different origin".into(),
            Some(bare.to_owned()),
        ));
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return match host.parse::<Ipv4Addr>() {
            Ok(addr) if addr.to_string() == host => Ok(HostKind::Ipv4),
            _ => Err((
                format!(
                    "`{}` is not an IPv4 address in dotted-decimal form",
                    host.escape_debug()
                ),
                None,
            )),
        };
    }
    if host.len() > 253 {
        return Err(("a host name is at most 253 characters".into(), None));
    }
    for label in host.split('.') {
        if !valid_label(label.as_bytes()) {
            return Err((
                format!(
                    "`{}` is not a host name label (1 to 63 of a-z 0-9 - _, no `-` at either end)",
                    label.escape_debug()
                ),
                None,
            ));
        }
    }
    Ok(HostKind::Domain)
}

fn valid_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label[0] != b'-'
        && label[label.len() - 1] != b'-'
        && label
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

/// Whether `*.suffix` would cover names that anyone can register.
/// The Public Suffix List (both its ICANN and private sections) decides; its default rule
/// makes every unlisted top-level label a suffix, except `localhost`.
pub(crate) fn is_public_suffix(suffix: &str) -> bool {
    suffix != "localhost"
        && psl::suffix(suffix.as_bytes()).is_some_and(|s| s.as_bytes() == suffix.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    /// This host exactly.
    Exact(Box<str>),
    /// One or more labels, then `.` and this suffix.
    Subdomains(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortPattern {
    /// This port (`None`: the scheme's default, so no port in the serialization).
    Exact(Option<u16>),
    /// Any port, or none.
    Any,
}

/// One entry of an allow-list: an exact [`Origin`], or one of two safe wildcards.
///
/// - `https://api.example.com`: that origin exactly (byte for byte, as Fetch compares).
/// - `https://*.example.com`: any origin whose host is one or more labels followed by
///   `.example.com`, with this scheme and port. It never matches `example.com` itself, nor
///   look-alikes such as `evilexample.com` or `example.com.evil.io`.
/// - `http://localhost:*`: that scheme and host with any port (or none). Combines with the
///   subdomain wildcard (`https://*.example.com:*`).
///
/// Nothing else: no `*` inside a label, no regex. For anything more, see
/// [`CorsBuilder::allow_origin_fn`](super::CorsBuilder::allow_origin_fn).
///
/// ```
/// use tower_shield::cors::OriginPattern;
///
/// let tenants = OriginPattern::parse("https://*.example.com")?;
/// assert!(tenants.matches("https://a.example.com"));
/// assert!(tenants.matches("https://a.b.example.com"));
/// assert!(!tenants.matches("https://example.com"));
/// assert!(!tenants.matches("https://eviltenantexample.com"));
/// assert!(!tenants.matches("https://example.com.evil.io"));
/// assert!(!tenants.matches("http://a.example.com"));
///
/// let dev = OriginPattern::parse("http://localhost:*")?;
/// assert!(dev.matches("http://localhost:5173"));
/// assert!(!dev.matches("http://localhost.evil.io:5173"));
/// # Ok::<(), tower_shield::cors::OriginError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginPattern {
    scheme: Scheme,
    host: HostPattern,
    port: PortPattern,
    text: Box<str>,
    exact: Option<Origin>,
}

impl OriginPattern {
    /// Parses an origin or a pattern (see the [type docs](OriginPattern)).
    pub fn parse(input: &str) -> Result<OriginPattern, OriginError> {
        if !input.contains('*') {
            let origin = Origin::parse(input)?;
            return Ok(OriginPattern::exact(origin));
        }
        if input == "*" {
            return Err(OriginError::new(
                input,
                "`*` (any origin) is a mode of its own, not a pattern: use `allow_any_origin`",
            ));
        }
        let (head, any_port) = match input.strip_suffix(":*") {
            Some(head) => (head, true),
            None => (input, false),
        };
        let (subdomains, base) = match head.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
            None => (false, head.to_owned()),
        };
        if base.contains('*') {
            // `https://*example.com` → `https://*.example.com`
            let better = head.split_once("://").and_then(|(scheme, rest)| {
                let tail = rest.trim_start_matches(['*', '.']);
                let ok = !tail.contains('*')
                    && tail.contains('.')
                    && parse_origin(&format!("{scheme}://{tail}"), false).is_ok();
                ok.then(|| format!("{scheme}://*.{tail}"))
            });
            return Err(OriginError::new(
                input,
                "a `*` may only be a whole leading label (`https://*.example.com`) or the port \
                 (`http://localhost:*`)",
            )
            .suggest(better));
        }
        let origin = parse_origin(&base, false).map_err(|e| OriginError {
            input: input.to_owned(),
            reason: e.reason,
            suggestion: None,
        })?;
        if subdomains && origin.kind != HostKind::Domain {
            return Err(OriginError::new(
                input,
                "`*.` can only stand before a domain name, not an IP address",
            ));
        }
        if any_port && origin.port.is_some() {
            return Err(OriginError::new(input, "a port and `:*` at once"));
        }
        let host = origin.host().into();
        Ok(OriginPattern {
            scheme: origin.scheme,
            host: if subdomains {
                HostPattern::Subdomains(host)
            } else {
                HostPattern::Exact(host)
            },
            port: if any_port {
                PortPattern::Any
            } else {
                PortPattern::Exact(origin.port)
            },
            text: input.into(),
            exact: None,
        })
    }

    fn exact(origin: Origin) -> OriginPattern {
        OriginPattern {
            scheme: origin.scheme,
            host: HostPattern::Exact(origin.host().into()),
            port: PortPattern::Exact(origin.port),
            text: origin.as_str().into(),
            exact: Some(origin),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The origin, when this pattern is one exact origin.
    pub fn as_origin(&self) -> Option<&Origin> {
        self.exact.as_ref()
    }

    /// The scheme every matching origin has.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// For `scheme://*.suffix`: the suffix.
    pub fn subdomains_of(&self) -> Option<&str> {
        match &self.host {
            HostPattern::Subdomains(s) => Some(s),
            HostPattern::Exact(_) => None,
        }
    }

    /// Whether every origin this pattern matches is [secure](Origin::is_secure).
    pub fn is_secure(&self) -> bool {
        self.scheme == Scheme::Https
            || match &self.host {
                HostPattern::Exact(h) => crate::host::is_loopback_host(h),
                HostPattern::Subdomains(s) => &**s == "localhost",
            }
    }

    /// Whether the serialized origin `origin` (a request's `Origin` value) matches, byte for
    /// byte: `HTTPS://A.EXAMPLE.COM` matches nothing, as no browser sends it.
    pub fn matches(&self, origin: &str) -> bool {
        self.matches_bytes(origin.as_bytes())
    }

    pub(crate) fn matches_bytes(&self, origin: &[u8]) -> bool {
        let Some(rest) = origin.strip_prefix(self.scheme.prefix()) else {
            return false;
        };
        let (host, port) = match split_request_authority(rest) {
            Some(split) => split,
            None => return false,
        };
        let port_ok = match (self.port, port) {
            (PortPattern::Exact(None), None) | (PortPattern::Any, None) => true,
            (PortPattern::Exact(None), Some(_)) | (PortPattern::Exact(Some(_)), None) => false,
            (PortPattern::Exact(Some(want)), Some(p)) => parse_port_bytes(p) == Some(want),
            (PortPattern::Any, Some(p)) => {
                parse_port_bytes(p).is_some_and(|p| p != self.scheme.default_port())
            }
        };
        port_ok
            && match &self.host {
                HostPattern::Exact(h) => host == h.as_bytes(),
                HostPattern::Subdomains(suffix) => subdomain_of(host, suffix.as_bytes()),
            }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OriginPattern::parse(s)
    }
}

/// Splits a request's `host[:port]`; `None` if it has anything an origin does not.
fn split_request_authority(rest: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    if rest.first() == Some(&b'[') {
        let end = rest.iter().position(|&b| b == b']')?;
        let (host, after) = rest.split_at(end + 1);
        return match after {
            [] => Some((host, None)),
            [b':', port @ ..] => Some((host, Some(port))),
            _ => None,
        };
    }
    match rest.iter().position(|&b| b == b':') {
        Some(at) => Some((&rest[..at], Some(&rest[at + 1..]))),
        None => Some((rest, None)),
    }
}

/// Whether `host` is one or more valid labels, a dot, then `suffix`.
pub(crate) fn subdomain_of(host: &[u8], suffix: &[u8]) -> bool {
    if host.len() < suffix.len() + 2 || !host.ends_with(suffix) {
        return false;
    }
    let dot = host.len() - suffix.len() - 1;
    host[dot] == b'.' && host[..dot].split(|&b| b == b'.').all(valid_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(input: &str) -> Option<String> {
        Origin::parse(input)
            .unwrap_err()
            .suggestion()
            .map(str::to_owned)
    }

    #[test]
    fn valid_origins_round_trip() {
        for s in [
            "https://example.com",
            "http://localhost:3000",
            "https://a-b.c_d.example:8443",
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
            "https://xn--bcher-kva.example",
        ] {
            let o = Origin::parse(s).unwrap();
            assert_eq!(o.as_str(), s);
        }
        let o = Origin::parse("http://[::1]:8000").unwrap();
        assert_eq!(o.host(), "[::1]");
        assert!(o.is_loopback());
        assert!(o.is_secure());
        assert!(!Origin::parse("http://example.com").unwrap().is_secure());
    }

    #[test]
    fn mistakes_are_explained_with_a_fix() {
        let cases = [
            ("https://example.com/", "https://example.com"),
            ("https://example.com/app", "https://example.com"),
            ("https://example.com?x=1", "https://example.com"),
            ("https://example.com#top", "https://example.com"),
            ("https://user:pw@example.com", "https://example.com"),
            (" https://example.com", "https://example.com"),
            ("https://example.com\n", "https://example.com"),
            ("example.com", "https://example.com"),
            ("HTTPS://example.com", "https://example.com"),
            ("https://Example.COM", "https://example.com"),
            ("https://example.com:443", "https://example.com"),
            ("http://example.com:80", "http://example.com"),
            ("https://example.com.", "https://example.com"),
            ("http://[0:0:0:0:0:0:0:1]:80", "http://[::1]"),
            ("http://[0:0:0:0:0:0:0:1]:8000", "http://[::1]:8000"),
        ];
        for (input, fixed) in cases {
            assert_eq!(suggestion(input).as_deref(), Some(fixed), "{input}");
        }
    }

    #[test]
    fn refused_without_a_fix() {
        for s in [
            "",
            "null",
            "*",
            "file://",
            "ftp://example.com",
            "https://",
            "https://:443",
            "https://exa mple.com",
            "https://bücher.example",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com:08080",
            "https://example.com:",
            "https://example.com:+80",
            "https://-a.example.com",
            "https://a..example.com",
            "http://01.2.3.4",
            "http://1.2.3",
            "http://[::1",
            "http://[nope]",
            "https://exa*mple.com",
        ] {
            assert!(Origin::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn patterns() {
        let p = OriginPattern::parse("https://*.example.com").unwrap();
        assert_eq!(p.subdomains_of(), Some("example.com"));
        for ok in [
            "https://a.example.com",
            "https://a.b.example.com",
            "https://a-1.example.com",
        ] {
            assert!(p.matches(ok), "{ok}");
        }
        for no in [
            "https://example.com",
            "https://.example.com",
            "https://a..example.com",
            "https://eviltenantexample.com",
            "https://example.com.evil.io",
            "https://a.example.com.",
            "https://a.example.com:8443",
            "https://A.example.com",
            "http://a.example.com",
            "https://a.example.com/",
            "https://-.example.com",
        ] {
            assert!(!p.matches(no), "{no}");
        }
        let any_port = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(any_port.matches("http://localhost"));
        assert!(any_port.matches("http://localhost:5173"));
        assert!(!any_port.matches("http://localhost:80"));
        assert!(!any_port.matches("http://localhost:0"));
        assert!(!any_port.matches("http://localhost:"));
        assert!(!any_port.matches("http://localhostx:1"));
        assert!(any_port.is_secure());
        let both = OriginPattern::parse("https://*.example.com:*").unwrap();
        assert!(both.matches("https://a.example.com:8443"));
        let v6 = OriginPattern::parse("http://[::1]:*").unwrap();
        assert!(v6.matches("http://[::1]:3000"));
        for bad in [
            "*",
            "https://*",
            "https://*example.com",
            "https://a.*.example.com",
            "https://*.*.example.com",
            "*://example.com",
            "https://*.1.2.3.4",
            "https://example.com:8443:*",
            "https://*.example.com/",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        let err = OriginPattern::parse("https://*example.com").unwrap_err();
        assert_eq!(err.suggestion(), Some("https://*.example.com"));
    }

    /// Found by the `origin` fuzz target: the port and host were quoted raw in the reason,
    /// so a control character in a configured origin reached the terminal or log unescaped.
    #[test]
    fn errors_escape_control_characters() {
        for input in ["https://o:\u{1}", "http://[\u{1b}]", "http://a\u{7}.1"] {
            let text = Origin::parse(input).unwrap_err().to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    #[test]
    fn public_suffixes() {
        assert!(is_public_suffix("com"));
        assert!(is_public_suffix("co.uk"));
        assert!(is_public_suffix("github.io"));
        assert!(!is_public_suffix("example.com"));
        assert!(!is_public_suffix("localhost"));
        let excerpt = [
            "ac.uk",
            "co.uk",
            "com.au",
            "co.jp",
            "github.io",
            "herokuapp.com",
            "netlify.app",
            "vercel.app",
            "pages.dev",
            "workers.dev",
            "web.app",
            "firebaseapp.com",
            "appspot.com",
            "blogspot.com",
            "s3.amazonaws.com",
            "onrender.com",
            "fly.dev",
            "ngrok.io",
            "myshopify.com",
            "readthedocs.io",
            "cloudfront.net",
            "azurewebsites.net",
            "wixsite.com",
        ];
        let lacked = [
            "gv.at",
            "com.es",
            "gob.mx",
            "k12.ca.us",
            "azurestaticapps.net",
            "foo.ck",
            "foo.kawasaki.jp",
            "cloudflare.net",
        ];
        let missing: Vec<_> = excerpt
            .iter()
            .chain(&lacked)
            .filter(|s| !is_public_suffix(s))
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
        // Exceptions to wildcard rules, and names under a suffix, are not suffixes.
        for s in ["www.ck", "city.kawasaki.jp", "example.co.uk"] {
            assert!(!is_public_suffix(s), "{s}");
        }
    }
}
