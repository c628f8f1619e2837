//! The rules of the layer: explicit ASCII patterns, fields (of a JSON body or a query
//! string), header rules, and the checks that apply them. No tower types here.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde_json::Value;

use super::text::{PlainTextError, sanitize_text, validate_plain_text};
use super::url::UrlRule;
use crate::route::Route;

/// An explicit allow-list of ASCII bytes with length bounds: what the regular expression
/// `^[…]{min,max}$` says, with no way to write an "any character" or an unbounded length.
///
/// A value matches when it is between `min` and `max` bytes long and every byte is in the
/// allowed set. Since only ASCII can be allowed, a value with any other byte (`é`,
/// fullwidth `ａ`, a zero-width space, a TAB that `HeaderValue` lets through) never matches.
/// Matching is one pass over the bytes, with no backtracking.
///
/// ```
/// use tower_shield::sanitize::Pattern;
///
/// // ^[A-Za-z0-9_-]{1,64}$
/// let id = Pattern::ascii_id(1, 64);
/// assert!(id.matches(b"dev_123-A"));
/// assert!(!id.matches(b"d\xc3\xa9v"));
/// assert!(!id.matches(b""));
///
/// // ^[0-9a-f]{32}$
/// let hex = Pattern::ascii(32, 32).digits().chars("abcdef");
/// assert!(hex.matches(b"0123456789abcdef0123456789abcdef"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Bit `b` set when byte `b` (< 128) is allowed.
    allowed: u128,
    min: usize,
    max: usize,
    /// A non-ASCII or control character was given to [`Pattern::chars`].
    invalid: bool,
}

impl Pattern {
    /// Values of `min` to `max` bytes, of nothing yet: add classes with the other methods.
    pub const fn ascii(min: usize, max: usize) -> Pattern {
        Pattern {
            allowed: 0,
            min,
            max,
            invalid: false,
        }
    }

    /// `^[A-Za-z0-9_-]{min,max}$`: identifiers such as device and session ids.
    pub const fn ascii_id(min: usize, max: usize) -> Pattern {
        Pattern::ascii(min, max)
            .alphanumeric()
            .byte(b'_')
            .byte(b'-')
    }

    const fn range(mut self, from: u8, to: u8) -> Pattern {
        let mut b = from;
        while b <= to {
            self.allowed |= 1u128 << b;
            b += 1;
        }
        self
    }

    const fn byte(mut self, b: u8) -> Pattern {
        if b.is_ascii() && !b.is_ascii_control() {
            self.allowed |= 1u128 << b;
        } else {
            self.invalid = true;
        }
        self
    }

    /// Also allows `0-9`.
    pub const fn digits(self) -> Pattern {
        self.range(b'0', b'9')
    }

    /// Also allows `a-z`.
    pub const fn lowercase(self) -> Pattern {
        self.range(b'a', b'z')
    }

    /// Also allows `A-Z`.
    pub const fn uppercase(self) -> Pattern {
        self.range(b'A', b'Z')
    }

    /// Also allows `A-Z`, `a-z` and `0-9`.
    pub const fn alphanumeric(self) -> Pattern {
        self.digits().lowercase().uppercase()
    }

    /// Also allows each of these characters, which must be printable ASCII (a space is
    /// allowed; anything else makes [`build`](super::InputSanitizerBuilder::build) fail).
    pub const fn chars(mut self, chars: &str) -> Pattern {
        let bytes = chars.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self = self.byte(bytes[i]);
            i += 1;
        }
        self
    }

    /// Whether `value` matches: length within bounds, every byte allowed.
    #[inline]
    pub fn matches(&self, value: &[u8]) -> bool {
        (self.min..=self.max).contains(&value.len())
            && value
                .iter()
                .all(|&b| b < 128 && self.allowed & (1u128 << b) != 0)
    }

    pub(crate) fn problem(&self) -> Option<String> {
        if self.invalid {
            Some("a pattern can only allow printable ASCII characters".to_owned())
        } else if self.allowed == 0 {
            Some("a pattern must allow at least one character".to_owned())
        } else if self.max == 0 || self.min > self.max {
            Some(format!(
                "pattern length bounds {}..={} are empty",
                self.min, self.max
            ))
        } else {
            None
        }
    }
}

