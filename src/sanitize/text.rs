//! Pure text functions: canonicalise, escape, and tell plain text from markup.
//!
//! Nothing here knows about HTTP; every function is total (it never panics) and is
//! property-tested on arbitrary strings.

use std::borrow::Cow;
use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Canonicalises `text` for safe display as HTML element text or a quoted attribute value.
///
/// The EchoTuner guide's `sanitize_text`, done in the right order:
///
/// 1. NFKC normalisation (so fullwidth `＜` becomes `<` *before* it is escaped);
/// 2. control characters are dropped, except tab and newline (`\r` is dropped, so `\r\n`
///    becomes `\n`); so are the bidirectional embedding, override and isolate controls
///    (U+202A–U+202E, U+2066–U+2069, the "Trojan Source" characters) and the line and
///    paragraph separators U+2028 / U+2029;
/// 3. the result is [HTML-escaped](escape_html);
/// 4. it is cut at a character boundary so that the *escaped* output holds at most
///    `max_chars` characters. An entity such as `&amp;` is never cut in half: it is left out
///    whole when it does not fit.
///
/// Use it for output you cannot escape at the point of use. Where you can, store the text as
/// it came (after [`validate_plain_text`]) and escape when rendering: rewriting input corrupts
/// names like `O'Brian`.
///
/// ```
/// use tower_shield::sanitize::sanitize_text;
///
/// assert_eq!(sanitize_text("＜b＞hi\u{0}", 100), "&lt;b&gt;hi");
/// assert_eq!(sanitize_text("a\r\nb\tc", 100), "a\nb\tc");
/// // `max_chars` bounds the escaped output; `&amp;` fits whole or not at all.
/// assert_eq!(sanitize_text("rock & roll", 10), "rock &amp;");
/// assert_eq!(sanitize_text("rock & roll", 9), "rock ");
/// ```
pub fn sanitize_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut used = 0usize;
    for c in text.nfkc() {
        if dropped_by_sanitize(c) {
            continue;
        }
        let (piece, width): (&str, usize) = match c {
            '&' => ("&amp;", 5),
            '<' => ("&lt;", 4),
            '>' => ("&gt;", 4),
            '"' => ("&quot;", 6),
            '\'' => ("&#x27;", 6),
            _ => ("", 1),
        };
        if used + width > max_chars {
            break;
        }
        used += width;
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
    }
    out
}

/// Whether [`sanitize_text`] drops `c`.
fn dropped_by_sanitize(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n') || is_bidi_control(c) || is_line_separator(c)
}

/// The bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (line breaks in JavaScript and logs).
fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Escapes `&`, `<`, `>`, `"` and `'` so that `text` is safe as HTML element text and inside a
/// single- or double-quoted attribute value.
///
/// It is not enough for unquoted attributes, URLs (`href`), `<script>`, `<style>` or
/// comments: those contexts need their own encoders (or, better, a template engine that
/// knows the context). No allocation happens when there is nothing to escape.
///
/// ```
/// use tower_shield::sanitize::escape_html;
///
/// assert_eq!(escape_html(r#"<a title="x">O'Brian & co</a>"#),
///            "&lt;a title=&quot;x&quot;&gt;O&#x27;Brian &amp; co&lt;/a&gt;");
/// assert!(matches!(escape_html("plain"), std::borrow::Cow::Borrowed("plain")));
/// ```
pub fn escape_html(text: &str) -> Cow<'_, str> {
    let Some(first) = text.bytes().position(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    let mut start = first;
    for (i, b) in text.bytes().enumerate().skip(first) {
        let piece = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(piece);
        start = i + 1;
    }
    out.push_str(&text[start..]);
    Cow::Owned(out)
}

#[inline]
fn needs_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
}

/// Why [`validate_plain_text`] refused a text. The reason names a rule, never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlainTextError {
    /// A control character (C0 but tab, newline and `\r\n`; DEL; C1), a bidirectional
    /// override or isolate, or a line / paragraph separator.
    Control,
    /// Something an HTML parser reads as a tag, a comment, a doctype or a processing
    /// instruction.
    Markup,
    /// An event-handler attribute (`onerror=`, `onload =`…).
    EventHandler,
    /// A `javascript:`, `vbscript:` or `data:` URL.
    ScriptUrl,
}

