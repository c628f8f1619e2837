//! `sanitize_filename`: a client-supplied name made safe to use as one path component.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The longest name most file systems accept, in bytes.
const MAX_BYTES: usize = 255;

/// Why [`sanitize_filename`] gave up: nothing usable was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilenameError {
    /// The name was empty, or held nothing but separators, dots, spaces and control
    /// characters.
    Empty,
}

impl fmt::Display for FilenameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the file name is empty once unsafe characters are removed")
    }
}

impl std::error::Error for FilenameError {}

/// Makes a client-supplied file name safe to use as a single path component on Linux, macOS
/// and Windows.
///
/// 1. NFKC normalisation (a fullwidth `／` is a `/`, `‥` is `..`);
/// 2. control characters and bidirectional controls (the `U+202E` "`exe.txt`" trick) are
///    dropped;
/// 3. path separators and the characters Windows forbids (`/ \ : * ? " < > |`) become `_`;
/// 4. runs of dots collapse to one dot, so no `..` remains; leading dots and spaces (hidden
///    files, `..`) and trailing dots and spaces (which Windows silently strips) are removed;
/// 5. the name is cut to at most 255 bytes at a character boundary, keeping a short
///    extension when there is one;
/// 6. a Windows reserved device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`,
///    `CONIN$`, `CONOUT$`, in any case, with or without an extension) gets a `_` in front.
///
/// An empty result is an error, never a silently invented name.
///
/// ```
/// use tower_shield::sanitize::{sanitize_filename, FilenameError};
///
/// assert_eq!(sanitize_filename("../../etc/passwd").unwrap(), "_._etc_passwd");
/// assert_eq!(sanitize_filename("report.pdf").unwrap(), "report.pdf");
/// assert_eq!(sanitize_filename("con.txt").unwrap(), "_con.txt");
/// assert_eq!(sanitize_filename(" .hidden. ").unwrap(), "hidden");
/// assert_eq!(sanitize_filename("invoice\u{202E}fdp.exe").unwrap(), "invoicefdp.exe");
/// assert_eq!(sanitize_filename("..."), Err(FilenameError::Empty));
/// ```
pub fn sanitize_filename(name: &str) -> Result<String, FilenameError> {
    let mut out = String::with_capacity(name.len().min(MAX_BYTES * 2));
    for c in name.nfkc() {
        if c.is_control()
            || matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
            )
        {
            continue;
        }
        let c = match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        };
        if c == '.' && out.ends_with('.') {
            continue;
        }
        out.push(c);
    }
    let trimmed = trim_ends(&out);
    if trimmed.is_empty() {
        return Err(FilenameError::Empty);
    }
    let mut name = truncate(trimmed);
    if is_reserved(&name) {
        name.insert(0, '_');
        if name.len() > MAX_BYTES {
            name = truncate(&name);
        }
    }
    Ok(name)
}

fn trim_ends(s: &str) -> &str {
    s.trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

/// At most 255 bytes, cut at a character boundary, keeping an extension of up to 16 bytes.
fn truncate(name: &str) -> String {
    if name.len() <= MAX_BYTES {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16 && e.len() > 1)
        .unwrap_or("");
    let mut cut = MAX_BYTES - ext.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = trim_ends(&name[..cut]);
    let mut out = String::with_capacity(MAX_BYTES);
    out.push_str(stem);
    if !stem.is_empty() {
        out.push_str(ext);
    }
    let out = trim_ends(&out).to_owned();
    if out.is_empty() {
        // Cannot happen for a non-empty trimmed name, but never return an empty name.
        return "_".to_owned();
    }
    out
}

/// Whether Windows treats `name` as a device (`CON`, `com1.txt`…).
pub(crate) fn is_reserved(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end();
    let upper = base.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        s if s.len() == 4 && (s.starts_with("COM") || s.starts_with("LPT")) => {
            s.as_bytes()[3].is_ascii_digit()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.tar.gz", "é".repeat(300));
        let out = sanitize_filename(&long).unwrap();
        assert!(out.len() <= 255);
        assert!(out.ends_with(".gz"));
        assert!(is_reserved("lpt1.txt") && is_reserved("Com0") && !is_reserved("console"));
    }
}
