//! Escaping and truncation of untrusted text before it becomes a log field. Pure functions,
//! no tracing types.
//!
//! Log injection needs a character that a log reader or terminal treats as structure: a line
//! break (CR, LF, U+0085, U+2028, U+2029), an ANSI escape sequence (ESC and the other C0/C1
//! controls), or a bidirectional control that makes a line *display* differently from what it
//! contains. [`escape`] replaces every such character with a visible escape, so the field is
//! one inert line whatever the subscriber's format, and cuts the result at a character
//! boundary with [`TRUNCATION_MARKER`] so a 100 KB header cannot become a 100 KB log line.

use std::borrow::Cow;

/// The default most bytes of escaped text a field keeps before the marker.
pub const DEFAULT_MAX_LEN: usize = 256;

/// What ends a value that was cut: `…[truncated]`.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// Whether `c` is written as an escape rather than as itself.
///
/// Escaped: every control character (C0 `U+0000`–`U+001F`, DEL, C1 `U+0080`–`U+009F`, so CR,
/// LF, TAB, ESC, BEL, NEL…), the backslash (so that an escape in the output always comes from
/// an escaped character and never from the input), the line and paragraph separators
/// `U+2028`/`U+2029`, the bidirectional controls (`U+061C`, `U+200E`/`U+200F`,
/// `U+202A`–`U+202E`, `U+2066`–`U+2069`), and the invisible characters `U+200B`–`U+200D`,
/// `U+2060`–`U+2064` and `U+FEFF`, which hide text from a reader.
///
/// ```
/// use tower_shield::security_log::escape::needs_escape;
///
/// assert!(needs_escape('\n') && needs_escape('\u{1b}') && needs_escape('\u{202e}'));
/// assert!(!needs_escape('a') && !needs_escape('é') && !needs_escape('"'));
/// ```
pub const fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\\'
            | '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `text` made safe for a log field: escaped, and cut to at most `max_len` bytes plus
/// [`TRUNCATION_MARKER`].
///
/// Characters that [`needs_escape`] become `\r`, `\n`, `\t`, `\\` or `\u{…}` (lowercase hex,
/// Rust syntax). The cut never splits a character or an escape. Borrows `text` when it has
/// nothing to escape and fits; the work is bounded by `max_len`, not by the input's length.
///
/// ```
/// use tower_shield::security_log::escape::{TRUNCATION_MARKER, escape};
///
/// assert_eq!(escape("curl/8.5", 64), "curl/8.5");
/// assert_eq!(escape("x\r\nINFO forged", 64), r"x\r\nINFO forged");
/// assert_eq!(escape("\u{1b}]0;pwned\u{7}", 64), r"\u{1b}]0;pwned\u{7}");
/// let long = "a".repeat(100_000);
/// assert_eq!(escape(&long, 8), format!("aaaaaaaa{TRUNCATION_MARKER}"));
/// ```
pub fn escape(text: &str, max_len: usize) -> Cow<'_, str> {
    escape_bytes(text.as_bytes(), max_len)
}

/// [`escape`] for bytes that may not be UTF-8 (a header value): each byte of an invalid
/// sequence becomes `\x{..}`.
///
/// ```
/// use tower_shield::security_log::escape::escape_bytes;
///
/// assert_eq!(escape_bytes(b"ok\xff", 64), r"ok\x{ff}");
/// ```
pub fn escape_bytes(bytes: &[u8], max_len: usize) -> Cow<'_, str> {
    if bytes.len() <= max_len {
        // Printable ASCII without a backslash: nothing to do. Folded without an early exit,
        // so that the compiler checks many bytes per instruction.
        if bytes.iter().fold(true, |plain, &b| {
            plain & (b.wrapping_sub(0x20) < 0x5f) & (b != b'\\')
        }) {
            if let Ok(s) = std::str::from_utf8(bytes) {
                return Cow::Borrowed(s);
            }
        }
        if let Ok(s) = std::str::from_utf8(bytes) {
            if !s.chars().any(needs_escape) {
                return Cow::Borrowed(s);
            }
        }
    }
    Cow::Owned(escape_slow(bytes, max_len))
}

