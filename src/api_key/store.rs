//! Where accepted keys live: the [`KeyStore`] trait and the in-memory [`MemoryKeyStore`].

use std::borrow::Cow;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::key::KeyDigest;

/// Looks accepted keys up by their digest.
///
/// The layer hashes the presented key (after its checksum passed) and asks the store for the
/// record of that digest. The layer compares the returned record's digest with the presented
/// one again in constant time, and refuses revoked and expired records itself, so a store
/// only has to find a candidate (a database would use an index on the digest column).
///
/// # Why an associated future type
///
/// `lookup` returns `Self::Lookup`, a named future type, rather than `impl Future` (return
/// position `impl Trait` in traits) or a boxed future:
///
/// - the layer's response future must *name* the lookup future to hold it, and an
///   `impl Future` returned from a trait method cannot be named in an associated type on
///   stable Rust; it would also borrow `&self`, which a `'static` response future cannot hold;
/// - boxing every lookup would cost an allocation per request even for the in-memory store,
///   whose lookup is [`std::future::Ready`] and costs nothing.
///
/// A store that talks to a database clones what it needs (a pool handle) into the future, and
/// may still choose `Pin<Box<dyn Future<Output = …> + Send>>` as its `Lookup` type.
///
/// ```
/// use std::future::{Ready, ready};
/// use tower_shield::api_key::{KeyDigest, KeyRecord, KeyStore, KeyStoreError};
///
/// /// A store that knows one key.
/// struct One(KeyDigest);
///
/// impl KeyStore for One {
///     type Lookup = Ready<Result<Option<KeyRecord>, KeyStoreError>>;
///
///     fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
///         ready(Ok((*digest == self.0).then(|| KeyRecord::new(self.0))))
///     }
/// }
/// ```
pub trait KeyStore: Send + Sync + 'static {
    /// The future of one lookup.
    type Lookup: Future<Output = Result<Option<KeyRecord>, KeyStoreError>> + Send + 'static;

    /// The record whose digest is `digest`, `None` if there is none, or an error if the store
    /// cannot answer (the layer then answers 503 and counts no failure).
    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup;
}

impl<K: KeyStore> KeyStore for Arc<K> {
    type Lookup = K::Lookup;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        (**self).lookup(digest)
    }
}

/// A store could not answer a lookup. Its message goes to the operator's log, never to the
/// client.
#[derive(Debug)]
pub struct KeyStoreError {
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl KeyStoreError {
    /// An error with this message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        KeyStoreError {
            message: message.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What a store knows about one key: its digest, an optional label, expiry and revocation.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_shield::api_key::{KeyDigest, KeyRecord};
///
/// let record = KeyRecord::new(KeyDigest::from_bytes([1; 32]))
///     .label("ci-deploy")
///     .expires_at(SystemTime::now() + Duration::from_secs(90 * 24 * 3600));
/// assert!(record.is_usable_at(SystemTime::now()));
/// assert!(!record.clone().revoked(true).is_usable_at(SystemTime::now()));
/// ```
#[derive(Clone, Debug)]
pub struct KeyRecord {
    digest: KeyDigest,
    label: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    revoked: bool,
}

impl KeyRecord {
    /// A record of `digest`: no label, no expiry, not revoked.
    pub fn new(digest: KeyDigest) -> Self {
        KeyRecord {
            digest,
            label: None,
            expires_at: None,
            revoked: false,
        }
    }

    /// Names the key (an owner or purpose, never the key), for the
    /// [`Authenticated`](super::Authenticated) extension.
    pub fn label(mut self, label: impl Into<Arc<str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The instant after which the key is refused.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Marks the key revoked (refused) or not.
    pub fn revoked(mut self, revoked: bool) -> Self {
        self.revoked = revoked;
        self
    }

    /// The digest.
    pub fn digest(&self) -> &KeyDigest {
        &self.digest
    }

    /// The label, if any.
    pub fn label_str(&self) -> Option<&str> {
        self.label.as_deref()
    }

    pub(crate) fn label_arc(&self) -> Option<Arc<str>> {
        self.label.clone()
    }

    /// The expiry, if any.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the key is revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Whether the key is usable at `now`: not revoked and not expired (a key expires *at*
    /// its expiry).
    pub fn is_usable_at(&self, now: SystemTime) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| now < at)
    }
}

/// An in-memory [`KeyStore`], fed from `API_KEY_HASHES` or by hand; keys can be added,
/// revoked and removed while it serves.
///
/// A lookup compares the digest with *every* record in constant time and picks the match
/// without branching on the data, so its time depends only on how many keys there are. Meant
/// for the handful of keys an environment variable holds; use a database-backed store for
/// thousands.
///
/// ```
/// use tower_shield::api_key::{ApiKey, KeyPrefix, KeyStore, MemoryKeyStore};
///
/// let key = ApiKey::generate(&KeyPrefix::new("ech_")?)?;
/// let store = MemoryKeyStore::from_digests([key.sha256()]);
/// assert_eq!(store.len(), 1);
/// assert!(store.revoke(&key.sha256()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    records: RwLock<Vec<KeyRecord>>,
}

