//! Pure parsers for the two forwarding headers, `X-Forwarded-For` and RFC 7239 `Forwarded`,
//! on raw header bytes. No HTTP types here: the caller hands over header values, last
//! instance first, and walks the entries from the right.
//!
//! The parsers never look at more than they need: list elements are produced right to left
//! without collecting them, each element is parsed on its own (so an unclosed quote far to the
//! left cannot sabotage the entries a trusted proxy appended on the right), and at most
//! [`MAX_ELEMENTS`] elements are examined per request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most list elements (empty ones included) examined in one request's forwarding header.
/// A longer chain of trusted proxies is an error, not a reason to read on.
pub(crate) const MAX_ELEMENTS: usize = 32;

/// The longest node accepted: a bracketed IPv6 address with a zone and a port fits easily.
const MAX_NODE_LEN: usize = 96;

/// Why one entry did not yield an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryError {
    /// Not an IP address (with optional port) in the header's syntax.
    Malformed,
    /// `unknown` or an obfuscated identifier such as `_hidden`: a proxy hid the address.
    Obfuscated,
}

/// The syntax of the forwarding header being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `X-Forwarded-For: 203.0.113.7, 10.0.0.1`: comma-separated addresses.
    XForwardedFor,
    /// `Forwarded: for=203.0.113.7;proto=https, for="[2001:db8::1]:4711"` (RFC 7239).
    Forwarded,
}

impl Syntax {
    /// The client address one non-empty list element names.
    pub(crate) fn parse(self, element: &[u8]) -> Result<IpAddr, EntryError> {
        match self {
            Syntax::XForwardedFor => parse_node(element, false),
            Syntax::Forwarded => parse_forwarded_element(element),
        }
    }
}

/// More than [`MAX_ELEMENTS`] elements would have to be examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyElements;

fn is_comma(b: &u8) -> bool {
    *b == b','
}

type RSplitComma<'a> = std::slice::RSplit<'a, u8, fn(&u8) -> bool>;

/// The non-empty elements of a comma-separated list spread over several header instances,
/// right to left, each trimmed of optional whitespace and paired with its position counted
/// from the right (empty elements count, so the position matches a plain split on commas).
///
/// `values` must yield the header instances last one first. Yields one
/// `Err(TooManyElements)` and stops once more than [`MAX_ELEMENTS`] elements would be
/// examined. Allocates nothing.
pub(crate) struct RevElements<'a, I> {
    values: I,
    current: Option<RSplitComma<'a>>,
    index: usize,
    done: bool,
}

impl<'a, I: Iterator<Item = &'a [u8]>> RevElements<'a, I> {
    pub(crate) fn new(values: I) -> Self {
        RevElements {
            values,
            current: None,
            index: 0,
            done: false,
        }
    }
}

impl<'a, I: Iterator<Item = &'a [u8]>> Iterator for RevElements<'a, I> {
    type Item = Result<(usize, &'a [u8]), TooManyElements>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let Some(element) = self.current.as_mut().and_then(Iterator::next) else {
                let Some(value) = self.values.next() else {
                    self.done = true;
                    return None;
                };
                self.current = Some(value.rsplit(is_comma as fn(&u8) -> bool));
                continue;
            };
            if self.index >= MAX_ELEMENTS {
                self.done = true;
                return Some(Err(TooManyElements));
            }
            let index = self.index;
            self.index += 1;
            let element = trim_ows(element);
            if !element.is_empty() {
                return Some(Ok((index, element)));
            }
        }
    }
}

/// `bytes` without leading and trailing spaces and tabs (HTTP optional whitespace).
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// One RFC 7239 `forwarded-element` (`for=…;proto=…;by=…`): the address of its `for`
/// parameter, which must be there.
pub(crate) fn parse_forwarded_element(element: &[u8]) -> Result<IpAddr, EntryError> {
    let node = forwarded_parameter(element, b"for")?.ok_or(EntryError::Malformed)?;
    parse_node(node, true)
}

