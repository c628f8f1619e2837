//! A typed Content-Security-Policy: built, validated and rendered once, with no tower types.
//!
//! [`Csp::builder`] (or one of the starting points [`Csp::recommended`], [`Csp::helmet`],
//! [`Csp::owasp`], [`Csp::api`]) collects directives; [`CspBuilder::build`] checks all of them
//! at once and returns every problem in one [`ConfigError`].

use std::borrow::Cow;
use std::fmt;

use crate::error::{ConfigError, ConfigErrors};

type Str = Cow<'static, str>;

/// What a directive takes as its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A source list (`'self' https: data:`), at least one source (or a nonce).
    Sources,
    /// No value at all (`upgrade-insecure-requests`).
    Flag,
    /// Free tokens, possibly none (`sandbox allow-scripts`).
    Tokens,
    /// Exactly one token (`report-to csp-endpoint`).
    OneToken,
    /// One or more tokens (`report-uri /csp`).
    SomeTokens,
}

/// Every directive of CSP Level 3 (and the few still-honoured older ones) with its value kind.
const KNOWN: &[(&str, Kind)] = &[
    ("default-src", Kind::Sources),
    ("base-uri", Kind::Sources),
    ("child-src", Kind::Sources),
    ("connect-src", Kind::Sources),
    ("fenced-frame-src", Kind::Sources),
    ("font-src", Kind::Sources),
    ("form-action", Kind::Sources),
    ("frame-ancestors", Kind::Sources),
    ("frame-src", Kind::Sources),
    ("img-src", Kind::Sources),
    ("manifest-src", Kind::Sources),
    ("media-src", Kind::Sources),
    ("object-src", Kind::Sources),
    ("prefetch-src", Kind::Sources),
    ("script-src", Kind::Sources),
    ("script-src-attr", Kind::Sources),
    ("script-src-elem", Kind::Sources),
    ("style-src", Kind::Sources),
    ("style-src-attr", Kind::Sources),
    ("style-src-elem", Kind::Sources),
    ("worker-src", Kind::Sources),
    ("sandbox", Kind::Tokens),
    ("report-to", Kind::OneToken),
    ("report-uri", Kind::SomeTokens),
    ("require-trusted-types-for", Kind::SomeTokens),
    ("trusted-types", Kind::Tokens),
    ("webrtc", Kind::OneToken),
    ("upgrade-insecure-requests", Kind::Flag),
    ("block-all-mixed-content", Kind::Flag),
];

/// Directives browsers no longer implement: naming one is an error that says so.
const OBSOLETE: &[&str] = &[
    "plugin-types",
    "referrer",
    "reflected-xss",
    "navigate-to",
    "require-sri-for",
    "disown-opener",
];

/// Directives a per-response nonce may go into.
const NONCE_DIRECTIVES: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "style-src",
    "style-src-elem",
];

/// Keywords that must be single-quoted in a source list (helmet's `SHOULD_BE_QUOTED`, plus
/// the newer CSP3 ones).
const KEYWORDS: &[&str] = &[
    "self",
    "none",
    "unsafe-inline",
    "unsafe-eval",
    "unsafe-hashes",
    "unsafe-allow-redirects",
    "strict-dynamic",
    "report-sample",
    "wasm-unsafe-eval",
    "inline-speculation-rules",
    "trusted-types-eval",
    "report-sha256",
    "report-sha384",
    "report-sha512",
    "script",
    "allow-duplicates",
];

const HASH_PREFIXES: &[&str] = &["sha256-", "sha384-", "sha512-"];

/// One directive as written by the caller.
#[derive(Debug, Clone)]
struct RawDirective {
    name: Str,
    values: Vec<Str>,
    custom: bool,
}

/// Builds a [`Csp`]. Nothing is checked until [`build`](CspBuilder::build), which reports
/// every problem at once.
///
/// Directives render in the order they were added.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct CspBuilder {
    directives: Vec<RawDirective>,
    nonce_in: Vec<Str>,
    compact: bool,
    allow_missing_default_src: bool,
}

