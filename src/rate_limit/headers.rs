//! The rate-limit response header fields, rendered with as little allocation as `http` allows.
//!
//! - `RateLimit-Policy: "name";q=LIMIT;w=WINDOW` and `RateLimit: "name";r=REMAINING;t=SECS`
//!   of [draft-ietf-httpapi-ratelimit-headers-10]. Both are Structured Field *Lists*
//!   ([RFC 9651]) of sf-strings (the policy name) with integer parameters, so several
//!   policies go in one value: `"ip";r=1;t=2, "device";r=0;t=5`.
//! - `Retry-After` in whole seconds.
//! - The legacy `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//!   (delta seconds), for clients that still read them.
//!
//! A policy's `RateLimit-Policy` value never changes, so it is rendered once when the layer
//! is built ([`policy_header`]), and only cloned per response. The per-request `RateLimit`
//! value is written into a buffer on the stack; turning it into a [`HeaderValue`] then
//! copies it once into a `Bytes`, the one allocation `http` makes unavoidable.
//!
//! # Rounding, and `Retry-After` never before `t`
//!
//! Both `t` and `Retry-After` are whole seconds rounded **up**, so a client that waits what
//! it was told is never early: 200 ms is sent as `1`, exactly 2 s as `2`, 2.000000001 s as
//! `3`. `t` ([`remaining_and_t`]) may be 0 (the bucket is full: no additional quota is coming);
//! `Retry-After` ([`retry_after_secs`]) is at least 1. Computed from the same decision,
//! `Retry-After ≥ t` always holds, as draft-10 requires ("SHOULD NOT reference a point in
//! time earlier than" `t`).
//!
//! [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/
//! [RFC 9651]: https://www.rfc-editor.org/rfc/rfc9651

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::ConfigError;
use crate::error::ConfigErrors;
use crate::limiter::Decision;

/// The largest integer a Structured Field may carry (15 digits, RFC 9651 §3.3.1). Larger
/// values are sent as this one.
pub const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// The longest policy name accepted, in bytes. Names are short identifiers (`ip`,
/// `playlist-generate`); the bound keeps every single-policy `RateLimit` value on the stack.
pub const POLICY_NAME_MAX_LEN: usize = 64;

/// The legacy `X-RateLimit-Limit` header name.
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// The legacy `X-RateLimit-Remaining` header name.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// The legacy `X-RateLimit-Reset` header name (delta seconds, not a timestamp).
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A policy name that can be sent as a Structured Field String.
///
/// Valid names are 1 to [`POLICY_NAME_MAX_LEN`] bytes of printable ASCII (0x20 to 0x7E);
/// `"` and `\` are allowed and escaped when sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PolicyName(Box<str>);

impl PolicyName {
    /// Checks that `name` can be sent as an sf-string; the error names setting `policy.name`.
    pub fn new(name: &str) -> Result<PolicyName, ConfigError> {
        const SETTING: &str = "policy.name";
        if name.is_empty() {
            return Err(ConfigError::new(SETTING, "a policy name cannot be empty"));
        }
        if name.len() > POLICY_NAME_MAX_LEN {
            return Err(ConfigError::new(
                SETTING,
                format!(
                    "policy name {:?} is {} bytes long; at most {POLICY_NAME_MAX_LEN} are allowed",
                    name,
                    name.len()
                ),
            ));
        }
        if let Some(c) = name.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(ConfigError::new(
                SETTING,
                format!(
                    "policy name {name:?} contains {c:?}; only printable ASCII (space to '~') \
                     can be sent in a RateLimit header"
                ),
            ));
        }
        Ok(PolicyName(name.into()))
    }
}

impl Deref for PolicyName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PolicyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `RateLimit-Policy` value of one policy: `"name";q=QUOTA;w=WINDOW`.
///
/// Rendered once when the layer is built. `window` is sent in whole seconds rounded up (the
/// draft has no sub-second windows; rounding up never overstates the rate). Fails when the
/// name is not a valid [`PolicyName`].
pub fn policy_header(name: &str, quota: u32, window: Duration) -> Result<HeaderValue, ConfigError> {
    policy_list_header(&[(name, quota, window)])
}