impl fmt::Debug for Pattern {
    /// The pattern as the regular expression it stands for, such as `^[-0-9A-Z_a-z]{1,64}$`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn put(f: &mut fmt::Formatter<'_>, b: u8) -> fmt::Result {
            if matches!(b, b'\\' | b']' | b'^') {
                f.write_str("\\")?;
            }
            write!(f, "{}", b as char)
        }
        // `-` goes first, where it is literal; it is left out of the ranges below.
        let allowed = |b: u8| b < 128 && b != b'-' && self.allowed & (1u128 << b) != 0;
        f.write_str("^[")?;
        if self.allowed & (1u128 << b'-') != 0 {
            f.write_str("-")?;
        }
        let mut b = 32u8;
        while b < 127 {
            if !allowed(b) {
                b += 1;
                continue;
            }
            let mut end = b;
            while end < 126 && allowed(end + 1) {
                end += 1;
            }
            put(f, b)?;
            if end - b >= 2 {
                f.write_str("-")?;
                put(f, end)?;
            } else if end > b {
                put(f, end)?;
            }
            b = end + 1;
        }
        write!(f, "]{{{},{}}}$", self.min, self.max)
    }
}

/// Whether a field that breaks a rule refuses the request or is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse the request (422 for a body field, 400 for a query parameter). The default:
    /// rewriting input corrupts legitimate text, and escaping belongs at output.
    #[default]
    Reject,
    /// Rewrite the field with [`sanitize_text`](super::sanitize_text) (cut to the
    /// field's maximum length) and pass the request on. Only for text and plain-text fields
    /// of a JSON body.
    Sanitize,
}

#[derive(Clone, Debug)]
enum Check {
    Text,
    PlainText,
    Pattern(Pattern),
    Url(UrlRule),
    #[cfg(feature = "rich-text")]
    Rich(super::rich::RichText),
}

/// A rule for one field of a JSON body or one query parameter.
///
/// A field is a string. Its length is counted in characters (Unicode scalar values) after
/// trimming surrounding whitespace. With no other check, any string within the bounds passes;
/// add [`plain_text`](Field::plain_text), [`pattern`](Field::pattern) or [`url`](Field::url).
///
/// ```
/// use tower_shield::sanitize::{Field, Pattern};
///
/// let prompt = Field::new("prompt").required().length(1, 500).plain_text();
/// let session = Field::new("session_id").required().pattern(Pattern::ascii_id(1, 64));
/// // A nested field, by JSON pointer (RFC 6901).
/// let city = Field::new("/address/city").length(1, 100).plain_text().single_line();
/// ```
#[derive(Clone, Debug)]
pub struct Field {
    name: String,
    pointer: String,
    required: bool,
    min_chars: usize,
    max_chars: Option<usize>,
    single_line: bool,
    check: Check,
    mode: Mode,
}

/// One broken rule: the field (or header / parameter) and the rule. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) field: String,
    pub(crate) location: &'static str,
    pub(crate) rule: &'static str,
    pub(crate) reason: &'static str,
}

/// Why a request is refused: its status and every broken rule.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) violations: Vec<Violation>,
}

impl Refusal {
    pub(crate) fn one(
        status: StatusCode,
        field: impl Into<String>,
        location: &'static str,
        rule: &'static str,
        reason: &'static str,
    ) -> Refusal {
        Refusal {
            status,
            violations: vec![Violation {
                field: field.into(),
                location,
                rule,
                reason,
            }],
        }
    }
}

