//! The token-bucket core: quotas, GCRA decisions and a keyed in-memory store. No HTTP here.
//!
//! Every limit in tower-shield is a [`Quota`] ("10 per 300 s") checked for a [`Key`] (a client
//! address, a hashed device id…) in a store. A check reads the store's [`Clock`] once and
//! returns a [`Decision`] computed from one snapshot of the key's state: admitted or not, the
//! limit, what remains, when the bucket is full again and, when refused, exactly how long to
//! wait.
//!
//! ```
//! use std::time::Duration;
//! use tower_shield::limiter::{Key, ManualClock, MemoryStore, Quota};
//!
//! // The EchoTuner guide's limit for playlist generation: 10 per 300 s per device.
//! let generate = Quota::per(10, Duration::from_secs(300))?;
//! let clock = ManualClock::new();
//! let store = MemoryStore::builder().max_keys(100_000).clock(clock.clone()).build()?;
//! let device = store.key_hasher().hash(b"device-7f3a");
//!
//! for _ in 0..10 {
//!     assert!(store.check(device, &generate).is_allowed());
//! }
//! let refused = store.check(device, &generate);
//! assert!(!refused.is_allowed());
//! assert_eq!(refused.retry_after(), Some(Duration::from_secs(30)));
//!
//! clock.advance(Duration::from_secs(30));
//! assert!(store.check(device, &generate).is_allowed());
//! # Ok::<(), tower_shield::ConfigError>(())
//! ```
//!
//! # How it works
//!
//! The state of a key is one 64-bit *theoretical arrival time* (TAT) in integer nanoseconds:
//! the instant its bucket is full again ([GCRA]). A key whose TAT has passed holds no
//! information, so the store may drop it without changing any decision; the store uses that
//! to stay under a hard `max_keys` cap without a background thread. See [`MemoryStore`].
//!
//! # One store trait
//!
//! The layers keep their limits in any [`LimiterStore`]: [`MemoryStore`] in this process,
//! [`RedisStore`] (feature `redis`) shared by every instance, [`EitherStore`] for one chosen at
//! run time, or a store of your own. A store answers with a future; the in-memory one's is
//! ready at once, so a layer on it decides synchronously, without allocating:
//!
//! ```
//! use std::sync::Arc;
//! use tower_shield::limiter::{Check, Key, LimiterStore, MemoryStore, Quota};
//! use tower_shield::rate_limit::{Policy, RateLimit, Scope};
//!
//! let store = Arc::new(MemoryStore::builder().build()?);
//! let login = Quota::per_minute(5)?;
//! let client = store.key_hasher().hash(b"client");
//! // Through the trait, as a layer asks: every check of a request at once, under a tag.
//! let verdict = store.check_in(client, &[Check::new(client, &login)]).into_inner()?;
//! assert_eq!(verdict.binding.remaining(), 4);
//! // A rate limit (and an API-key lockout) kept in the same store.
//! let layer = RateLimit::builder()
//!     .store(store.clone())
//!     .policy(Policy::new("login", login, Scope::ip()))
//!     .build()?;
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [GCRA]: https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm

mod backend;
mod clock;
mod either;
mod failure;
mod gcra;
mod key;
mod quota;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod table;

#[cfg(feature = "redis")]
pub(crate) use backend::tagged;
pub use backend::{Decisions, LimiterStore};
pub use clock::{Clock, ManualClock, MonotonicClock, QuantaClock};
pub use either::{EitherFuture, EitherStore};
pub use failure::{StoreError, StoreFailurePolicy};
pub use gcra::Decision;
pub use key::{Key, KeyHasher, Namespace};
pub use quota::Quota;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{GCRA_LUA, RedisStore, RedisStoreBuilder};
pub use store::{Check, Evictions, MemoryStore, MemoryStoreBuilder, Verdict};
