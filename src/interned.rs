//! Header names, header values and bodies prepared when a layer is built and sent on many
//! responses, moved into static memory so that sending one copies it by pointer.
//!
//! A [`Bytes`] made at run time counts its references: every clone and every drop is an
//! atomic operation on one counter. A prepared value is cloned into every response by every
//! worker thread, so that counter's cache line moves from core to core on each response;
//! under load, the reference server spent 3.5 % of its CPU time in those clones and drops
//! (`perf`, see BENCHMARKS.md). A [`Bytes`] over static memory has no counter.
//!
//! Each distinct text is copied once for the life of the process, however many layers are
//! built from it: building layers again (in tests, on a configuration reload) does not grow
//! memory. Only what a configuration names is interned, never anything from a request.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

static TEXTS: Mutex<BTreeSet<&'static [u8]>> = Mutex::new(BTreeSet::new());

/// `text`, in static memory shared with every earlier equal text.
fn text(text: &[u8]) -> &'static [u8] {
    let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&interned) = texts.get(text) {
        return interned;
    }
    let interned: &'static [u8] = Box::leak(text.into());
    texts.insert(interned);
    interned
}

/// `bytes`, in static memory.
pub(crate) fn bytes(bytes: &[u8]) -> Bytes {
    Bytes::from_static(text(bytes))
}

/// The same value (and sensitivity), in static memory.
pub(crate) fn value(value: HeaderValue) -> HeaderValue {
    match HeaderValue::from_maybe_shared(bytes(value.as_bytes())) {
        Ok(mut interned) => {
            interned.set_sensitive(value.is_sensitive());
            interned
        }
        // Unreachable: the bytes came from a valid value.
        Err(_) => value,
    }
}

/// The same name, in static memory (names `http` knows are static already).
#[cfg_attr(not(feature = "secure-headers"), allow(dead_code))]
pub(crate) fn name(name: HeaderName) -> HeaderName {
    // `as_str` of a name is its lowercase canonical form, which `from_static` accepts; the
    // check keeps a panic impossible should that ever change.
    match std::str::from_utf8(text(name.as_str().as_bytes())) {
        Ok(s) if HeaderName::from_bytes(s.as_bytes()).is_ok_and(|n| n.as_str() == s) => {
            HeaderName::from_static(s)
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_copy() {
        let a = value(HeaderValue::from_str("max-age=31536000").unwrap());
        let b = value(HeaderValue::from_bytes(b"max-age=31536000").unwrap());
        assert_eq!(a, "max-age=31536000");
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
    }

    #[test]
    fn sensitivity_and_names_are_kept() {
        let mut secret = HeaderValue::from_static("s3cret");
        secret.set_sensitive(true);
        assert!(value(secret).is_sensitive());
        for n in [
            "cross-origin-opener-policy",
            "x-frame-options",
            "X-Custom-Name",
        ] {
            let original = HeaderName::from_bytes(n.as_bytes()).unwrap();
            assert_eq!(name(original.clone()), original);
        }
        assert_eq!(&bytes(b"{\"a\":1}")[..], b"{\"a\":1}");
    }
}
