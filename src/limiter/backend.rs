//! The one store trait: what the rate limit and the API-key lockout ask of any store.

use std::future::{Future, Ready, ready};
use std::sync::Arc;

use super::gcra::Decision;
use super::{Check, Clock, Key, KeyHasher, MemoryStore, StoreError, Verdict};

/// A keyed token-bucket store the layers can keep their limits in: [`MemoryStore`] (this
/// process), [`RedisStore`](super::RedisStore) (feature `redis`, shared by every instance),
/// [`EitherStore`](super::EitherStore) (one of them, chosen at run time), or your own (another
/// database), in the spirit of governor's `StateStore`.
///
/// Every method answers with a future. An in-memory store answers with one that is already
/// [`Ready`]; the rate limit polls the future once when it is made and, when it is ready,
/// decides and calls the inner service at once, with no allocation and no clone. A store
/// that must wait (a network round trip) returns a pending future; the request then waits
/// in the response future. Futures must be `Unpin` for that first poll: box an `async` block
/// (`Pin<Box<dyn Future<…> + Send>>`).
///
/// # Keys and tags
///
/// A bucket is named by a *tag* and a [`Key`]: `(tag, key)` and `(tag', key)` are different
/// buckets. The tag groups the keys of one client, so a store that spreads keys over nodes
/// (a Redis Cluster) can keep one call's keys together; [`Key::GLOBAL`] as the tag means no
/// grouping. A store may keep `(Key::GLOBAL, key)` as `key` itself, as [`MemoryStore`] does,
/// so that its inherent methods and the trait's agree on untagged keys.
///
/// # Failure
///
/// A store that cannot decide answers `Err`. The layers refuse such a request with 503 and
/// `Retry-After` (the error's [`retry_after`](StoreError::retry_after), else 1 s). Whether to
/// admit instead, or decide locally, is the store's own policy (see
/// [`StoreFailurePolicy`](super::StoreFailurePolicy)): it answers `Ok` then, with
/// [`Verdict::UNLIMITED`] to admit without limits.
///
/// # Bring your own store
///
/// A store that counts its calls around a [`MemoryStore`], and waits for nothing:
///
/// ```
/// use std::future::{Ready, ready};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tower_shield::limiter::{
///     Check, Decisions, Key, KeyHasher, LimiterStore, MemoryStore, Quota, StoreError, Verdict,
/// };
///
/// struct Counted {
///     inner: MemoryStore,
///     calls: AtomicU64,
/// }
///
/// impl LimiterStore for Counted {
///     type CheckFuture = Ready<Result<Verdict, StoreError>>;
///     type PeekFuture = Ready<Result<Decisions, StoreError>>;
///     type ResetFuture = Ready<Result<bool, StoreError>>;
///
///     fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
///         self.calls.fetch_add(1, Ordering::Relaxed);
///         self.inner.check_in(tag, checks)
///     }
///     fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
///         self.inner.peek_in(tag, checks)
///     }
///     fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
///         self.inner.reset_in(tag, key)
///     }
///     fn key_hasher(&self) -> &KeyHasher {
///         self.inner.key_hasher()
///     }
/// }
///
/// let store = Arc::new(Counted { inner: MemoryStore::builder().build()?, calls: AtomicU64::new(0) });
/// let quota = Quota::per_minute(2)?;
/// let client = store.key_hasher().hash(b"client");
/// let verdict = store.check_in(Key::GLOBAL, &[Check::new(client, &quota)]).into_inner()?;
/// assert_eq!(verdict.binding.remaining(), 1);
/// assert_eq!(store.calls.load(Ordering::Relaxed), 1);
/// // … and `RateLimit::builder().store(store)` keeps a layer's limits in it.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `tests/custom_store.rs` drives the rate limit and the API-key lockout on a store whose
/// answers are not ready at once.
pub trait LimiterStore: Send + Sync + 'static {
    /// The answer of [`check_in`](Self::check_in).
    type CheckFuture: Future<Output = Result<Verdict, StoreError>> + Send + Unpin + 'static;
    /// The answer of [`peek_in`](Self::peek_in).
    type PeekFuture: Future<Output = Result<Decisions, StoreError>> + Send + Unpin + 'static;
    /// The answer of [`reset_in`](Self::reset_in).
    type ResetFuture: Future<Output = Result<bool, StoreError>> + Send + Unpin + 'static;

    /// Checks every (key, quota, cost) of `checks` under `tag` at one instant and charges all
    /// of them only if every one is admitted, as [`MemoryStore::check_all`] does (the same
    /// binding decision and index).
    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture;

    /// What each check would decide now, charging nothing: one decision per check, in order.
    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture;

    /// Forgets `key` under `tag`, so its next check sees a full bucket; whether it was held.
    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture;

    /// How this store's users turn identifiers and policy names into keys.
    fn key_hasher(&self) -> &KeyHasher;
}