/// The `RateLimit-Policy` value of several policies, one list member each:
/// `"ip";q=60;w=60, "device";q=10;w=300`.
///
/// Fails when any name is not a valid [`PolicyName`] (every bad name is reported), or when
/// the list is empty (an empty field must not be sent).
pub fn policy_list_header(policies: &[(&str, u32, Duration)]) -> Result<HeaderValue, ConfigError> {
    let mut errors = ConfigErrors::default();
    if policies.is_empty() {
        errors.push(
            "policy",
            "a RateLimit-Policy field needs at least one policy",
        );
    }
    // Rendered once, at build time: the maintained serializer (sfv) writes it.
    let mut list = sfv::ListSerializer::new();
    for &(name, quota, window) in policies {
        let Some(name) = errors.take(PolicyName::new(name)) else {
            continue;
        };
        // A valid policy name is printable ASCII, hence a valid sf-string.
        if let Ok(name) = sfv::StringRef::from_str(&name) {
            let window = sfv::Integer::try_from(ceil_secs(window)).unwrap_or(sfv::Integer::MAX);
            let _ = list
                .bare_item(name)
                .parameter(sfv::KeyRef::constant("q"), sfv::Integer::from(quota))
                .parameter(sfv::KeyRef::constant("w"), window);
        }
    }
    errors.finish(|| ())?;
    let rendered = list.finish().and_then(|s| HeaderValue::try_from(s).ok());
    rendered.ok_or_else(|| {
        // Unreachable: the list is not empty and every byte written is printable ASCII.
        ConfigError::new("policy", "the RateLimit-Policy value could not be rendered")
    })
}

/// The `RateLimit` value of one policy: `"name";r=REMAINING;t=SECS`, rendered on the stack.
///
/// `t` is [`remaining_and_t`] of the same decision. `name` should be a valid [`PolicyName`] (the
/// layer checks every name at build time); should it not be, bytes outside printable ASCII
/// are sent as `?`, so the value is always well formed. The layer renders the same value
/// from a prefix made once ([`rate_limit_after`]); this is the reference it is tested against.
#[cfg(test)]
pub fn rate_limit(name: &str, remaining: u32, t: u64) -> HeaderValue {
    rate_limit_list(&[(name, remaining, t)]).unwrap_or_else(|| {
        // Unreachable: one member always renders to a non-empty, valid value.
        HeaderValue::from_static("")
    })
}

/// The start of a policy's `RateLimit` value, `"name";r=`, rendered once when the layer is
/// built so that each request only appends two numbers ([`rate_limit_after`]).
pub fn rate_limit_prefix(name: &str) -> Box<[u8]> {
    let mut prefix = sf_string(name);
    prefix.push_str(";r=");
    prefix.into_bytes().into_boxed_slice()
}