fn escape_slow(bytes: &[u8], max_len: usize) -> String {
    // Every input byte yields at least one output byte, so nothing past `max_len` input bytes
    // can fit: look no further (a character cut by this slice turns into escapes that do not
    // fit either).
    let cut = bytes.len() > max_len;
    let bytes = &bytes[..bytes.len().min(max_len)];
    let mut out = String::with_capacity(bytes.len().min(max_len) + TRUNCATION_MARKER.len());
    let mut buf = [0u8; 12];
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let piece = render_char(c, &mut buf);
            if out.len() + piece.len() > max_len {
                out.push_str(TRUNCATION_MARKER);
                return out;
            }
            out.push_str(piece);
        }
        for &b in chunk.invalid() {
            let piece = render_byte(b, &mut buf);
            if out.len() + piece.len() > max_len {
                out.push_str(TRUNCATION_MARKER);
                return out;
            }
            out.push_str(piece);
        }
    }
    if cut {
        out.push_str(TRUNCATION_MARKER);
    }
    out
}

/// `c` as written in a field: itself, or its escape.
fn render_char(c: char, buf: &mut [u8; 12]) -> &str {
    let short = match c {
        '\r' => Some("\\r"),
        '\n' => Some("\\n"),
        '\t' => Some("\\t"),
        '\\' => Some("\\\\"),
        _ => None,
    };
    if let Some(s) = short {
        return s;
    }
    if !needs_escape(c) {
        return c.encode_utf8(buf);
    }
    // \u{XXXX}: the code point's hex digits without leading zeros (at most 6).
    let code = c as u32;
    let digits = ((32 - code.leading_zeros()).div_ceil(4)).max(1) as usize;
    let mut all = [0u8; 8];
    let _ = hex::encode_to_slice(code.to_be_bytes(), &mut all); // cannot fail: 4 bytes, 8 digits
    buf[..3].copy_from_slice(b"\\u{");
    buf[3..3 + digits].copy_from_slice(&all[8 - digits..]);
    buf[3 + digits] = b'}';
    std::str::from_utf8(&buf[..4 + digits]).unwrap_or("\\u{?}")
}

/// A byte of invalid UTF-8 as `\x{..}`.
fn render_byte(b: u8, buf: &mut [u8; 12]) -> &str {
    buf[..3].copy_from_slice(b"\\x{");
    let _ = hex::encode_to_slice([b], &mut buf[3..5]); // cannot fail: 1 byte, 2 digits
    buf[5] = b'}';
    std::str::from_utf8(&buf[..6]).unwrap_or("\\x{?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_injection_character() {
        let cases = [
            ("\r\n", r"\r\n"),
            ("\t", r"\t"),
            ("\\", r"\\"),
            ("\u{0}", r"\u{0}"),
            ("\u{1b}[31m", r"\u{1b}[31m"),
            ("\u{7f}", r"\u{7f}"),
            ("\u{85}", r"\u{85}"),
            ("\u{9b}", r"\u{9b}"),
            ("\u{2028}\u{2029}", r"\u{2028}\u{2029}"),
            ("\u{202e}abc\u{2066}", r"\u{202e}abc\u{2066}"),
            ("\u{feff}", r"\u{feff}"),
            ("\u{10ffff}", "\u{10ffff}"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape(input, 64), expected, "{input:?}");
        }
    }

    #[test]
    fn borrows_clean_text_and_keeps_quotes() {
        assert!(matches!(escape("Mozilla/5.0 (X11)", 64), Cow::Borrowed(_)));
        assert!(matches!(escape("héllo \"x\"", 64), Cow::Borrowed(_)));
    }

    #[test]
    fn truncates_at_a_character_and_escape_boundary() {
        assert_eq!(escape("ééé", 5), format!("éé{TRUNCATION_MARKER}"));
        assert_eq!(escape("ab\u{1b}", 7), format!("ab{TRUNCATION_MARKER}"));
        assert_eq!(escape("ab\u{1b}", 8), r"ab\u{1b}");
        assert_eq!(escape("abc", 0), TRUNCATION_MARKER);
        assert_eq!(escape("abc", 3), "abc");
        assert_eq!(escape("abcd", 3), format!("abc{TRUNCATION_MARKER}"));
    }

    #[test]
    fn invalid_utf8_is_escaped_bytewise() {
        assert_eq!(escape_bytes(b"a\xc3", 64), r"a\x{c3}");
        assert_eq!(escape_bytes(b"\xe2\x80\xa8", 64), r"\u{2028}");
        // A character cut by the length limit never shows as a broken escape.
        assert_eq!(
            escape_bytes("aé".as_bytes(), 2),
            format!("a{TRUNCATION_MARKER}")
        );
    }
}