macro_rules! source_directives {
    ($($(#[$doc:meta])* $fn:ident => $name:literal;)*) => {
        $(
            $(#[$doc])*
            pub fn $fn<I, S>(self, sources: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<Cow<'static, str>>,
            {
                self.directive($name, sources)
            }
        )*
    };
}

impl CspBuilder {
    /// Adds a directive of CSP Level 3 with its sources or tokens (`"'self'"`, `"https:"`,
    /// `"data:"`, `"https://cdn.example.com"`). Naming a directive twice is an error; use
    /// [`replace`](Self::replace) to change one.
    pub fn directive<I, S>(self, name: impl Into<Str>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Str>,
    {
        self.push(name.into(), values, false)
    }

    /// Replaces the directive `name` (keeping its place), or adds it when absent. Handy to
    /// adjust one of the starting points.
    pub fn replace<I, S>(mut self, name: impl Into<Str>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Str>,
    {
        let name = name.into();
        let values: Vec<Str> = values.into_iter().map(Into::into).collect();
        match self.directives.iter_mut().find(|d| d.name == name) {
            Some(d) => d.values = values,
            None => self.directives.push(RawDirective {
                name,
                values,
                custom: false,
            }),
        }
        self
    }

    /// Removes the directive `name` if present.
    pub fn remove(mut self, name: &str) -> Self {
        self.directives.retain(|d| d.name != name);
        self.nonce_in.retain(|d| d != name);
        self
    }

    /// Adds a directive this crate does not know (a new or experimental one). Its name and
    /// values are still checked for syntax, quoting and injection.
    pub fn custom_directive<I, S>(self, name: impl Into<Str>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Str>,
    {
        self.push(name.into(), values, true)
    }

    fn push<I, S>(mut self, name: Str, values: I, custom: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Str>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.directives.push(RawDirective {
            name,
            values,
            custom,
        });
        self
    }

    source_directives! {
        /// `default-src`: the fallback for every fetch directive. Required.
        default_src => "default-src";
        /// `base-uri`: what `<base href>` may point to.
        base_uri => "base-uri";
        /// `connect-src`: fetch, XHR, WebSocket and EventSource targets.
        connect_src => "connect-src";
        /// `font-src`.
        font_src => "font-src";
        /// `form-action`: where forms may submit.
        form_action => "form-action";
        /// `frame-ancestors`: who may frame this page (`'none'` replaces `X-Frame-Options`).
        frame_ancestors => "frame-ancestors";
        /// `frame-src`.
        frame_src => "frame-src";
        /// `img-src`.
        img_src => "img-src";
        /// `media-src`.
        media_src => "media-src";
        /// `object-src` (`'none'` is the recommended value).
        object_src => "object-src";
        /// `script-src`. Prefer [`nonce`](CspBuilder::nonce) to `'unsafe-inline'`.
        script_src => "script-src";
        /// `script-src-attr`: inline event handlers.
        script_src_attr => "script-src-attr";
        /// `style-src`.
        style_src => "style-src";
        /// `worker-src`.
        worker_src => "worker-src";
    }

    /// `upgrade-insecure-requests`: the browser fetches `http:` sub-resources over HTTPS.
    pub fn upgrade_insecure_requests(self) -> Self {
        self.directive("upgrade-insecure-requests", std::iter::empty::<Str>())
    }

    /// `report-to <group>`: violations go to the `Reporting-Endpoints` entry named `group`
    /// (declare it with
    /// [`SecureHeadersBuilder::reporting_endpoint`](super::SecureHeadersBuilder::reporting_endpoint)).
    pub fn report_to(self, group: impl Into<Str>) -> Self {
        self.directive("report-to", [group.into()])
    }

    /// Puts a fresh nonce (`'nonce-…'`, 144 random bits) into `directive` (`script-src`,
    /// `script-src-elem`, `style-src`, `style-src-elem` or `default-src`) of every response.
    /// The directive must be in the policy. The layer hands the same nonce to the handler as a
    /// [`CspNonce`](super::CspNonce) request extension.
    pub fn nonce(mut self, directive: impl Into<Str>) -> Self {
        self.nonce_in.push(directive.into());
        self
    }

    /// Joins directives with `;` and no space, as helmet does (the default is `"; "`).
    pub fn compact(mut self) -> Self {
        self.compact = true;
        self
    }

    /// Allows a policy without `default-src`. Without it, any fetch directive the policy does
    /// not name is unrestricted, which is rarely what anyone wants.
    pub fn dangerously_allow_missing_default_src(mut self) -> Self {
        self.allow_missing_default_src = true;
        self
    }

    /// Checks every directive and value, and returns the policy or every problem found.
    ///
    /// ```
    /// use tower_shield::secure_headers::Csp;
    ///
    /// let err = Csp::builder()
    ///     .script_src(["self"])
    ///     .directive("scirpt-src", ["'self'"])
    ///     .build()
    ///     .unwrap_err();
    /// let text = err.to_string();
    /// assert!(text.contains("did you mean 'self'"));
    /// assert!(text.contains("did you mean `script-src`"));
    /// assert!(text.contains("default-src"));
    /// ```
    pub fn build(self) -> Result<Csp, ConfigError> {
        self.build_as("csp")
    }

    /// The groups named by `report-to`, valid or not.
    pub(crate) fn report_groups(&self) -> impl Iterator<Item = &str> {
        self.directives
            .iter()
            .filter(|d| d.name == "report-to")
            .flat_map(|d| d.values.iter().map(|v| v.as_ref()))
    }

    pub(crate) fn build_as(self, setting: &'static str) -> Result<Csp, ConfigError> {
        let mut errors = ConfigErrors::default();
        if self.directives.is_empty() {
            errors.push(setting, "the policy has no directives");
        }
        for (i, d) in self.directives.iter().enumerate() {
            if self.directives[..i].iter().any(|e| e.name == d.name) {
                errors.push(
                    setting,
                    format!(
                        "directive `{}` appears twice; name it once with all its sources, or use \
                         `replace`",
                        d.name.escape_debug()
                    ),
                );
                continue;
            }
            let nonce =
                self.nonce_in.contains(&d.name) && NONCE_DIRECTIVES.contains(&d.name.as_ref());
            check_directive(&mut errors, setting, d, nonce);
        }
        if !self.allow_missing_default_src
            && !self.directives.is_empty()
            && !self.directives.iter().any(|d| d.name == "default-src")
        {
            errors.push(
                setting,
                "the policy has no `default-src`, so every fetch directive it does not name is \
                 unrestricted; add `default_src([\"'self'\"])` (or call \
                 `dangerously_allow_missing_default_src`)",
            );
        }
        let mut nonce_in = Vec::new();
        for (i, n) in self.nonce_in.iter().enumerate() {
            if self.nonce_in[..i].contains(n) {
                continue;
            }
            if !NONCE_DIRECTIVES.contains(&n.as_ref()) {
                errors.push(
                    setting,
                    format!(
                        "a nonce cannot go into `{}`; use one of {}",
                        n.escape_debug(),
                        NONCE_DIRECTIVES.join(", ")
                    ),
                );
            } else if let Some(pos) = self.directives.iter().position(|d| d.name == *n) {
                nonce_in.push(pos);
            } else {
                errors.push(
                    setting,
                    format!("a nonce is asked for `{n}` but the policy has no `{n}` directive"),
                );
            }
        }
        let separator = if self.compact { ";" } else { "; " };
        errors.finish(|| Csp {
            directives: self
                .directives
                .into_iter()
                .map(|d| (d.name, d.values))
                .collect(),
            nonce_in,
            separator,
        })
    }
}

fn check_directive(
    errors: &mut ConfigErrors,
    setting: &'static str,
    d: &RawDirective,
    nonce: bool,
) {
    let name = d.name.as_ref();
    if !valid_name(name) {
        errors.push(
            setting,
            format!(
                "`{}` is not a directive name (lower-case letters, digits and `-`)",
                name.escape_debug()
            ),
        );
        return;
    }
    let kind = match KNOWN.iter().find(|(n, _)| *n == name) {
        Some((_, kind)) => Some(*kind),
        None if OBSOLETE.contains(&name) => {
            errors.push(
                setting,
                format!("`{name}` is obsolete and browsers ignore it; remove it"),
            );
            return;
        }
        None if d.custom => None,
        None => {
            let hint = suggest(name)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            errors.push(
                setting,
                format!(
                    "unknown directive `{name}`{hint}; use `custom_directive` for a directive this \
                     crate does not know yet"
                ),
            );
            return;
        }
    };
    match kind {
        Some(Kind::Flag) if !d.values.is_empty() => {
            errors.push(setting, format!("`{name}` takes no value"));
        }
        Some(Kind::Sources) if d.values.is_empty() && !nonce => errors.push(
            setting,
            format!("`{name}` has no sources; write `'none'` to allow nothing"),
        ),
        Some(Kind::OneToken) if d.values.len() != 1 => {
            errors.push(setting, format!("`{name}` takes exactly one value"));
        }
        Some(Kind::SomeTokens) if d.values.is_empty() => {
            errors.push(setting, format!("`{name}` needs at least one value"));
        }
        _ => {}
    }
    let mut has_none = false;
    for v in &d.values {
        if let Err(message) = check_value(v) {
            errors.push(setting, format!("`{name}`: {message}"));
        }
        has_none |= v.eq_ignore_ascii_case("'none'");
    }
    if has_none && (d.values.len() > 1 || nonce) {
        errors.push(
            setting,
            format!("`{name}`: `'none'` must be the only source (other sources would be ignored)"),
        );
    }
}

/// `^[a-z](?:[a-z0-9-]*[a-z0-9])?$`
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    matches!(b.first(), Some(b'a'..=b'z'))
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && b.last() != Some(&b'-')
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("an empty value".into());
    }
    if v.contains([';', ',']) {
        return Err(format!(
            "`{}` contains `;` or `,`, which would start a new directive or policy",
            v.escape_debug()
        ));
    }
    if !v.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "`{}` is not one token of visible ASCII; pass each source as its own item",
            v.escape_debug()
        ));
    }
    let lower = v.to_ascii_lowercase();
    if let Some(inner) = lower.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        if inner.starts_with("nonce-") {
            return Err(format!(
                "`{v}` is a fixed nonce, which any attacker can read and reuse; call \
                 `.nonce(\"script-src\")` for a fresh one per response"
            ));
        }
        if KEYWORDS.contains(&inner) {
            return Ok(());
        }
        if let Some(p) = HASH_PREFIXES.iter().find(|p| inner.starts_with(**p)) {
            let digest = &v[1 + p.len()..v.len() - 1];
            return if !digest.is_empty()
                && digest.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_' | b'=')
                }) {
                Ok(())
            } else {
                Err(format!("`{v}` is not a base64 hash source"))
            };
        }
        return Err(format!("`{v}` is not a CSP keyword"));
    }
    if KEYWORDS.contains(&lower.as_str())
        || HASH_PREFIXES.iter().any(|p| lower.starts_with(p))
        || lower.starts_with("nonce-")
    {
        return Err(format!(
            "`{v}` must be quoted: did you mean '{v}'? (unquoted, it names a host called `{v}`)"
        ));
    }
    if v.contains('\'') {
        return Err(format!("`{v}` has a stray quote"));
    }
    Ok(())
}

