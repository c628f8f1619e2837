//! Per-response CSP nonces: 144 bits from a CSPRNG, base64, on the stack.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Random bytes per nonce: 18 bytes (144 bits) encode to exactly 24 base64 characters.
const RAW: usize = 18;
const LEN: usize = RAW / 3 * 4;
// At least 128 bits, as CSP3 recommends; checked at compile time.
const _: () = assert!(RAW * 8 >= 128);

/// The nonce of the current response's Content-Security-Policy.
///
/// When the policy asks for one ([`CspBuilder::nonce`](super::CspBuilder::nonce)), the layer
/// draws a fresh nonce for every request (144 bits from [`rand::rng`], a ChaCha-based CSPRNG
/// seeded and periodically reseeded from the operating system), puts it into the request's
/// extensions before the handler runs, and writes `'nonce-<value>'` into the response's policy.
/// Put [`as_str`](CspNonce::as_str) into the `nonce` attribute of your inline `<script>` and
/// `<style>` elements:
///
/// ```
/// use http::Request;
/// use tower_shield::secure_headers::CspNonce;
///
/// fn page(req: &Request<()>) -> String {
///     let nonce = req.extensions().get::<CspNonce>().map(CspNonce::as_str).unwrap_or("");
///     format!(r#"<script nonce="{nonce}">console.log("hi")</script>"#)
/// }
/// # assert!(page(&Request::new(())).contains(r#"nonce="""#));
/// ```
///
/// With axum, take it as `Extension(nonce): Extension<CspNonce>`.
///
/// The type cannot be built from outside this crate, so a nonce is never caller-supplied and
/// always safe inside an HTML attribute (base64 only).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CspNonce {
    text: [u8; LEN],
}

impl CspNonce {
    /// A fresh nonce from the thread-local CSPRNG.
    pub(crate) fn generate() -> Self {
        let mut raw = [0u8; RAW];
        rand::rng().fill_bytes(&mut raw);
        Self::from_bytes(raw)
    }

    fn from_bytes(raw: [u8; RAW]) -> Self {
        let mut text = [0u8; LEN];
        // Cannot fail: 18 bytes are exactly 24 characters, without padding.
        let _ = STANDARD.encode_slice(raw, &mut text);
        CspNonce { text }
    }

    /// The nonce as base64 text (24 characters), for a `nonce="…"` attribute.
    pub fn as_str(&self) -> &str {
        // Always base64 ASCII; the fallback is unreachable.
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.text
    }
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CspNonce").field(&self.as_str()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        // RFC 4648 test vector "foobar" repeated to 18 bytes
        let raw: [u8; RAW] = *b"foobarfoobarfoobar";
        assert_eq!(
            CspNonce::from_bytes(raw).as_str(),
            "Zm9vYmFyZm9vYmFyZm9vYmFy"
        );
        assert_eq!(
            CspNonce::from_bytes([0xff; RAW]).as_str(),
            "////////////////////////"
        );
        assert_eq!(
            CspNonce::from_bytes([0; RAW]).as_str(),
            "AAAAAAAAAAAAAAAAAAAAAAAA"
        );
    }

    #[test]
    fn nonces_are_fresh_and_long() {
        let a = CspNonce::generate();
        let b = CspNonce::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
    }
}