impl PlainTextError {
    /// A short name of the rule that failed, as used in problem documents and logs.
    pub fn rule(self) -> &'static str {
        match self {
            PlainTextError::Control => "control_character",
            PlainTextError::Markup => "markup",
            PlainTextError::EventHandler => "event_handler",
            PlainTextError::ScriptUrl => "script_url",
        }
    }
}

impl fmt::Display for PlainTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlainTextError::Control => "contains a control or invisible formatting character",
            PlainTextError::Markup => "contains HTML markup",
            PlainTextError::EventHandler => "contains an HTML event-handler attribute",
            PlainTextError::ScriptUrl => "contains a javascript:, vbscript: or data: URL",
        })
    }
}

impl std::error::Error for PlainTextError {}

/// Accepts ordinary text of any script and refuses markup and script vectors, judged on the
/// text's canonical form.
///
/// The text is canonicalised first, so that no encoding hides a vector: NFKC (fullwidth
/// `＜` is `<`, `ſ` is `s`), HTML character references decoded (`&#106;`, `&#x6A`,
/// `&#0000106`, `&colon;`, with or without `;`), NFKC again, then, for the scheme check only,
/// every control character removed (a browser's URL parser removes tabs and newlines inside
/// `java<TAB>script:`; elsewhere a control character counts as a space, since a newline
/// separates attributes) and the text lower-cased. It is refused when it then holds:
///
/// - a control character (C0 but tab, newline and `\r\n`; DEL; C1), a bidirectional
///   override or isolate (U+202A–U+202E, U+2066–U+2069), or U+2028 / U+2029 (these are judged
///   on the raw text: [`PlainTextError::Control`]);
/// - `<!`, `</` or `<?`, or `<` followed by a letter when a `>` or `=` comes anywhere after it
///   (a tag that can do harm needs one of the two) ([`PlainTextError::Markup`]);
/// - `on` + letters + optional spaces + `=` at the start of a word, such as `onerror=`
///   ([`PlainTextError::EventHandler`]);
/// - a `javascript:` or `vbscript:` scheme at the start of a word, or `data:` followed by a
///   media type, `,` or `;` ([`PlainTextError::ScriptUrl`]).
///
/// Accepted, because people write them: `O'Brian`, `a < b`, `x<y`, `I <3 jazz`,
/// `5 > 3 && x`, `rock & roll`, quotes, emoji, every script, `my data: 42`.
///
/// Known false positives (the price of refusing what a browser would run): a word starting
/// with `on` right before `=` (`onion=3`), `x<y … =` (a letter after `<` with `=` later),
/// and prose saying `javascript:` with no space before the colon.
///
/// This is input *validation*: a second line of defence. Escape at output all the same.
///
/// ```
/// use tower_shield::sanitize::{validate_plain_text, PlainTextError};
///
/// for ok in ["O'Brian", "a < b", "x<y", "I <3 jazz", "rock & roll", "“quoted”", "日本語 👩‍👩‍👧"] {
///     assert!(validate_plain_text(ok).is_ok(), "{ok}");
/// }
/// assert_eq!(validate_plain_text("＜script＞alert(1)＜/script＞"), Err(PlainTextError::Markup));
/// assert_eq!(validate_plain_text("x onerror=alert(1)"), Err(PlainTextError::EventHandler));
/// assert_eq!(validate_plain_text("java&#x09;script:alert(1)"), Err(PlainTextError::ScriptUrl));
/// assert_eq!(validate_plain_text("bell\u{7}"), Err(PlainTextError::Control));
/// ```
pub fn validate_plain_text(text: &str) -> Result<(), PlainTextError> {
    check_controls(text)?;
    // Markup needs `<`, a handler `=`, a scheme `:`, a character reference `&`. Text that
    // holds none of them, nor a character whose NFKC form holds one, holds no vector, and
    // needs no normalisation to tell (composition never yields these ASCII characters).
    if !text.chars().any(becomes_trigger) {
        return Ok(());
    }
    let canonical = nfkc(text);
    let canonical = match decode_char_refs(&canonical) {
        Cow::Borrowed(_) => canonical,
        Cow::Owned(decoded) => Cow::Owned(nfkc(&decoded).into_owned()),
    };
    // Lower-cased, as a case-insensitive HTML tokenizer sees it, with control characters as
    // spaces: a newline separates attributes (`x\nonerror=`).
    let mut folded = Vec::with_capacity(canonical.len());
    fold(&canonical, &mut folded, Some(' '));
    check_markup(&folded)?;
    check_handlers(&folded)?;
    // For schemes, control characters removed: a URL parser drops tabs and newlines inside
    // `java<TAB>script:` and the control characters before it.
    if canonical.chars().any(char::is_control) {
        folded.clear();
        fold(&canonical, &mut folded, None);
    }
    check_schemes(&folded)?;
    Ok(())
}

