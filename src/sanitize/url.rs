//! URL fields: parsed the way a browser parses them (WHATWG, the `url` crate), then checked
//! against an allow-list of schemes.

use std::fmt;

use url::Url;

/// Why a URL field was refused. The reason names a rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not an absolute URL.
    Invalid,
    /// The value holds whitespace or control characters, which a URL parser would silently
    /// remove (`java\tscript:`), so two parsers could disagree on what it says.
    Whitespace,
    /// The scheme is not in the allow-list.
    Scheme,
    /// An `http` or `https` URL with user name or password (`https://bank.example@evil.example`).
    Credentials,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Invalid => "is not an absolute URL",
            UrlError::Whitespace => "holds whitespace or control characters",
            UrlError::Scheme => "uses a scheme that is not allowed",
            UrlError::Credentials => "holds a user name or password",
        })
    }
}

impl std::error::Error for UrlError {}

/// The schemes a URL field may use; everything else (`javascript:`, `data:`, `vbscript:`,
/// `file:`…) is refused.
///
/// The check parses with the WHATWG URL parser, the one browsers use, so a scheme split by
/// tabs or newlines, written in mixed case, or preceded by control characters is recognised
/// for what it is, with no block-list to keep up to date.
///
/// ```
/// use tower_shield::sanitize::{UrlError, UrlRule};
///
/// let rule = UrlRule::web();
/// assert!(rule.check("https://example.com/a?b=c").is_ok());
/// assert_eq!(rule.check("JaVaScRiPt:alert(1)"), Err(UrlError::Scheme));
/// assert_eq!(rule.check("java\tscript:alert(1)"), Err(UrlError::Whitespace));
/// assert_eq!(rule.check("/relative"), Err(UrlError::Invalid));
/// assert!(UrlRule::schemes(["mailto"]).check("mailto:a@example.com").is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRule {
    schemes: Vec<String>,
}

impl UrlRule {
    /// `http` and `https`.
    pub fn web() -> UrlRule {
        UrlRule::schemes(["http", "https"])
    }

    /// Only `https`.
    pub fn https() -> UrlRule {
        UrlRule::schemes(["https"])
    }

    /// Exactly these schemes (compared case-insensitively).
    pub fn schemes<S: AsRef<str>>(schemes: impl IntoIterator<Item = S>) -> UrlRule {
        UrlRule {
            schemes: schemes
                .into_iter()
                .map(|s| s.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The allowed schemes, lower-cased.
    pub fn allowed(&self) -> &[String] {
        &self.schemes
    }

    pub(crate) fn problem(&self) -> Option<String> {
        if self.schemes.is_empty() {
            return Some("a URL rule needs at least one allowed scheme".to_owned());
        }
        for s in &self.schemes {
            let valid = s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !valid {
                return Some(format!("{s:?} is not a URL scheme"));
            }
            if matches!(s.as_str(), "javascript" | "vbscript" | "data") {
                return Some(format!(
                    "the {s:?} scheme runs script; it cannot be allowed"
                ));
            }
        }
        None
    }

    /// The parsed URL when `value` is an absolute URL of an allowed scheme.
    pub fn check(&self, value: &str) -> Result<Url, UrlError> {
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(UrlError::Whitespace);
        }
        let url = Url::parse(value).map_err(|_| UrlError::Invalid)?;
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(UrlError::Scheme);
        }
        if matches!(url.scheme(), "http" | "https")
            && (!url.username().is_empty() || url.password().is_some())
        {
            return Err(UrlError::Credentials);
        }
        Ok(url)
    }
}