/// The known directive closest to `name` (at most two edits away).
fn suggest(name: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|(k, _)| (*k, strsim::levenshtein(name, k)))
        .filter(|(_, d)| *d <= 2)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

/// A validated Content-Security-Policy.
///
/// ```
/// use tower_shield::secure_headers::Csp;
///
/// let csp = Csp::builder()
///     .default_src(["'self'"])
///     .img_src(["'self'", "data:"])
///     .object_src(["'none'"])
///     .build()?;
/// assert_eq!(csp.to_string(), "default-src 'self'; img-src 'self' data:; object-src 'none'");
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csp {
    directives: Vec<(Str, Vec<Str>)>,
    /// Indices into `directives` that receive the per-response nonce.
    nonce_in: Vec<usize>,
    separator: &'static str,
}

impl Csp {
    /// An empty builder.
    pub fn builder() -> CspBuilder {
        CspBuilder::default()
    }

    /// This crate's default: helmet 8's policy with `frame-ancestors 'none'`:
    ///
    /// `default-src 'self'; base-uri 'self'; font-src 'self' https: data:; form-action 'self';
    /// frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self';
    /// script-src-attr 'none'; style-src 'self' https: 'unsafe-inline';
    /// upgrade-insecure-requests`
    pub fn recommended() -> CspBuilder {
        Csp::helmet()
            .replace("frame-ancestors", ["'none'"])
            .expanded()
    }

