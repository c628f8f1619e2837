//! `Origin::parse` and `OriginPattern::parse` / `matches` on arbitrary text.
//!
//! Input: `<candidate>\0<request origin>`; the second part is what a browser might send and is
//! matched against the candidate when the candidate is a pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_shield::cors::{Origin, OriginError, OriginPattern, Scheme};

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(candidate), Ok(request)) = (std::str::from_utf8(first), std::str::from_utf8(second))
    else {
        return;
    };
    check_origin(candidate);
    check_origin(request);
    check_pattern(candidate, request);
});

fn check_origin(input: &str) {
    match Origin::parse(input) {
        Ok(origin) => {
            // A browser's serialization: it re-renders to exactly the text that was parsed.
            assert_eq!(origin.as_str(), input);
            assert_eq!(origin.to_string(), input);
            assert_eq!(Origin::parse(origin.as_str()).as_ref(), Ok(&origin));
            let scheme = origin.scheme();
            let rebuilt = match origin.port() {
                Some(port) => {
                    assert_ne!(
                        port,
                        scheme.default_port(),
                        "{input:?} keeps a default port"
                    );
                    assert_ne!(port, 0);
                    format!("{}://{}:{port}", scheme.as_str(), origin.host())
                }
                None => format!("{}://{}", scheme.as_str(), origin.host()),
            };
            assert_eq!(rebuilt, input, "the parts do not make the whole");
            let host = origin.host();
            assert!(!host.is_empty());
            assert!(host.is_ascii(), "{input:?}");
            assert!(!host.ends_with('.'), "{input:?}");
            assert!(
                host.bytes().all(|b| b.is_ascii_graphic()
                    && !b.is_ascii_uppercase()
                    && !b"/?#@\\".contains(&b)),
                "{input:?} has a stray byte in its host"
            );
            assert_eq!(
                origin.is_secure(),
                scheme == Scheme::Https || origin.is_loopback()
            );
            // Every origin is also a pattern that matches itself and nothing else.
            let pattern = OriginPattern::parse(input).expect("an origin is a pattern");
            assert_eq!(pattern.as_origin(), Some(&origin));
            assert_eq!(pattern.as_str(), input);
            assert!(pattern.matches(input));
            assert_eq!(pattern.is_secure(), origin.is_secure());
        }
        Err(err) => {
            assert_eq!(err.input(), input);
            check_error(&err);
            if let Some(fix) = err.suggestion() {
                assert_ne!(fix, input, "a suggestion that changes nothing");
                assert!(
                    Origin::parse(fix).is_ok(),
                    "suggestion {fix:?} for {input:?} does not parse"
                );
            }
        }
    }
}

/// The message is printed at start-up and logged: the input may be anything, the message
/// must stay one line of visible text.
fn check_error(err: &OriginError) {
    let text = err.to_string();
    assert!(
        !text.chars().any(char::is_control),
        "raw control character in the error {text:?}"
    );
}

fn check_pattern(input: &str, request: &str) {
    let pattern = match OriginPattern::parse(input) {
        Ok(p) => p,
        Err(err) => {
            assert_eq!(err.input(), input);
            check_error(&err);
            if let Some(fix) = err.suggestion() {
                assert!(
                    OriginPattern::parse(fix).is_ok(),
                    "suggestion {fix:?} for {input:?}"
                );
            }
            return;
        }
    };
    assert_eq!(pattern.as_str(), input);
    assert_eq!(pattern.to_string(), input);
    if let Some(exact) = pattern.as_origin() {
        assert_eq!(pattern.matches(request), request == exact.as_str());
        return;
    }
    if !pattern.matches(request) {
        return;
    }
    // Whatever a pattern lets in is something a browser can send.
    let origin = match Origin::parse(request) {
        Ok(o) => o,
        // DNS caps names at 253 bytes, URL parsers do not; a longer name resolves to nothing.
        Err(e) if e.reason().contains("at most 253") => return,
        Err(e) => panic!("{input:?} matches {request:?}, which is no origin: {e}"),
    };
    assert_eq!(origin.scheme(), pattern.scheme());
    if pattern.is_secure() {
        assert!(
            origin.is_secure(),
            "secure {input:?} matches insecure {request:?}"
        );
    }
    if let Some(suffix) = pattern.subdomains_of() {
        let host = origin.host();
        assert!(
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.',
            "{input:?} matches {request:?} outside its suffix"
        );
    }
}
