//! Client-chosen identifiers (device and session ids): the one rule every layer applies.

use http::{HeaderMap, HeaderName};

/// The header a client names its device by, `x-device-id`: the default of the rate limit's
/// device and session scopes and of the security log's hashed device field.
pub const DEVICE_ID_HEADER: HeaderName = HeaderName::from_static("x-device-id");

/// Whether `value` is a valid device or session identifier: `^[A-Za-z0-9_-]{1,64}$`.
#[inline]
pub(crate) fn valid_identifier(value: &[u8]) -> bool {
    (1..=64).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// The one value of `name`, if there is exactly one and it is a valid identifier.
#[inline]
pub(crate) fn single_identifier<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h [u8]> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) if valid_identifier(v.as_bytes()) => Some(v.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(valid_identifier(b"device_01-A"));
        assert!(!valid_identifier(b""));
        assert!(!valid_identifier(&[b'a'; 65]));
        assert!(valid_identifier(&[b'a'; 64]));
        for bad in [&b"a b"[..], b"a\nb", b"\xc3\xa9", b"a.b", b"a/b"] {
            assert!(!valid_identifier(bad));
        }
    }

    #[test]
    fn exactly_one_valid_instance() {
        let name = HeaderName::from_static("x-device-id");
        let mut headers = HeaderMap::new();
        assert_eq!(single_identifier(&headers, &name), None);
        headers.append(&name, "dev-1".parse().unwrap());
        assert_eq!(single_identifier(&headers, &name), Some(&b"dev-1"[..]));
        headers.append(&name, "dev-2".parse().unwrap());
        assert_eq!(single_identifier(&headers, &name), None);
        headers.insert(&name, "not valid".parse().unwrap());
        assert_eq!(single_identifier(&headers, &name), None);
    }
}