    /// helmet 8's default policy, byte for byte (directives joined by `;` without a space).
    pub fn helmet() -> CspBuilder {
        Csp::builder()
            .default_src(["'self'"])
            .base_uri(["'self'"])
            .font_src(["'self'", "https:", "data:"])
            .form_action(["'self'"])
            .frame_ancestors(["'self'"])
            .img_src(["'self'", "data:"])
            .object_src(["'none'"])
            .script_src(["'self'"])
            .script_src_attr(["'none'"])
            .style_src(["'self'", "https:", "'unsafe-inline'"])
            .upgrade_insecure_requests()
            .compact()
    }

    /// The OWASP Secure Headers Project's policy: `default-src 'self'; form-action 'self';
    /// base-uri 'self'; object-src 'none'; frame-ancestors 'none'; upgrade-insecure-requests`.
    pub fn owasp() -> CspBuilder {
        Csp::builder()
            .default_src(["'self'"])
            .form_action(["'self'"])
            .base_uri(["'self'"])
            .object_src(["'none'"])
            .frame_ancestors(["'none'"])
            .upgrade_insecure_requests()
    }

    /// For JSON APIs, which load nothing and are framed by no one: `default-src 'none';
    /// frame-ancestors 'none'`.
    pub fn api() -> CspBuilder {
        Csp::builder()
            .default_src(["'none'"])
            .frame_ancestors(["'none'"])
    }

