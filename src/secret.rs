//! A secret that never shows itself, shared by the layers that key hashes with it.

use std::fmt;

use crate::error::ConfigError;

/// A secret of at least [`SecretKey::MIN_LEN`] bytes (`SECRET_KEY`) that never shows itself:
/// its `Debug` prints `SecretKey(<redacted>)`.
///
/// It deliberately implements no `PartialEq`: comparing secrets must be done in constant time
/// by the code that uses them.
///
/// ```
/// use tower_shield::SecretKey;
///
/// let key = SecretKey::new("correct horse battery staple, twice over")?;
/// assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
/// assert_eq!(key.as_bytes().len(), 40);
/// assert!(SecretKey::new("short").is_err());
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// The shortest secret accepted, in bytes (256 bits).
    pub const MIN_LEN: usize = 32;

    /// A secret from its bytes; an error (setting `SECRET_KEY`, value not shown) when shorter
    /// than [`MIN_LEN`](SecretKey::MIN_LEN).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<SecretKey, ConfigError> {
        let bytes = bytes.into();
        if bytes.len() < SecretKey::MIN_LEN {
            return Err(ConfigError::new(
                "SECRET_KEY",
                format!(
                    "is shorter than {} bytes (the value is not shown); expected at least {} \
                     random bytes, for example the 64 hex characters of `openssl rand -hex 32`",
                    SecretKey::MIN_LEN,
                    SecretKey::MIN_LEN
                ),
            ));
        }
        Ok(SecretKey(bytes))
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}