impl Field {
    /// A rule for the field `name`: a top-level member of a JSON object (or a query
    /// parameter), or, when it starts with `/`, a JSON pointer to a nested member. Optional,
    /// any length, no check until told otherwise.
    pub fn new(name: &str) -> Field {
        let pointer = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{}", name.replace('~', "~0").replace('/', "~1"))
        };
        Field {
            name: name.to_owned(),
            pointer,
            required: false,
            min_chars: 0,
            max_chars: None,
            single_line: false,
            check: Check::Text,
            mode: Mode::Reject,
        }
    }

    /// The field must be present (and not `null`).
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Between `min` and `max` characters after trimming surrounding whitespace.
    pub fn length(mut self, min: usize, max: usize) -> Field {
        self.min_chars = min;
        self.max_chars = Some(max);
        self
    }

    /// No line breaks (`\r`, `\n`) and no tab: for names, titles and the like.
    pub fn single_line(mut self) -> Field {
        self.single_line = true;
        self
    }

    /// Plain text: no markup or script vectors, no control characters (see
    /// [`validate_plain_text`](super::validate_plain_text)).
    pub fn plain_text(mut self) -> Field {
        self.check = Check::PlainText;
        self
    }

    /// The whole value (untrimmed) must match `pattern`.
    pub fn pattern(mut self, pattern: Pattern) -> Field {
        self.check = Check::Pattern(pattern);
        self
    }

    /// An absolute URL with one of the rule's schemes.
    pub fn url(mut self, rule: UrlRule) -> Field {
        self.check = Check::Url(rule);
        self
    }

    /// Rich text (HTML), always rewritten by `cleaner` (feature `rich-text`).
    #[cfg(feature = "rich-text")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rich-text")))]
    pub fn rich_text(mut self, cleaner: super::rich::RichText) -> Field {
        self.check = Check::Rich(cleaner);
        self
    }

    /// Rewrite instead of refuse (see [`Mode::Sanitize`]).
    pub fn sanitize(self) -> Field {
        self.mode(Mode::Sanitize)
    }

    /// Whether a broken rule refuses the request or rewrites the field.
    pub fn mode(mut self, mode: Mode) -> Field {
        self.mode = mode;
        self
    }

    /// The field's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn problems(&self, in_query: bool) -> Vec<String> {
        let mut out = Vec::new();
        let who = &self.name;
        if self.name.is_empty() || self.name == "/" {
            out.push("a field needs a name".to_owned());
        }
        if let Some(max) = self.max_chars {
            if max == 0 || self.min_chars > max {
                out.push(format!(
                    "field {who:?}: length bounds {}..={max} are empty",
                    self.min_chars
                ));
            }
        }
        match &self.check {
            Check::Pattern(p) => {
                if let Some(p) = p.problem() {
                    out.push(format!("field {who:?}: {p}"));
                }
            }
            Check::Url(u) => {
                if let Some(p) = u.problem() {
                    out.push(format!("field {who:?}: {p}"));
                }
            }
            _ => {}
        }
        let rewrites = self.mode == Mode::Sanitize || self.rewrites_always();
        if rewrites && matches!(self.check, Check::Pattern(_) | Check::Url(_)) {
            out.push(format!(
                "field {who:?}: pattern and URL fields cannot be sanitised, only refused"
            ));
        }
        if rewrites && in_query {
            out.push(format!(
                "query parameter {who:?}: query parameters cannot be rewritten, only refused"
            ));
        }
        out
    }

    fn rewrites_always(&self) -> bool {
        #[cfg(feature = "rich-text")]
        if matches!(self.check, Check::Rich(_)) {
            return true;
        }
        false
    }

    /// Checks a present string value. `Ok(Some(new))` when the value is to be replaced.
    fn check(&self, raw: &str) -> Result<Option<String>, (&'static str, &'static str)> {
        if self.single_line && raw.contains(['\r', '\n', '\t']) {
            return Err(("single_line", "must be a single line"));
        }
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if let Some(max) = self.max_chars {
            // In sanitize mode a long text is cut, not refused.
            if chars > max && self.mode == Mode::Reject {
                return Err(("max_length", "is longer than allowed"));
            }
        }
        if chars < self.min_chars {
            return Err(("min_length", "is shorter than allowed"));
        }
        match &self.check {
            Check::Pattern(p) => {
                if p.matches(raw.as_bytes()) {
                    Ok(None)
                } else {
                    Err(("pattern", "does not match the expected format"))
                }
            }
            Check::Url(rule) => match rule.check(raw) {
                Ok(_) => Ok(None),
                Err(_) => Err(("url", "is not an allowed URL")),
            },
            #[cfg(feature = "rich-text")]
            Check::Rich(cleaner) => Ok(Some(cleaner.clean(raw))),
            Check::Text | Check::PlainText => match self.mode {
                Mode::Sanitize => {
                    let new = sanitize_text(trimmed, self.max_chars.unwrap_or(usize::MAX));
                    if new.trim().chars().count() < self.min_chars {
                        return Err(("min_length", "is shorter than allowed"));
                    }
                    Ok((new != raw).then_some(new))
                }
                Mode::Reject => match &self.check {
                    Check::PlainText => match validate_plain_text(raw) {
                        Ok(()) => Ok(None),
                        Err(e) => Err(("plain_text", plain_text_reason(e))),
                    },
                    _ => Ok(None),
                },
            },
        }
    }
}

fn plain_text_reason(e: PlainTextError) -> &'static str {
    match e {
        PlainTextError::Control => "must be plain text: holds a control or invisible character",
        PlainTextError::Markup => "must be plain text: holds HTML markup",
        PlainTextError::EventHandler => "must be plain text: holds an HTML event handler",
        PlainTextError::ScriptUrl => "must be plain text: holds a script URL",
        #[allow(unreachable_patterns)]
        _ => "must be plain text",
    }
}