    /// Whether a fresh nonce goes into this policy on every response.
    pub fn uses_nonce(&self) -> bool {
        !self.nonce_in.is_empty()
    }

    /// The value of the directive `name`, if the policy has it.
    pub fn directive(&self, name: &str) -> Option<&[Str]> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Weaknesses that are legal but probably unintended, after CSP Evaluator's checks: inline
    /// or `eval` scripts allowed, scripts from any host, no `object-src` / `base-uri`
    /// restriction, deprecated directives. The layer logs each at build time through
    /// `tracing` (`warn`, target `tower_shield::secure_headers`).
    ///
    /// ```
    /// use tower_shield::secure_headers::Csp;
    ///
    /// let csp = Csp::builder().default_src(["'self'"]).script_src(["'self'", "'unsafe-inline'"]).build()?;
    /// assert!(csp.warnings().iter().any(|w| w.contains("'unsafe-inline'")));
    /// assert!(Csp::recommended().build()?.warnings().is_empty());
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let has = |name: &str| self.directive(name).is_some();
        let default_none = self
            .directive("default-src")
            .is_some_and(|v| v.iter().any(|s| s == "'none'"));
        let (script_dir, script) = match self.directive("script-src") {
            Some(v) => ("script-src", Some(v)),
            None => ("default-src", self.directive("default-src")),
        };
        let script_nonce = self
            .nonce_in
            .iter()
            .any(|&i| self.directives[i].0 == script_dir);
        if let Some(sources) = script {
            let lower: Vec<String> = sources.iter().map(|s| s.to_ascii_lowercase()).collect();
            let strict = script_nonce
                || lower
                    .iter()
                    .any(|s| s.starts_with("'sha") || s == "'strict-dynamic'");
            if lower.iter().any(|s| s == "'unsafe-inline'") && !strict {
                out.push(format!(
                    "`{script_dir}` allows 'unsafe-inline' scripts, which undoes most of CSP's \
                     protection against XSS; use a nonce or hashes"
                ));
            }
            if lower.iter().any(|s| s == "'unsafe-eval'") {
                out.push(format!("`{script_dir}` allows 'unsafe-eval'"));
            }
            if !lower.iter().any(|s| s == "'strict-dynamic'") {
                if let Some(any) = lower
                    .iter()
                    .find(|s| matches!(s.as_str(), "*" | "http:" | "https:" | "data:"))
                {
                    out.push(format!(
                        "`{script_dir}` allows scripts from `{any}`, so from anywhere an attacker \
                         can host a file"
                    ));
                }
            }
        }
        if !default_none && !has("object-src") {
            out.push("no `object-src`: add `object-src 'none'` (plugins can run script)".into());
        }
        if !has("base-uri")
            && self.directives.iter().any(|(n, _)| n.ends_with("-src"))
            && !default_none
        {
            out.push(
                "no `base-uri`: an injected `<base>` can redirect relative script URLs; add \
                 `base-uri 'self'` or `'none'`"
                    .into(),
            );
        }
        for old in ["block-all-mixed-content", "prefetch-src"] {
            if has(old) {
                out.push(format!(
                    "`{old}` is deprecated and ignored by current browsers"
                ));
            }
        }
        if has("report-uri") && !has("report-to") {
            out.push("`report-uri` is deprecated; add `report-to` too".into());
        }
        out
    }

    /// The policy with `nonce` put into its nonce directives as `'nonce-<nonce>'`.
    pub fn render_with_nonce(&self, nonce: &str) -> String {
        let pieces = self.pieces();
        let mut out = String::new();
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                out.push_str(nonce);
            }
            out.push_str(p);
        }
        out
    }

    /// The rendered policy cut where the nonce goes: `pieces.join(nonce)` is the header value.
    /// Without nonce directives this is the whole policy in one piece.
    pub(crate) fn pieces(&self) -> Vec<String> {
        let mut pieces = Vec::new();
        let mut cur = String::new();
        for (i, (name, values)) in self.directives.iter().enumerate() {
            if i > 0 {
                cur.push_str(self.separator);
            }
            cur.push_str(name);
            for v in values {
                cur.push(' ');
                cur.push_str(v);
            }
            if self.nonce_in.contains(&i) {
                cur.push_str(" 'nonce-");
                pieces.push(std::mem::take(&mut cur));
                cur.push('\'');
            }
        }
        pieces.push(cur);
        pieces
    }
}