/// Whether `c` is `<`, `=`, `:` or `&`, or a character whose NFKC decomposition holds one
/// (the complete list, checked by a unit test over every code point).
#[inline]
fn becomes_trigger(c: char) -> bool {
    matches!(
        c,
        '<' | '=' | ':' | '&' | '\u{207C}' | '\u{208C}' | '\u{2A74}'
            ..='\u{2A76}'
                | '\u{FE13}'
                | '\u{FE55}'
                | '\u{FE60}'
                | '\u{FE64}'
                | '\u{FE66}'
                | '\u{FF06}'
                | '\u{FF1A}'
                | '\u{FF1C}'
                | '\u{FF1D}'
    )
}

/// NFKC, without copying ASCII text (which is always in it). The quick check of
/// `unicode-normalization` costs more than normalising, so other text is simply normalised.
fn nfkc(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    }
}

/// `text` lower-cased into `out`, control characters replaced by `control` (or removed).
fn fold(text: &str, out: &mut Vec<char>, control: Option<char>) {
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_control() {
                out.extend(control);
            } else {
                out.push(c.to_ascii_lowercase());
            }
        } else if c.is_control() {
            out.extend(control);
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// Refuses control and invisible formatting characters; `\r` only as part of `\r\n`.
fn check_controls(text: &str) -> Result<(), PlainTextError> {
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let bad = match c {
            '\t' | '\n' => false,
            '\r' => bytes.get(i + 1) != Some(&b'\n'),
            c if c.is_control() => true,
            c => is_bidi_control(c) || is_line_separator(c),
        };
        if bad {
            return Err(PlainTextError::Control);
        }
    }
    Ok(())
}