impl MemoryKeyStore {
    /// An empty store: every key is refused.
    pub fn new() -> Self {
        MemoryKeyStore::default()
    }

    /// A store of these digests, with no label, expiry or revocation.
    pub fn from_digests(digests: impl IntoIterator<Item = impl Into<KeyDigest>>) -> Self {
        let store = MemoryKeyStore::new();
        for d in digests {
            store.insert(KeyRecord::new(d.into()));
        }
        store
    }

    /// Adds `record`, replacing a record of the same digest.
    pub fn insert(&self, record: KeyRecord) {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        match records.iter_mut().find(|r| r.digest == record.digest) {
            Some(existing) => *existing = record,
            None => records.push(record),
        }
    }

    /// Marks the key of `digest` revoked; whether it was there.
    pub fn revoke(&self, digest: &KeyDigest) -> bool {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        match records.iter_mut().find(|r| r.digest == *digest) {
            Some(r) => {
                r.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Removes the key of `digest`; whether it was there.
    pub fn remove(&self, digest: &KeyDigest) -> bool {
        let mut records = self.records.write().unwrap_or_else(PoisonError::into_inner);
        let before = records.len();
        records.retain(|r| r.digest != *digest);
        records.len() != before
    }

    /// How many keys are held (revoked ones included).
    pub fn len(&self) -> usize {
        self.records
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of `digest`, found in time that depends only on the number of records.
    pub fn get(&self, digest: &KeyDigest) -> Option<KeyRecord> {
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        let mut index = 0u64;
        let mut found = subtle::Choice::from(0);
        for (i, r) in records.iter().enumerate() {
            let hit = r.digest.ct_eq(digest);
            index.conditional_assign(&(i as u64), hit);
            found |= hit;
        }
        let found: bool = found.into();
        found.then(|| records[index as usize].clone())
    }
}

impl KeyStore for MemoryKeyStore {
    type Lookup = Ready<Result<Option<KeyRecord>, KeyStoreError>>;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        ready(Ok(self.get(digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_digest_and_forgets() {
        let (a, b, c) = (
            KeyDigest::from_bytes([1; 32]),
            KeyDigest::from_bytes([2; 32]),
            KeyDigest::from_bytes([3; 32]),
        );
        let store = MemoryKeyStore::from_digests([a, b]);
        assert_eq!(store.get(&b).map(|r| *r.digest()), Some(b));
        assert_eq!(store.get(&a).map(|r| *r.digest()), Some(a));
        assert!(store.get(&c).is_none());
        store.insert(KeyRecord::new(a).label("x"));
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&a).unwrap().label_str(), Some("x"));
        assert!(store.revoke(&a));
        assert!(store.get(&a).unwrap().is_revoked());
        assert!(store.remove(&a));
        assert!(!store.remove(&a));
        assert!(store.get(&a).is_none());
    }
}