/// `s` as an RFC 9651 sf-string (quoted, `"` and `\` escaped), by sfv. Bytes no
/// sf-string can hold (never in a [`PolicyName`]) are written as `?`.
fn sf_string(s: &str) -> String {
    let printable: String = s
        .bytes()
        .map(|b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    match sfv::StringRef::from_str(&printable) {
        Ok(text) => sfv::ItemSerializer::new().bare_item(text).finish(),
        // Unreachable: only printable ASCII is left.
        Err(_) => "\"?\"".to_owned(),
    }
}

/// `prefix` (from [`rate_limit_prefix`]) followed by `REMAINING;t=SECS`: the same value as
/// [`rate_limit`], with only the numbers rendered per request.
pub fn rate_limit_after(prefix: &[u8], remaining: u32, t: u64) -> HeaderValue {
    let (mut r, mut t_digits) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (r, t) = (
        r.format(remaining).as_bytes(),
        t_digits.format(t.min(SF_INTEGER_MAX)).as_bytes(),
    );
    let len = prefix.len() + r.len() + 3 + t.len();
    // Every byte is printable ASCII (the prefix came from `rate_limit_prefix`).
    let value = if len <= Inline::CAPACITY {
        // The value's one allocation, holding the bytes themselves, so that the clones a
        // `Recent` cache hands out share it without allocating.
        let mut inline = Inline {
            bytes: [0; Inline::CAPACITY],
            len,
        };
        for (at, part) in [(0, prefix), (prefix.len(), r)] {
            inline.bytes[at..at + part.len()].copy_from_slice(part);
        }
        let at = prefix.len() + r.len();
        inline.bytes[at..at + 3].copy_from_slice(b";t=");
        inline.bytes[at + 3..len].copy_from_slice(t);
        HeaderValue::from_maybe_shared(Bytes::from_owner(inline))
    } else {
        let mut value = Vec::with_capacity(len);
        for part in [prefix, r, b";t=", t] {
            value.extend_from_slice(part);
        }
        HeaderValue::from_maybe_shared(Bytes::from(value))
    };
    value.unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A short value's bytes, owned by the `Bytes` made from them.
struct Inline {
    bytes: [u8; Inline::CAPACITY],
    len: usize,
}

impl Inline {
    /// Enough for a policy name of up to 60-odd plain characters and both numbers.
    const CAPACITY: usize = 96;
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What was recently made from a few numbers, so that what many responses share is made and
/// allocated once: a refused client's 429 headers (the same until the next second) and the
/// `RateLimit` value of every client well below its quota, whose bucket has refilled between
/// requests (`r=` the burst less one, `t=` one emission interval).
///
/// A small direct-mapped table of slots behind spin locks taken with `try_lock`: a thread that
/// finds its slot busy makes the value itself rather than wait, so the cache never blocks.
pub(crate) struct Recent<K, V> {
    slots: Box<[Slot<K, V>]>,
}

/// One slot of a [`Recent`] cache: the key and what was made from it, once something was.
type Slot<K, V> = spin::Mutex<Option<(K, V)>>;

/// A key of a [`Recent`] cache: the numbers a value is made from.
pub(crate) trait Numbers: Copy + Eq {
    /// Mixes the numbers into a slot index (any spread will do: a collision costs one remake).
    fn mix(self) -> usize;
}

impl Numbers for (u32, u64) {
    fn mix(self) -> usize {
        self.0 as usize ^ (self.1 as usize).wrapping_mul(31)
    }
}

impl Numbers for (u32, u64, Option<u64>) {
    fn mix(self) -> usize {
        (self.0, self.1).mix() ^ (self.2.unwrap_or(u64::MAX) as usize).wrapping_mul(61)
    }
}

impl<K: Numbers, V: Clone> Recent<K, V> {
    const SLOTS: usize = 32;

    pub(crate) fn new() -> Self {
        Recent {
            slots: (0..Self::SLOTS).map(|_| spin::Mutex::new(None)).collect(),
        }
    }

    /// The value for `key`, from the cache or from `make`.
    #[inline]
    pub(crate) fn get(&self, key: K, make: impl FnOnce() -> V) -> V {
        let slot = &self.slots[key.mix() % Self::SLOTS];
        if let Some(mut entry) = slot.try_lock() {
            match &*entry {
                Some((k, value)) if *k == key => value.clone(),
                _ => {
                    let value = make();
                    *entry = Some((key, value.clone()));
                    value
                }
            }
        } else {
            make()
        }
    }
}

impl<K, V> std::fmt::Debug for Recent<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recent").finish_non_exhaustive()
    }
}

/// The `RateLimit` value of several policies in one list: `"ip";r=1;t=2, "device";r=0;t=5`.
///
/// Rendered by sfv: the reference the per-request rendering ([`rate_limit_after`]) is tested
/// against. `None` when `entries` is empty: an empty field must not be sent.
#[cfg(test)]
pub fn rate_limit_list(entries: &[(&str, u32, u64)]) -> Option<HeaderValue> {
    let members: Vec<String> = entries
        .iter()
        .map(|&(name, remaining, t)| {
            let t = sfv::Integer::try_from(t).unwrap_or(sfv::Integer::MAX);
            format!("{};r={remaining};t={t}", sf_string(name))
        })
        .collect();
    (!members.is_empty())
        .then(|| HeaderValue::try_from(members.join(", ")).ok())
        .flatten()
}

/// `Retry-After` for a refused request that can be admitted after `wait`: whole seconds,
/// rounded up, at least 1.
///
/// 200 ms → 1, exactly 2 s → 2, 2.000000001 s → 3. A client that sleeps this long is never
/// early, and `Retry-After` is never less than the `t` ([`remaining_and_t`]) of the same decision.
pub fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

/// Draft-10's `r` and `t` for a decision: the remaining quota, and whole seconds, rounded up,
/// until additional quota is made available ([`Decision::replenish_after`]; 0 when the bucket
/// is full).
pub fn remaining_and_t(decision: &Decision) -> (u32, u64) {
    let (remaining, replenish) = decision.remaining_and_replenish();
    (remaining, ceil_secs(replenish))
}

/// `duration` in whole seconds, rounded up: 0 → 0, 1 ns → 1, 2 s → 2.
pub fn ceil_secs(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

/// A header value of decimal digits (`Retry-After`, `X-RateLimit-*`).
pub fn seconds(value: u64) -> HeaderValue {
    // `http` formats integers itself (with itoa) into a right-sized buffer.
    HeaderValue::from(value)
}

/// The legacy `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers,
/// for clients that predate the draft. `reset` is delta seconds (as [`remaining_and_t`]), never an
/// epoch timestamp, so a client's clock skew cannot matter.
pub fn legacy(limit: u32, remaining: u32, reset: u64) -> [(HeaderName, HeaderValue); 3] {
    [
        (X_RATELIMIT_LIMIT, seconds(u64::from(limit))),
        (X_RATELIMIT_REMAINING, seconds(u64::from(remaining))),
        (X_RATELIMIT_RESET, seconds(reset)),
    ]
}

#[cfg(test)]
pub(crate) mod parse {
    //! A parser for what this module emits: RFC 9651 lists of sf-strings with parameters.

    /// A parameter value.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Param {
        Integer(i64),
        String(String),
        Boolean(bool),
    }

    /// One list member: the policy name and its parameters in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Member {
        pub(crate) name: String,
        pub(crate) params: Vec<(String, Param)>,
    }

    impl Member {
        /// The integer parameter `key`, if present.
        pub(crate) fn int(&self, key: &str) -> Option<i64> {
            self.params.iter().find_map(|(k, v)| match v {
                Param::Integer(i) if k == key => Some(*i),
                _ => None,
            })
        }
    }

    /// Parses an sf-list whose members are sf-strings with parameters; `None` when the value
    /// is not such a list (RFC 9651 §4.2.1, restricted to these item types).
    pub(crate) fn list(value: &[u8]) -> Option<Vec<Member>> {
        let mut p = Parser { s: value, i: 0 };
        p.skip(b" ");
        let mut members = Vec::new();
        if p.at_end() {
            return Some(members);
        }
        loop {
            let name = p.string()?;
            let params = p.params()?;
            members.push(Member { name, params });
            p.skip(b" \t");
            if p.at_end() {
                return Some(members);
            }
            p.expect(b',')?;
            p.skip(b" \t");
            if p.at_end() {
                return None;
            }
        }
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn at_end(&self) -> bool {
            self.i >= self.s.len()
        }

        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }

        fn skip(&mut self, set: &[u8]) {
            while self.peek().is_some_and(|b| set.contains(&b)) {
                self.i += 1;
            }
        }

        fn expect(&mut self, b: u8) -> Option<()> {
            (self.peek() == Some(b)).then(|| self.i += 1)
        }

        fn string(&mut self) -> Option<String> {
            self.expect(b'"')?;
            let mut out = String::new();
            loop {
                let b = self.peek()?;
                self.i += 1;
                match b {
                    b'"' => return Some(out),
                    b'\\' => {
                        let escaped = self.peek().filter(|c| *c == b'"' || *c == b'\\')?;
                        self.i += 1;
                        out.push(char::from(escaped));
                    }
                    0x20..=0x7e => out.push(char::from(b)),
                    _ => return None,
                }
            }
        }

        fn params(&mut self) -> Option<Vec<(String, Param)>> {
            let mut params = Vec::new();
            while self.peek() == Some(b';') {
                self.i += 1;
                self.skip(b" ");
                let key = self.key()?;
                let value = if self.peek() == Some(b'=') {
                    self.i += 1;
                    self.bare_item()?
                } else {
                    Param::Boolean(true)
                };
                // A repeated key keeps its first position and takes the last value.
                match params.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => params.push((key, value)),
                }
            }
            Some(params)
        }

        fn key(&mut self) -> Option<String> {
            let start = self.i;
            match self.peek()? {
                b'a'..=b'z' | b'*' => self.i += 1,
                _ => return None,
            }
            while self
                .peek()
                .is_some_and(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
            {
                self.i += 1;
            }
            String::from_utf8(self.s[start..self.i].to_vec()).ok()
        }

        fn bare_item(&mut self) -> Option<Param> {
            match self.peek()? {
                b'"' => self.string().map(Param::String),
                b'?' => {
                    self.i += 1;
                    let b = self.peek()?;
                    self.i += 1;
                    match b {
                        b'0' => Some(Param::Boolean(false)),
                        b'1' => Some(Param::Boolean(true)),
                        _ => None,
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let negative = self.peek() == Some(b'-');
                    if negative {
                        self.i += 1;
                    }
                    let start = self.i;
                    while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                        self.i += 1;
                    }
                    let digits = &self.s[start..self.i];
                    if digits.is_empty() || digits.len() > 15 || self.peek() == Some(b'.') {
                        return None;
                    }
                    let magnitude: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                    Some(Param::Integer(if negative {
                        -magnitude
                    } else {
                        magnitude
                    }))
                }
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::{Member, Param, list};
    use super::*;
    use proptest::prelude::*;

    fn text(value: &HeaderValue) -> &str {
        value.to_str().expect("ASCII")
    }

    fn member(name: &str, params: &[(&str, i64)]) -> Member {
        Member {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|&(k, v)| (k.to_owned(), Param::Integer(v)))
                .collect(),
        }
    }

    #[test]
    fn cached_values_equal_fresh_ones() {
        let cache = Recent::new();
        let prefix = rate_limit_prefix("ip");
        for (r, t) in [(5, 1), (5, 1), (0, 60), (5, 1), (4, 1), (0, 60), (5, 2)] {
            let value = cache.get((r, t), || rate_limit_after(&prefix, r, t));
            assert_eq!(value, rate_limit_after(&prefix, r, t));
        }
    }

    #[test]
    fn prefixed_rendering_equals_the_plain_one() {
        for name in ["ip", "a \\ \"quoted\" name", &"x".repeat(64)] {
            let prefix = rate_limit_prefix(name);
            assert_eq!(rate_limit_after(&prefix, 7, 12), rate_limit(name, 7, 12));
            assert_eq!(
                rate_limit_after(&prefix, u32::MAX, u64::MAX),
                rate_limit(name, u32::MAX, u64::MAX)
            );
        }
    }

    #[test]
    fn policy_names_are_checked() {
        for good in [
            "ip",
            "playlist-generate",
            "a b",
            "quote\"back\\slash",
            "~!#$%&'()*+",
        ] {
            assert_eq!(&*PolicyName::new(good).expect(good), good);
        }
        let longest = "x".repeat(POLICY_NAME_MAX_LEN);
        assert!(PolicyName::new(&longest).is_ok());
        for bad in [
            String::new(),
            "x".repeat(POLICY_NAME_MAX_LEN + 1),
            "café".to_owned(),
            "tab\there".to_owned(),
            "new\nline".to_owned(),
            "del\x7f".to_owned(),
            "nul\0".to_owned(),
        ] {
            let err = PolicyName::new(&bad).expect_err(&bad);
            assert_eq!(err.problems()[0].setting(), "policy.name", "{bad:?}");
        }
    }

    #[test]
    fn policy_header_is_rendered_as_the_draft_shows() {
        let v = policy_header("burst", 100, Duration::from_secs(60)).expect("valid");
        assert_eq!(text(&v), r#""burst";q=100;w=60"#);
        let v = policy_header("odd", 1, Duration::from_millis(1500)).expect("valid");
        assert_eq!(text(&v), r#""odd";q=1;w=2"#);
    }

    #[test]
    fn policy_list_joins_members_and_reports_every_bad_name() {
        let v = policy_list_header(&[
            ("burst", 100, Duration::from_secs(60)),
            ("daily", 1000, Duration::from_secs(86400)),
        ])
        .expect("valid");
        assert_eq!(text(&v), r#""burst";q=100;w=60, "daily";q=1000;w=86400"#);

        let err = policy_list_header(&[
            ("", 1, Duration::from_secs(1)),
            ("ok", 1, Duration::from_secs(1)),
            ("é", 1, Duration::from_secs(1)),
        ])
        .expect_err("two bad names");
        assert_eq!(err.problems().len(), 2);
        assert!(policy_list_header(&[]).is_err());
        assert!(policy_header("bad\r\nname", 1, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn rate_limit_is_rendered_as_the_draft_shows() {
        assert_eq!(
            text(&rate_limit("default", 50, 30)),
            r#""default";r=50;t=30"#
        );
        assert_eq!(text(&rate_limit(r#"a"b\c"#, 0, 1)), r#""a\"b\\c";r=0;t=1"#);
        assert_eq!(
            text(&rate_limit_list(&[("a", 1, 2), ("b", 0, 5)]).expect("two members")),
            r#""a";r=1;t=2, "b";r=0;t=5"#
        );
        assert!(rate_limit_list(&[]).is_none());
    }

    #[test]
    fn integers_above_the_structured_field_range_are_clamped() {
        let v = rate_limit("p", u32::MAX, u64::MAX);
        assert_eq!(text(&v), format!("\"p\";r={};t={SF_INTEGER_MAX}", u32::MAX));
        let parsed = list(v.as_bytes()).expect("parses");
        assert_eq!(parsed[0].int("t"), Some(SF_INTEGER_MAX as i64));
    }

    #[test]
    fn names_that_were_never_checked_still_render_a_valid_value() {
        let v = rate_limit("é\n", 1, 1);
        assert_eq!(text(&v), r#""???";r=1;t=1"#);
    }

    #[test]
    fn a_long_value_renders_intact() {
        let names: Vec<String> = (0..40).map(|i| format!("policy-{i:02}-\"x\"")).collect();
        let entries: Vec<(&str, u32, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32, 1000 + i as u64))
            .collect();
        let v = rate_limit_list(&entries).expect("members");
        assert!(v.len() > 256);
        let parsed = list(v.as_bytes()).expect("parses");
        let expected: Vec<Member> = entries
            .iter()
            .map(|&(n, r, t)| member(n, &[("r", i64::from(r)), ("t", t as i64)]))
            .collect();
        assert_eq!(parsed, expected);

        // The longest valid name, all escapes, with the largest numbers.
        let worst = "\"".repeat(POLICY_NAME_MAX_LEN);
        let v = rate_limit(&worst, u32::MAX, u64::MAX);
        let parsed = list(v.as_bytes()).expect("parses");
        let max = i64::try_from(SF_INTEGER_MAX).unwrap();
        assert_eq!(
            parsed,
            [member(&worst, &[("r", i64::from(u32::MAX)), ("t", max)])]
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::new(2, 1)), 3);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::new(2, 1)), 3);
    }

    #[test]
    fn a_refusal_after_200_ms_says_retry_in_1_and_t_1() {
        use crate::limiter::{ManualClock, MemoryStore, Quota};

        // 5 per second: one request every 200 ms.
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .build()
            .expect("store");
        let quota = Quota::per_second(5).expect("quota");
        let key = store.key_hasher().hash(b"client");
        let full = store.check(key, &quota);
        assert!(full.is_allowed());
        for _ in 0..4 {
            assert!(store.check(key, &quota).is_allowed());
        }
        let refused = store.check(key, &quota);
        let wait = refused.retry_after().expect("can wait");
        assert_eq!(wait, Duration::from_millis(200));
        assert_eq!(seconds(retry_after_secs(wait)), "1");
        assert_eq!(
            text(&rate_limit(
                "p",
                refused.remaining(),
                remaining_and_t(&refused).1
            )),
            r#""p";r=0;t=1"#
        );
        assert!(retry_after_secs(wait) >= remaining_and_t(&refused).1);
        assert_eq!(remaining_and_t(&Decision::unlimited(&quota)).1, 0);
    }

    #[test]
    fn legacy_headers_are_plain_integers() {
        let [limit, remaining, reset] = legacy(60, 59, 1);
        assert_eq!(limit, (X_RATELIMIT_LIMIT, HeaderValue::from_static("60")));
        assert_eq!(
            remaining,
            (X_RATELIMIT_REMAINING, HeaderValue::from_static("59"))
        );
        assert_eq!(reset, (X_RATELIMIT_RESET, HeaderValue::from_static("1")));
        assert_eq!(seconds(u64::MAX), u64::MAX.to_string().as_str());
    }

    #[test]
    fn the_parser_rejects_what_is_not_an_sf_list_of_strings() {
        for bad in [
            &b"token;r=1"[..],
            b"\"unterminated",
            b"\"a\";r=1,",
            b"\"a\" \"b\"",
            b"\"bad\\escape\"",
            b"\"a\";R=1",
            b"\"a\";r=1234567890123456",
            b"\"a\";r=1.5",
        ] {
            assert_eq!(list(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            list(b"\"a\";flag;qu=\"requests\";r=?0").expect("valid"),
            vec![Member {
                name: "a".into(),
                params: vec![
                    ("flag".into(), Param::Boolean(true)),
                    ("qu".into(), Param::String("requests".into())),
                    ("r".into(), Param::Boolean(false)),
                ],
            }]
        );
    }

    fn policy_name() -> impl Strategy<Value = String> {
        // Printable ASCII, quotes and backslashes included and made likely.
        proptest::string::string_regex(r#"([ -~]|"|\\){1,64}"#).expect("regex")
    }

    proptest! {
        #[test]
        fn rate_limit_parses_back(name in policy_name(), r in any::<u32>(), t in 0..=SF_INTEGER_MAX) {
            let v = rate_limit(&name, r, t);
            let parsed = list(v.as_bytes()).expect("what we emit parses");
            prop_assert_eq!(parsed, vec![member(&name, &[("r", i64::from(r)), ("t", t as i64)])]);
        }

        #[test]
        fn rate_limit_lists_parse_back(
            entries in proptest::collection::vec((policy_name(), any::<u32>(), any::<u64>()), 1..12)
        ) {
            let borrowed: Vec<(&str, u32, u64)> =
                entries.iter().map(|(n, r, t)| (n.as_str(), *r, *t)).collect();
            let v = rate_limit_list(&borrowed).expect("not empty");
            let parsed = list(v.as_bytes()).expect("what we emit parses");
            let expected: Vec<Member> = entries
                .iter()
                .map(|(n, r, t)| member(n, &[("r", i64::from(*r)), ("t", (*t).min(SF_INTEGER_MAX) as i64)]))
                .collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn policy_headers_parse_back(
            entries in proptest::collection::vec((policy_name(), any::<u32>(), 0..SF_INTEGER_MAX), 1..6)
        ) {
            let borrowed: Vec<(&str, u32, Duration)> =
                entries.iter().map(|(n, q, w)| (n.as_str(), *q, Duration::from_secs(*w))).collect();
            let v = policy_list_header(&borrowed).expect("valid names");
            let parsed = list(v.as_bytes()).expect("what we emit parses");
            let expected: Vec<Member> = entries
                .iter()
                .map(|(n, q, w)| member(n, &[("q", i64::from(*q)), ("w", *w as i64)]))
                .collect();
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn retry_after_is_never_before_t_nor_early(nanos in any::<u64>()) {
            let wait = Duration::from_nanos(nanos);
            let retry = retry_after_secs(wait);
            prop_assert!(retry >= ceil_secs(wait));
            prop_assert!(retry >= 1);
            prop_assert!(Duration::from_secs(retry) >= wait);
            prop_assert!(Duration::from_secs(ceil_secs(wait)) >= wait);
            prop_assert!(Duration::from_secs(ceil_secs(wait)) < wait + Duration::from_secs(1));
        }
    }
}
