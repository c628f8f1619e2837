//! `validate_plain_text`, `sanitize_text` and `escape_html` on arbitrary text.
//!
//! What is accepted is judged again here by simpler, independent rules over the text's
//! NFKC form: they are weaker than the validator's (no character-reference decoding), so
//! anything they find is a vector the validator let through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_shield::sanitize::{escape_html, sanitize_text, validate_plain_text};
use unicode_normalization::UnicodeNormalization;

fn is_control_or_invisible(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n' && c != '\r')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// A word character for "at the start of a word"; `;` and `&` count too, so that the end of a
/// character reference (`&#97;onerror=`, which decodes to the harmless `aonerror=`) is not
/// taken for a word boundary.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '+' | '.' | ';' | '&' | '#')
}

fn check_accepted(text: &str) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        assert!(
            !is_control_or_invisible(c),
            "accepted a control character: {text:?}"
        );
        if c == '\r' {
            assert_eq!(chars.peek(), Some(&'\n'), "accepted a bare CR: {text:?}");
        }
    }
    let canonical: Vec<char> = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let n = canonical.len();
    let last_closer = canonical.iter().rposition(|&c| c == '>' || c == '=');
    for i in 0..n {
        if canonical[i] != '<' {
            continue;
        }
        match canonical.get(i + 1) {
            Some('!' | '/' | '?') => panic!("accepted a comment, end tag or PI: {text:?}"),
            Some(c) if c.is_ascii_alphabetic() && last_closer.is_some_and(|j| j > i + 1) => {
                panic!("accepted a tag: {text:?}")
            }
            _ => {}
        }
    }
    let word_start = |i: usize| i == 0 || !is_word(canonical[i - 1]);
    let at = |i: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(k, w)| canonical.get(i + k) == Some(&w))
    };
    // Schemes are judged with control characters removed, as a URL parser does.
    let no_controls: Vec<char> = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_control())
        .collect();
    for i in 0..no_controls.len() {
        let start = i == 0 || !is_word(no_controls[i - 1]);
        let word = |w: &str| {
            w.chars()
                .enumerate()
                .all(|(k, c)| no_controls.get(i + k) == Some(&c))
        };
        assert!(
            !(start && (word("javascript:") || word("vbscript:"))),
            "accepted a script URL: {text:?}"
        );
    }
    for i in 0..n {
        if !(word_start(i) && at(i, "on")) {
            continue;
        }
        let mut j = i + 2;
        while j < n && canonical[j].is_ascii_lowercase() {
            j += 1;
        }
        let letters = j - i - 2;
        while j < n && canonical[j].is_whitespace() {
            j += 1;
        }
        assert!(
            !(letters >= 3 && canonical.get(j) == Some(&'=')),
            "accepted an event handler: {text:?}"
        );
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };

    if validate_plain_text(text).is_ok() {
        check_accepted(text);
    }

    let escaped = escape_html(text);
    assert!(!escaped.contains(['<', '>', '"', '\'']));
    assert_eq!(unescape(&escaped), text, "escaping loses text");

    let max = usize::from(max);
    let clean = sanitize_text(text, max);
    assert!(
        clean.chars().count() <= max,
        "{clean:?} is over {max} characters"
    );
    assert!(
        !clean.contains(['<', '>', '"', '\'']),
        "{clean:?} holds markup characters"
    );
    assert!(
        !clean
            .chars()
            .any(|c| is_control_or_invisible(c) || c == '\r'),
        "{clean:?} holds a control character"
    );
    // Entities are never cut: every `&` starts a whole one.
    for (i, _) in clean.match_indices('&') {
        let tail = &clean[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;"]
                .iter()
                .any(|e| tail.starts_with(e)),
            "a cut entity in {clean:?}"
        );
    }
    // What sanitising keeps is plain text by the validator's own rules on controls.
    assert!(clean.chars().all(|c| !is_control_or_invisible(c)));
});