/// A rule for one request header: exactly one instance, matching an explicit pattern.
///
/// ```
/// use http::Method;
/// use tower_shield::sanitize::{HeaderRule, Pattern};
///
/// // Optional everywhere, but one valid instance when sent…
/// let any = HeaderRule::new("x-device-id", Pattern::ascii_id(1, 64));
/// // …and required on the playlist routes.
/// let playlist = HeaderRule::new("x-device-id", Pattern::ascii_id(1, 64))
///     .required()
///     .on(Method::POST, "/playlist/*");
/// ```
#[derive(Clone, Debug)]
pub struct HeaderRule {
    name: String,
    pattern: Pattern,
    required: bool,
    routes: Vec<Route>,
}

impl HeaderRule {
    /// Header `name` (checked when the layer is built) must match `pattern` when present, and
    /// be present at most once.
    pub fn new(name: &str, pattern: Pattern) -> HeaderRule {
        HeaderRule {
            name: name.to_owned(),
            pattern,
            required: false,
            routes: Vec::new(),
        }
    }

    /// The header must be present.
    pub fn required(mut self) -> HeaderRule {
        self.required = true;
        self
    }

    /// Applies the rule to `method` on `path` (exact, or a prefix ending in `/*`) only; call
    /// it once per route. With no call the rule applies to every request.
    pub fn on(mut self, method: Method, path: &str) -> HeaderRule {
        self.routes.push(Route::new(method, path));
        self
    }
}

/// A header rule, compiled.
#[derive(Clone, Debug)]
pub(crate) struct CompiledHeader {
    name: HeaderName,
    pattern: Pattern,
    required: bool,
    routes: Vec<Route>,
}

impl HeaderRule {
    pub(crate) fn compile(self, problems: &mut Vec<String>) -> Option<CompiledHeader> {
        let name = match HeaderName::from_bytes(self.name.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!("{:?} is not a header name", self.name));
                None
            }
        };
        if let Some(p) = self.pattern.problem() {
            problems.push(format!("header {:?}: {p}", self.name));
        }
        problems.extend(self.routes.iter().filter_map(Route::problem));
        Some(CompiledHeader {
            name: name?,
            pattern: self.pattern,
            required: self.required,
            routes: self.routes,
        })
    }
}

impl CompiledHeader {
    pub(crate) fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), Violation> {
        if !self.routes.is_empty() && !self.routes.iter().any(|r| r.matches(method, path)) {
            return Ok(());
        }
        let mut values = headers.get_all(&self.name).iter();
        let fail = |rule, reason| Violation {
            field: self.name.as_str().to_owned(),
            location: "header",
            rule,
            reason,
        };
        match (values.next(), values.next()) {
            (None, _) if self.required => Err(fail("required", "is required")),
            (None, _) => Ok(()),
            (Some(v), None) if self.pattern.matches(v.as_bytes()) => Ok(()),
            (Some(_), None) => Err(fail("pattern", "does not match the expected format")),
            (Some(_), Some(_)) => Err(fail("multiple", "must be sent exactly once")),
        }
    }
}

/// Query-parameter rules of one route.
#[derive(Clone, Debug)]
pub(crate) struct QueryRule {
    pub(crate) route: Route,
    pub(crate) fields: Vec<Field>,
}