impl CspBuilder {
    fn expanded(mut self) -> Self {
        self.compact = false;
        self
    }
}

impl fmt::Display for Csp {
    /// The policy as a header value; nonce directives are written without their nonce.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, values)) in self.directives.iter().enumerate() {
            if i > 0 {
                f.write_str(self.separator)?;
            }
            f.write_str(name)?;
            for v in values {
                write!(f, " {v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(b: CspBuilder) -> Vec<String> {
        b.build()
            .unwrap_err()
            .problems()
            .iter()
            .map(|p| p.message().to_owned())
            .collect()
    }

    #[test]
    fn helmet_renders_byte_for_byte() {
        assert_eq!(
            Csp::helmet().build().unwrap().to_string(),
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
        );
    }

    /// Found by the `csp` fuzz target: a directive name given twice, or a nonce directive, was
    /// quoted raw in the error, control characters included.
    #[test]
    fn errors_escape_control_characters() {
        for b in [
            Csp::builder().default_src(["'self'"]).nonce("\u{1b}[2J"),
            Csp::builder()
                .default_src(["'self'"])
                .directive("x\u{7}", ["'self'"])
                .directive("x\u{7}", ["'self'"]),
        ] {
            for p in problems(b) {
                assert!(!p.chars().any(char::is_control), "{p:?}");
            }
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let p = problems(
            Csp::builder()
                .script_src(["self", "'unsafe-inline'; img-src *"])
                .script_src(["'self'"])
                .directive("Default_src", ["'self'"])
                .directive("img-src", Vec::<String>::new())
                .directive("frame-src", ["'none'", "https:"])
                .directive("plugin-types", ["application/pdf"])
                .nonce("img-src"),
        );
        assert_eq!(p.len(), 9, "{p:#?}");
        assert!(p[0].contains("did you mean 'self'"));
        assert!(p[1].contains("`;` or `,`"));
        assert!(p[2].contains("appears twice"));
        assert!(p[3].contains("not a directive name"));
        assert!(p[4].contains("has no sources"));
        assert!(p[5].contains("only source"));
        assert!(p[6].contains("obsolete"));
        assert!(p[7].contains("no `default-src`"));
        assert!(p[8].contains("cannot go into `img-src`"));
        // the nonce problem is reported after the default-src check
        let p = problems(
            Csp::builder()
                .default_src(["'self'"])
                .nonce("img-src")
                .nonce("style-src"),
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn helmet_name_corpus_is_rejected() {
        for bad in [
            "",
            ";",
            "default src",
            " default-src",
            "default_src",
            "DefaultSrc",
            "-default-src",
            "__proto__",
            "default-src-",
        ] {
            let p = problems(
                Csp::builder()
                    .default_src(["'self'"])
                    .custom_directive(bad, ["x"]),
            );
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert!(p[0].contains("not a directive name"), "{bad:?}");
        }
    }

    #[test]
    fn quoting_rules() {
        for v in [
            "none",
            "self",
            "strict-dynamic",
            "report-sample",
            "unsafe-inline",
            "unsafe-eval",
            "unsafe-hashes",
            "wasm-unsafe-eval",
            "sha256-abc",
            "nonce-abc",
            "SELF",
        ] {
            let p = problems(Csp::builder().default_src([v]));
            assert!(p[0].contains("must be quoted"), "{v}: {p:?}");
        }
        let p = problems(Csp::builder().default_src(["'nonce-abc'"]));
        assert!(p[0].contains("fixed nonce"));
        let p = problems(Csp::builder().default_src(["'slef'"]));
        assert!(p[0].contains("not a CSP keyword"));
        assert!(
            Csp::builder()
                .default_src([
                    "'self'",
                    "'sha256-n4MwUJ5Mu0kdYxDKwJ0ZP8eAk95Ye2nQy5QJyYgAtWo='",
                    "https://a.example:8443/x/"
                ])
                .build()
                .is_ok()
        );
    }

    #[test]
    fn unknown_directive_gets_a_suggestion_and_custom_passes() {
        let p = problems(
            Csp::builder()
                .default_src(["'self'"])
                .directive("scirpt-src", ["'self'"]),
        );
        assert!(p[0].contains("did you mean `script-src`"), "{p:?}");
        assert!(
            Csp::builder()
                .default_src(["'self'"])
                .custom_directive("new-thing-src", ["'self'"])
                .build()
                .is_ok()
        );
    }

    #[test]
    fn nonce_pieces_splice() {
        let csp = Csp::builder()
            .default_src(["'self'"])
            .script_src(["'strict-dynamic'"])
            .style_src(["'self'"])
            .nonce("script-src")
            .nonce("style-src")
            .build()
            .unwrap();
        assert!(csp.uses_nonce());
        assert_eq!(
            csp.render_with_nonce("AbC"),
            "default-src 'self'; script-src 'strict-dynamic' 'nonce-AbC'; style-src 'self' 'nonce-AbC'"
        );
        assert_eq!(csp.pieces().len(), 3);
        // a nonce-only directive is allowed
        let csp = Csp::builder()
            .default_src(["'self'"])
            .directive("script-src", Vec::<String>::new())
            .nonce("script-src")
            .build()
            .unwrap();
        assert_eq!(
            csp.render_with_nonce("x"),
            "default-src 'self'; script-src 'nonce-x'"
        );
    }

    #[test]
    fn missing_default_src_can_be_allowed() {
        assert!(Csp::builder().frame_ancestors(["'none'"]).build().is_err());
        assert!(
            Csp::builder()
                .frame_ancestors(["'none'"])
                .dangerously_allow_missing_default_src()
                .build()
                .is_ok()
        );
        assert!(Csp::builder().build().is_err());
    }

    #[test]
    fn warnings_flag_weak_but_legal_policies() {
        for b in [Csp::recommended(), Csp::helmet(), Csp::owasp(), Csp::api()] {
            assert!(b.build().unwrap().warnings().is_empty());
        }
        let w = Csp::builder()
            .default_src(["'self'", "https:"])
            .directive("report-uri", ["/csp"])
            .directive("block-all-mixed-content", Vec::<String>::new())
            .build()
            .unwrap()
            .warnings();
        assert_eq!(w.len(), 5, "{w:#?}");
        assert!(w[0].contains("`default-src` allows scripts from `https:`"));
        assert!(w[1].contains("object-src"));
        assert!(w[2].contains("base-uri"));
        assert!(w[3].contains("block-all-mixed-content"));
        assert!(w[4].contains("report-uri"));
        // a nonce or strict-dynamic makes 'unsafe-inline' and https: harmless in CSP3 browsers
        let w = Csp::recommended()
            .replace(
                "script-src",
                ["'unsafe-inline'", "'strict-dynamic'", "https:"],
            )
            .nonce("script-src")
            .build()
            .unwrap()
            .warnings();
        assert!(w.is_empty(), "{w:?}");
        let w = Csp::recommended()
            .replace("script-src", ["'self'", "'unsafe-inline'", "'unsafe-eval'"])
            .build()
            .unwrap()
            .warnings();
        assert_eq!(w.len(), 2, "{w:?}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn a_policy_that_builds_never_carries_an_injection(values in proptest::collection::vec("[ -~]{0,12}", 1..5)) {
                if let Ok(csp) = Csp::builder().default_src(values).build() {
                    let s = csp.to_string();
                    prop_assert!(!s.contains(','));
                    prop_assert_eq!(s.matches(';').count(), 0);
                    prop_assert!(http::HeaderValue::from_str(&s).is_ok());
                }
            }
        }
    }
}
