//! Operations on a response's `HeaderMap` that more than one layer needs.

#[cfg(feature = "rate-limit")]
use bytes::Bytes;
use http::HeaderValue;
#[cfg(any(feature = "secure-headers", feature = "cors"))]
use http::{HeaderMap, HeaderName};

/// `value`, cloned once now: the first clone of bytes built from a `Vec` allocates their
/// shared counter, and that must happen when the layer is built, not on a response.
pub(crate) fn prepared(value: HeaderValue) -> HeaderValue {
    drop(value.clone());
    value
}

/// [`prepared`] for a body.
#[cfg(feature = "rate-limit")]
pub(crate) fn prepared_bytes(bytes: Bytes) -> Bytes {
    drop(bytes.clone());
    bytes
}

/// Removes every field named in `names` (for which `listed` is true) from `headers`.
///
/// A response has a handful of names, and usually none of the listed ones: comparing each
/// of its names with the list costs a few instructions, where a removal per listed name
/// hashes that name and probes the map (about 100 instructions each).
#[cfg(any(feature = "secure-headers", feature = "cors"))]
pub(crate) fn remove_listed<'n>(
    headers: &mut HeaderMap,
    names: impl IntoIterator<Item = &'n HeaderName>,
    listed: impl Fn(&HeaderName) -> bool,
) {
    if headers.is_empty() || (headers.keys_len() <= 16 && !headers.keys().any(listed)) {
        return;
    }
    for name in names {
        headers.remove(name);
    }
}

#[cfg(all(test, any(feature = "secure-headers", feature = "cors")))]
mod tests {
    use http::HeaderValue;
    use http::header::{SERVER, VARY};

    use super::*;

    #[test]
    fn removes_only_what_is_listed_and_present() {
        let banner = HeaderName::from_static("x-powered-by");
        let names = [SERVER, banner.clone()];
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("origin"));
        remove_listed(&mut headers, &names, |k| names.contains(k));
        assert_eq!(headers.len(), 1);
        headers.append(banner.clone(), HeaderValue::from_static("a"));
        headers.append(banner, HeaderValue::from_static("b"));
        headers.insert(SERVER, HeaderValue::from_static("x"));
        remove_listed(&mut headers, &names, |k| names.contains(k));
        assert_eq!(headers.keys().collect::<Vec<_>>(), [VARY]);
        // A map with many names is not scanned, and still cleaned.
        for i in 0..20 {
            headers.insert(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        headers.insert(SERVER, HeaderValue::from_static("x"));
        remove_listed(&mut headers, &names, |k| names.contains(k));
        assert!(!headers.contains_key(SERVER));
        assert_eq!(headers.len(), 21);
    }
}