impl QueryRule {
    /// Checks the query string (`None` when the URI has none); every broken rule.
    pub(crate) fn check(&self, query: Option<&str>, out: &mut Vec<Violation>) {
        let query = query.unwrap_or("");
        for field in &self.fields {
            let fail = |rule, reason| Violation {
                field: field.name.clone(),
                location: "query",
                rule,
                reason,
            };
            let mut found: Option<&str> = None;
            let mut count = 0usize;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if percent_decode(name).as_deref() == Some(field.name.as_str()) {
                    count += 1;
                    found = Some(value);
                }
            }
            match (count, found) {
                (0, _) | (_, None) => {
                    if field.required {
                        out.push(fail("required", "is required"));
                    }
                }
                (1, Some(raw)) => match percent_decode(raw) {
                    None => out.push(fail("utf8", "is not valid UTF-8 once decoded")),
                    Some(value) => {
                        if let Err((rule, reason)) = field.check(&value) {
                            out.push(fail(rule, reason));
                        }
                    }
                },
                _ => out.push(fail("multiple", "must be sent exactly once")),
            }
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space,
/// `%XX` a byte (a malformed `%` stays as it is). `None` when the bytes are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Limits on a JSON body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonLimits {
    pub(crate) max_depth: usize,
    pub(crate) max_keys: usize,
}

/// JSON-body rules of one route.
#[derive(Clone, Debug)]
pub(crate) struct BodyRule {
    pub(crate) route: Route,
    pub(crate) fields: Vec<Field>,
}

fn bad_request(field: &str, rule: &'static str, reason: &'static str) -> Refusal {
    Refusal::one(StatusCode::BAD_REQUEST, field, "body", rule, reason)
}

impl BodyRule {
    /// Validates a complete body. `Ok(None)`: pass the bytes on as they are; `Ok(Some(new))`:
    /// pass on this rewritten body.
    pub(crate) fn check(
        &self,
        body: &[u8],
        limits: JsonLimits,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        if std::str::from_utf8(body).is_err() {
            return Err(bad_request("body", "utf8", "is not valid UTF-8"));
        }
        let keys = scan(body, limits)?;
        let mut value: Value = serde_json::from_slice(body)
            .map_err(|_| bad_request("body", "json", "is not well-formed JSON"))?;
        if !value.is_object() {
            return Err(bad_request("body", "object", "must be a JSON object"));
        }
        if count_keys(&value) != keys {
            return Err(bad_request(
                "body",
                "duplicate_key",
                "holds the same key twice in one object",
            ));
        }
        let mut violations = Vec::new();
        let mut rewritten = false;
        for field in &self.fields {
            let fail = |rule, reason| Violation {
                field: field.name.clone(),
                location: "body",
                rule,
                reason,
            };
            match value.pointer_mut(&field.pointer) {
                None | Some(Value::Null) => {
                    if field.required {
                        violations.push(fail("required", "is required"));
                    }
                }
                Some(Value::String(s)) => match field.check(s) {
                    Ok(None) => {}
                    Ok(Some(new)) => {
                        *s = new;
                        rewritten = true;
                    }
                    Err((rule, reason)) => violations.push(fail(rule, reason)),
                },
                Some(_) => violations.push(fail("type", "must be a string")),
            }
        }
        if !violations.is_empty() {
            return Err(Refusal {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                violations,
            });
        }
        if rewritten {
            // Serialising a `Value` into a `Vec` does not fail.
            Ok(serde_json::to_vec(&value).ok())
        } else {
            Ok(None)
        }
    }
}

/// One pass over valid UTF-8 JSON text: refuses nesting deeper than `max_depth` and more
/// than `max_keys` object members in all, before any parser builds anything. Returns the
/// number of members (every `:` outside a string separates one).
fn scan(body: &[u8], limits: JsonLimits) -> Result<usize, Refusal> {
    let (mut depth, mut keys) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(bad_request("body", "depth", "is nested too deeply"));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' => {
                keys += 1;
                if keys > limits.max_keys {
                    return Err(bad_request("body", "keys", "has too many keys"));
                }
            }
            _ => {}
        }
    }
    Ok(keys)
}

/// Object members in all of `value`, at any depth (bounded by the scan's depth limit).
fn count_keys(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        Value::Array(items) => items.iter().map(count_keys).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: JsonLimits = JsonLimits {
        max_depth: 4,
        max_keys: 8,
    };

    fn rule() -> BodyRule {
        BodyRule {
            route: Route::any("/"),
            fields: vec![Field::new("a").required().length(1, 3).plain_text()],
        }
    }

    #[test]
    fn json_shapes() {
        let r = rule();
        assert!(r.check(br#"{"a":"x"}"#, LIMITS).unwrap().is_none());
        let e = |b: &[u8]| r.check(b, LIMITS).unwrap_err().violations[0].rule;
        assert_eq!(e(br#"{"a":"x","a":"y"}"#), "duplicate_key");
        assert_eq!(e(br#"{"a":"x","b":[[[[1]]]]}"#), "depth");
        // Brackets and colons inside strings are text, not structure.
        assert_eq!(e(br#"{"a":"x:{[","b":1}"#), "max_length");
    }

    #[test]
    fn patterns_render_as_regex() {
        assert_eq!(
            format!("{:?}", Pattern::ascii_id(1, 64)),
            "^[-0-9A-Z_a-z]{1,64}$"
        );
        assert_eq!(
            format!("{:?}", Pattern::ascii(0, 3).chars("+-0^")),
            "^[-+0\\^]{0,3}$"
        );
        assert_eq!(
            format!("{:?}", Pattern::ascii(1, 1).chars(",-.")),
            "^[-,.]{1,1}$"
        );
        assert!(Pattern::ascii(1, 2).chars("é").problem().is_some());
        assert!(Pattern::ascii(3, 2).digits().problem().is_some());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a+b%20c%zz").unwrap(), "a b c%zz");
        assert!(percent_decode("%C0%BC").is_none());
    }
}