impl<T: LimiterStore> LimiterStore for Arc<T> {
    type CheckFuture = T::CheckFuture;
    type PeekFuture = T::PeekFuture;
    type ResetFuture = T::ResetFuture;

    #[inline]
    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
        (**self).check_in(tag, checks)
    }

    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
        (**self).peek_in(tag, checks)
    }

    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
        (**self).reset_in(tag, key)
    }

    fn key_hasher(&self) -> &KeyHasher {
        (**self).key_hasher()
    }
}

/// The decisions of a [`peek_in`](LimiterStore::peek_in), one per check; up to four are held
/// without a heap allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    inline: [Option<Decision>; 4],
    spilled: Vec<Decision>,
    len: usize,
}

impl Decisions {
    /// No decision yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the decision of the next check.
    pub fn push(&mut self, decision: Decision) {
        if self.len < self.inline.len() && self.spilled.is_empty() {
            self.inline[self.len] = Some(decision);
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend(self.inline.iter().flatten().copied());
            }
            self.spilled.push(decision);
        }
        self.len += 1;
    }

    /// The decision of the check at `index`.
    pub fn get(&self, index: usize) -> Option<Decision> {
        if self.spilled.is_empty() {
            self.inline.get(index).copied().flatten()
        } else {
            self.spilled.get(index).copied()
        }
    }

    /// How many decisions there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromIterator<Decision> for Decisions {
    fn from_iter<I: IntoIterator<Item = Decision>>(iter: I) -> Self {
        let mut decisions = Decisions::new();
        for d in iter {
            decisions.push(d);
        }
        decisions
    }
}

/// Mixes a tag into a key, so that one key under two tags names two buckets; no tag
/// ([`Key::GLOBAL`]) leaves the key as it is.
#[inline]
pub(crate) fn tagged(tag: Key, key: Key) -> Key {
    if tag == Key::GLOBAL {
        return key;
    }
    // An odd multiplier is a bijection of u128: distinct tags move a key to distinct places.
    const MIX: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
    Key::from_u128(key.to_u128() ^ tag.to_u128().wrapping_mul(MIX))
}

impl<C: Clock> LimiterStore for MemoryStore<C> {
    type CheckFuture = Ready<Result<Verdict, StoreError>>;
    type PeekFuture = Ready<Result<Decisions, StoreError>>;
    type ResetFuture = Ready<Result<bool, StoreError>>;

    #[inline]
    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
        ready(Ok(self.check_tagged(tag, checks)))
    }

    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
        ready(Ok(checks
            .iter()
            .map(|c| self.peek(tagged(tag, c.key), c.quota, c.cost))
            .collect()))
    }

    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
        ready(Ok(self.reset(tagged(tag, key))))
    }

    fn key_hasher(&self) -> &KeyHasher {
        MemoryStore::key_hasher(self)
    }
}

impl<C: Clock> MemoryStore<C> {
    /// [`check_all`](Self::check_all) under `tag`, synchronously: the trait's answer.
    #[inline]
    pub(crate) fn check_tagged(&self, tag: Key, checks: &[Check<'_>]) -> Verdict {
        match checks {
            [] => Verdict::UNLIMITED,
            // One check, the common case: no all-or-nothing bookkeeping.
            [c] => Verdict {
                binding: self.check_n(tagged(tag, c.key), c.quota, c.cost),
                index: 0,
            },
            _ if tag == Key::GLOBAL => self.check_all(checks),
            _ => {
                let mut inline = [Check::new(Key::GLOBAL, checks[0].quota); 8];
                if checks.len() <= inline.len() {
                    for (slot, c) in inline.iter_mut().zip(checks) {
                        *slot = Check {
                            key: tagged(tag, c.key),
                            ..*c
                        };
                    }
                    self.check_all(&inline[..checks.len()])
                } else {
                    let moved: Vec<_> = checks
                        .iter()
                        .map(|c| Check {
                            key: tagged(tag, c.key),
                            ..*c
                        })
                        .collect();
                    self.check_all(&moved)
                }
            }
        }
    }
}
