//! One store type for a store chosen at run time (`REDIS_URL` set or not).

use std::future::{Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Check, Decisions, Key, KeyHasher, LimiterStore, MemoryStore, StoreError, Verdict};

/// A [`MemoryStore`] or (feature `redis`) a [`RedisStore`](super::RedisStore), chosen at run
/// time: the store of a layer whose type must not depend on the configuration, such as the
/// [`Shield`](crate::Shield)'s rate limit. Answers as the store it holds does; the in-memory
/// one's answers are ready at once.
///
/// ```
/// use std::sync::Arc;
/// use tower_shield::limiter::{EitherStore, MemoryStore};
///
/// let store = EitherStore::from(Arc::new(MemoryStore::builder().build()?));
/// assert!(store.memory().is_some());
/// # Ok::<(), tower_shield::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EitherStore {
    /// Limits kept in this process.
    Memory(Arc<MemoryStore>),
    /// Limits kept in Redis, shared by every instance.
    #[cfg(feature = "redis")]
    Redis(super::RedisStore),
}

impl EitherStore {
    /// The in-memory store, when this is one.
    pub fn memory(&self) -> Option<&Arc<MemoryStore>> {
        match self {
            EitherStore::Memory(store) => Some(store),
            #[cfg(feature = "redis")]
            EitherStore::Redis(_) => None,
        }
    }

    /// The Redis store, when this is one.
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Option<&super::RedisStore> {
        match self {
            EitherStore::Redis(store) => Some(store),
            EitherStore::Memory(_) => None,
        }
    }
}

impl From<Arc<MemoryStore>> for EitherStore {
    fn from(store: Arc<MemoryStore>) -> Self {
        EitherStore::Memory(store)
    }
}

impl From<Arc<EitherStore>> for EitherStore {
    fn from(store: Arc<EitherStore>) -> Self {
        EitherStore::clone(&store)
    }
}

impl From<MemoryStore> for EitherStore {
    fn from(store: MemoryStore) -> Self {
        EitherStore::Memory(Arc::new(store))
    }
}

#[cfg(feature = "redis")]
impl From<Arc<super::RedisStore>> for EitherStore {
    fn from(store: Arc<super::RedisStore>) -> Self {
        // Clones share the connection, breaker and counters.
        EitherStore::Redis(super::RedisStore::clone(&store))
    }
}

#[cfg(feature = "redis")]
impl From<super::RedisStore> for EitherStore {
    fn from(store: super::RedisStore) -> Self {
        EitherStore::Redis(store)
    }
}

/// The answer of an [`EitherStore`]: ready at once from memory, or the Redis store's future.
#[derive(Debug)]
pub struct EitherFuture<T> {
    kind: Answer<T>,
}

enum Answer<T> {
    Ready(Ready<Result<T, StoreError>>),
    #[cfg(feature = "redis")]
    Waiting(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>),
}

impl<T> std::fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ready(_) => f.write_str("Ready"),
            #[cfg(feature = "redis")]
            Answer::Waiting(_) => f.write_str("Waiting"),
        }
    }
}

impl<T> Future for EitherFuture<T> {
    type Output = Result<T, StoreError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.kind {
            Answer::Ready(ready) => Pin::new(ready).poll(cx),
            #[cfg(feature = "redis")]
            Answer::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

macro_rules! either {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            EitherStore::Memory($store) => EitherFuture {
                kind: Answer::Ready($call),
            },
            #[cfg(feature = "redis")]
            EitherStore::Redis($store) => EitherFuture {
                kind: Answer::Waiting($call),
            },
        }
    };
}

impl LimiterStore for EitherStore {
    type CheckFuture = EitherFuture<Verdict>;
    type PeekFuture = EitherFuture<Decisions>;
    type ResetFuture = EitherFuture<bool>;

    #[inline]
    fn check_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::CheckFuture {
        either!(self, store => store.check_in(tag, checks))
    }

    fn peek_in(&self, tag: Key, checks: &[Check<'_>]) -> Self::PeekFuture {
        either!(self, store => store.peek_in(tag, checks))
    }

    fn reset_in(&self, tag: Key, key: Key) -> Self::ResetFuture {
        either!(self, store => store.reset_in(tag, key))
    }

    fn key_hasher(&self) -> &KeyHasher {
        match self {
            EitherStore::Memory(store) => store.key_hasher(),
            #[cfg(feature = "redis")]
            EitherStore::Redis(store) => LimiterStore::key_hasher(store),
        }
    }
}