fn check_markup(s: &[char]) -> Result<(), PlainTextError> {
    // The last `>` or `=`: a `<` + letter before it is a tag that can do harm. Found once, so
    // the check stays linear however many `<` the text holds.
    let last_closer = s.iter().rposition(|&c| c == '>' || c == '=');
    for (i, &c) in s.iter().enumerate() {
        if c != '<' {
            continue;
        }
        match s.get(i + 1) {
            Some('!' | '/' | '?') => return Err(PlainTextError::Markup),
            Some(n) if n.is_alphabetic() && last_closer.is_some_and(|j| j > i + 1) => {
                return Err(PlainTextError::Markup);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A character that may be part of a word (or a URL scheme) for the word-start checks.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '+' | '.')
}

fn at_word_start(s: &[char], i: usize) -> bool {
    i == 0 || !is_word(s[i - 1])
}

fn check_handlers(s: &[char]) -> Result<(), PlainTextError> {
    let mut i = 0;
    while i + 2 < s.len() {
        if s[i] == 'o' && s[i + 1] == 'n' && at_word_start(s, i) {
            let mut j = i + 2;
            while j < s.len() && s[j].is_ascii_lowercase() {
                j += 1;
            }
            let letters = j - (i + 2);
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            if letters >= 3 && s.get(j) == Some(&'=') {
                return Err(PlainTextError::EventHandler);
            }
        }
        i += 1;
    }
    Ok(())
}

fn starts_with(s: &[char], i: usize, word: &str) -> bool {
    (i..).zip(word.chars()).all(|(k, w)| s.get(k) == Some(&w))
}

fn check_schemes(s: &[char]) -> Result<(), PlainTextError> {
    for i in 0..s.len() {
        if !matches!(s[i], 'j' | 'v' | 'd') || !at_word_start(s, i) {
            continue;
        }
        if starts_with(s, i, "javascript:") || starts_with(s, i, "vbscript:") {
            return Err(PlainTextError::ScriptUrl);
        }
        if starts_with(s, i, "data:") && data_url_follows(&s[i + 5..]) {
            return Err(PlainTextError::ScriptUrl);
        }
    }
    Ok(())
}

/// Whether `rest` (after `data:`) looks like a data URL: `,`, `;`, or `type/subtype`.
fn data_url_follows(rest: &[char]) -> bool {
    let mut j = 0;
    while j < rest.len() && rest[j] == ' ' {
        j += 1;
    }
    let token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_');
    match rest.get(j) {
        Some(',' | ';') => true,
        Some(&c) if token(c) => {
            while j < rest.len() && token(rest[j]) {
                j += 1;
            }
            rest.get(j) == Some(&'/') && rest.get(j + 1).is_some_and(|&c| token(c))
        }
        _ => false,
    }
}

/// Decodes HTML character references the way a browser would in an attribute value, and
/// leniently: numeric ones with or without `;` and with any number of leading zeros, and
/// the named ones that matter for hiding markup or schemes, case-insensitively.
fn decode_char_refs(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    const NAMED: [(&str, char); 17] = [
        ("lt", '<'),
        ("gt", '>'),
        ("amp", '&'),
        ("quot", '"'),
        ("apos", '\''),
        ("colon", ':'),
        ("tab", '\t'),
        ("newline", '\n'),
        ("nbsp", '\u{a0}'),
        ("sol", '/'),
        ("bsol", '\\'),
        ("lpar", '('),
        ("rpar", ')'),
        ("equals", '='),
        ("excl", '!'),
        ("quest", '?'),
        ("num", '#'),
    ];
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] != b'&' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let decoded = if b.get(j) == Some(&b'#') {
            j += 1;
            let hex = matches!(b.get(j), Some(b'x' | b'X'));
            if hex {
                j += 1;
            }
            let digits_start = j;
            let mut value: u32 = 0;
            while let Some(d) = b
                .get(j)
                .and_then(|&c| (c as char).to_digit(if hex { 16 } else { 10 }))
            {
                value = value
                    .saturating_mul(if hex { 16 } else { 10 })
                    .saturating_add(d);
                j += 1;
            }
            if j == digits_start {
                None
            } else {
                // A browser turns NUL and out-of-range references into U+FFFD.
                Some(
                    char::from_u32(value)
                        .filter(|&c| c != '\0')
                        .unwrap_or('\u{FFFD}'),
                )
            }
        } else {
            let start = j;
            while b.get(j).is_some_and(u8::is_ascii_alphabetic) {
                j += 1;
            }
            let name = &s[start..j];
            NAMED
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|&(_, c)| c)
        };
        match decoded {
            Some(c) => {
                if b.get(j) == Some(&b';') {
                    j += 1;
                }
                out.push_str(&s[copied..i]);
                out.push(c);
                copied = j;
                i = j;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(s);
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_refs() {
        assert_eq!(decode_char_refs("&#106;&#x61&#0000118a"), "java");
        assert_eq!(
            decode_char_refs("a &amp; b &colon; &unknown;"),
            "a & b : &unknown;"
        );
        assert_eq!(decode_char_refs("&#99999999999999;"), "\u{FFFD}");
        assert_eq!(decode_char_refs("& &# &#x"), "& &# &#x");
    }

    #[test]
    fn trigger_list_is_complete() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let holds = c
                .to_string()
                .nfkc()
                .any(|d| matches!(d, '<' | '=' | ':' | '&'));
            assert_eq!(becomes_trigger(c), holds, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn data_urls() {
        assert!(validate_plain_text("data:text/html;base64,AAA").is_err());
        assert!(validate_plain_text("DATA:,hello").is_err());
        assert!(validate_plain_text("my data: 42").is_ok());
        assert!(validate_plain_text("metadata:text/html").is_ok());
    }

    #[test]
    fn sanitize_cuts_whole_entities() {
        assert_eq!(sanitize_text("<<<", 8), "&lt;&lt;");
        assert_eq!(sanitize_text("ab", 0), "");
    }
}