/// The value of the parameter `name` (unquoted) in one RFC 7239 `forwarded-element`, if it is
/// there. Every pair must be well formed and `name` may occur once at most.
///
/// Pairs are split on `;` without regard to quoting; a quoted value holding `;` or `,` is
/// therefore rejected rather than misread, which is the safe direction.
pub(crate) fn forwarded_parameter<'e>(
    element: &'e [u8],
    name: &[u8],
) -> Result<Option<&'e [u8]>, EntryError> {
    let mut found = None;
    for pair in element.split(|b| *b == b';') {
        let pair = trim_ows(pair);
        if pair.is_empty() {
            continue;
        }
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(EntryError::Malformed)?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().copied().all(is_tchar) {
            return Err(EntryError::Malformed);
        }
        let value = unquote(value)?;
        if key.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(EntryError::Malformed);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// Whether the scheme a proxy reports (`X-Forwarded-Proto`'s value, `Forwarded`'s `proto`)
/// is HTTPS. Anything else, `wss` included, is not: HSTS is about the page's own scheme.
pub(crate) fn is_https(proto: &[u8]) -> bool {
    proto.eq_ignore_ascii_case(b"https")
}

/// The content of a parameter value: a quoted string without its quotes, or a bare value
/// (visible ASCII without quotes or backslashes; a little more than an RFC token, because
/// some proxies write `for=1.2.3.4:80` without the quotes the RFC asks for).
fn unquote(value: &[u8]) -> Result<&[u8], EntryError> {
    match value {
        [b'"', inner @ .., b'"'] => {
            let mut escaped = false;
            for &b in inner {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => return Err(EntryError::Malformed),
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                    _ => return Err(EntryError::Malformed),
                }
            }
            if escaped {
                return Err(EntryError::Malformed);
            }
            Ok(inner)
        }
        _ if value
            .iter()
            .all(|&b| (b'!'..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
        {
            Ok(value)
        }
        _ => Err(EntryError::Malformed),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A node: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, `fe80::1%eth0`. The port is checked and dropped, a zone is dropped,
/// an IPv4-mapped IPv6 address becomes IPv4. `unknown` and `_obfuscated` names are
/// [`EntryError::Obfuscated`]; obfuscated ports (`:_p1`) are accepted only in `Forwarded`.
fn parse_node(node: &[u8], forwarded: bool) -> Result<IpAddr, EntryError> {
    if node.is_empty() || node.len() > MAX_NODE_LEN {
        return Err(EntryError::Malformed);
    }
    let ip = if let Some(rest) = node.strip_prefix(b"[") {
        let close = rest
            .iter()
            .position(|b| *b == b']')
            .ok_or(EntryError::Malformed)?;
        let (host, after) = (&rest[..close], &rest[close + 1..]);
        if !after.is_empty() {
            let port = after.strip_prefix(b":").ok_or(EntryError::Malformed)?;
            check_port(port, forwarded)?;
        }
        IpAddr::V6(parse_v6(host)?)
    } else {
        let colons = node.iter().filter(|b| **b == b':').count();
        match colons {
            0 | 1 => {
                let (host, port) = match node.iter().position(|b| *b == b':') {
                    Some(i) => (&node[..i], Some(&node[i + 1..])),
                    None => (node, None),
                };
                if is_obfuscated(host) {
                    return Err(EntryError::Obfuscated);
                }
                if let Some(port) = port {
                    check_port(port, forwarded)?;
                }
                IpAddr::V4(parse_v4(host)?)
            }
            _ => IpAddr::V6(parse_v6(node)?),
        }
    };
    let ip = ip.to_canonical();
    if ip.is_unspecified() {
        return Err(EntryError::Malformed);
    }
    Ok(ip)
}

/// `unknown` (any case) or an RFC 7239 obfuscated identifier (`_` then more).
fn is_obfuscated(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"unknown") || (name.len() > 1 && name[0] == b'_')
}

/// A decimal port 0–65535, or in `Forwarded` an obfuscated port such as `_p1`.
fn check_port(port: &[u8], forwarded: bool) -> Result<(), EntryError> {
    let decimal = !port.is_empty()
        && port.len() <= 5
        && port.iter().all(u8::is_ascii_digit)
        && port.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= u32::from(u16::MAX);
    let obfuscated = forwarded
        && port.len() > 1
        && port[0] == b'_'
        && port[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
    if decimal || obfuscated {
        Ok(())
    } else {
        Err(EntryError::Malformed)
    }
}

fn parse_v4(host: &[u8]) -> Result<Ipv4Addr, EntryError> {
    std::str::from_utf8(host)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(EntryError::Malformed)
}

/// An IPv6 address, optionally with a zone (`%eth0`), which is dropped.
fn parse_v6(host: &[u8]) -> Result<Ipv6Addr, EntryError> {
    let addr = match host.iter().position(|b| *b == b'%') {
        Some(i) => {
            let zone = &host[i + 1..];
            let zone_ok = !zone.is_empty()
                && zone
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-%".contains(b));
            if !zone_ok {
                return Err(EntryError::Malformed);
            }
            &host[..i]
        }
        None => host,
    };
    if is_obfuscated(addr) {
        return Err(EntryError::Obfuscated);
    }
    std::str::from_utf8(addr)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(EntryError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn xff(s: &str) -> Result<IpAddr, EntryError> {
        Syntax::XForwardedFor.parse(s.as_bytes())
    }

    fn fwd(s: &str) -> Result<IpAddr, EntryError> {
        Syntax::Forwarded.parse(s.as_bytes())
    }

    fn ip(s: &str) -> Result<IpAddr, EntryError> {
        Ok(s.parse().unwrap())
    }

    fn elements<'a>(values: &[&'a str]) -> Vec<Result<(usize, &'a [u8]), TooManyElements>> {
        RevElements::new(values.iter().rev().map(|v| v.as_bytes())).collect()
    }

    #[test]
    fn xff_entries_with_ports_zones_and_mapped_addresses() {
        assert_eq!(xff("203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(xff("203.0.113.7:4711"), ip("203.0.113.7"));
        assert_eq!(xff("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(xff("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(xff("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(xff("2001:db8::1%eth0"), ip("2001:db8::1"));
        assert_eq!(xff("[fe80::1%25eth0]:80"), ip("fe80::1"));
        assert_eq!(xff("::ffff:203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(xff("[::ffff:203.0.113.7]:1"), ip("203.0.113.7"));
    }

    #[test]
    fn xff_garbage_is_malformed() {
        for bad in [
            "garbage",
            "1.2.3",
            "01.2.3.4",
            "1.2.3.4:",
            "1.2.3.4:65536",
            "1.2.3.4:123456",
            "1.2.3.4:_p",
            "1.2.3.4 5.6.7.8",
            "[2001:db8::1",
            "[2001:db8::1]443",
            "[1.2.3.4]",
            "2001:db8::1%",
            "0.0.0.0",
            "::",
            "\"1.2.3.4\"",
            "1.2.3.4\u{0}",
        ] {
            assert_eq!(xff(bad), Err(EntryError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Syntax::XForwardedFor.parse(b"1.2.3.\xff"),
            Err(EntryError::Malformed)
        );
        let long = "1".repeat(10_000);
        assert_eq!(xff(&long), Err(EntryError::Malformed));
    }

    #[test]
    fn unknown_and_obfuscated_names() {
        assert_eq!(xff("unknown"), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=unknown"), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=UNKNOWN"), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=_hidden"), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=\"_hidden:_port\""), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=\"[_x]\""), Err(EntryError::Obfuscated));
        assert_eq!(fwd("for=\"unknown:80\""), Err(EntryError::Obfuscated));
        // A lone underscore is neither an address nor an obfuscated identifier.
        assert_eq!(fwd("for=_"), Err(EntryError::Malformed));
    }

    #[test]
    fn forwarded_elements() {
        assert_eq!(fwd("for=192.0.2.60"), ip("192.0.2.60"));
        assert_eq!(
            fwd("for=192.0.2.60;proto=http;by=203.0.113.43"),
            ip("192.0.2.60")
        );
        assert_eq!(fwd("proto=https; For=\"192.0.2.60:80\""), ip("192.0.2.60"));
        assert_eq!(
            fwd("for=\"[2001:db8:cafe::17]:4711\""),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(fwd("for=\"[2001:db8::1]:_p1\""), ip("2001:db8::1"));
        assert_eq!(fwd("for=\"2001:db8::1\""), ip("2001:db8::1"));
        assert_eq!(fwd("for=192.0.2.60:80"), ip("192.0.2.60"));
        assert_eq!(fwd(";for=192.0.2.60;"), ip("192.0.2.60"));
        assert_eq!(fwd("host=\"a b\";for=192.0.2.60"), ip("192.0.2.60"));
    }

    #[test]
    fn forwarded_element_errors() {
        for bad in [
            "by=10.0.0.1",
            "for=",
            "for=\"\"",
            "for",
            "=1.2.3.4",
            "f*r=1.2.3.4",
            "for=1.2.3.4;for=1.2.3.4",
            "for=\"1.2.3.4",
            "for=1.2.3.4\"",
            "for=\"1.2\"3.4\"",
            "for=\"1.2.3.4\\\"",
            "for=\"1.2.3.\\4\"",
            "for=1.2.3.4;host=\"x",
            "for=1.2.3.4;host=a\\b",
            "for = 1.2.3.4",
        ] {
            assert_eq!(fwd(bad), Err(EntryError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn elements_come_right_to_left_across_instances() {
        let got = elements(&["a, b", " ,c,", "d"]);
        let want: Vec<Result<(usize, &[u8]), TooManyElements>> =
            vec![Ok((0, b"d")), Ok((2, b"c")), Ok((4, b"b")), Ok((5, b"a"))];
        assert_eq!(got, want);
        assert!(elements(&[]).is_empty());
        assert!(elements(&["", " \t ", ",,"]).is_empty());
    }

    #[test]
    fn at_most_max_elements_are_examined() {
        let exactly = vec!["1.2.3.4"; MAX_ELEMENTS].join(",");
        let got = elements(&[&exactly]);
        assert_eq!(got.len(), MAX_ELEMENTS);
        assert!(got.iter().all(Result::is_ok));

        let one_more = vec!["1.2.3.4"; MAX_ELEMENTS + 1].join(",");
        let got = elements(&[&one_more]);
        assert_eq!(got.len(), MAX_ELEMENTS + 1);
        assert_eq!(got.last(), Some(&Err(TooManyElements)));

        // Empty elements count too, so a megabyte of commas is not walked.
        let commas = ",".repeat(1 << 20);
        assert_eq!(elements(&[&commas]), vec![Err(TooManyElements)]);
    }

    #[test]
    fn trimming() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Syntax::XForwardedFor.parse(&bytes);
            let _ = Syntax::Forwarded.parse(&bytes);
            let values = [bytes.as_slice(), bytes.as_slice()];
            for (_, element) in RevElements::new(values.into_iter()).flatten() {
                let _ = Syntax::Forwarded.parse(element);
            }
        }

        #[test]
        fn parsers_never_panic_on_near_misses(s in "[\\[\\]:._%0-9a-fA-F;=,\" \t\\\\forunkw]{0,60}") {
            let _ = Syntax::XForwardedFor.parse(s.as_bytes());
            let _ = Syntax::Forwarded.parse(s.as_bytes());
        }

        #[test]
        fn printed_addresses_parse_back(ip in any::<IpAddr>(), port in any::<u16>()) {
            let ip = ip.to_canonical();
            prop_assume!(!ip.is_unspecified());
            let (bare, with_port, quoted) = match ip {
                IpAddr::V4(v4) => (v4.to_string(), format!("{v4}:{port}"), format!("for=\"{v4}:{port}\"")),
                IpAddr::V6(v6) => (v6.to_string(), format!("[{v6}]:{port}"), format!("for=\"[{v6}]:{port}\"")),
            };
            prop_assert_eq!(xff(&bare), Ok(ip));
            prop_assert_eq!(xff(&with_port), Ok(ip));
            prop_assert_eq!(fwd(&quoted), Ok(ip));
        }
    }
}
