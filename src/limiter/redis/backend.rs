//! What every layer that keeps its state in Redis shares: the store, the policy for when it
//! cannot answer, and the count and episodes of the decisions made without it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::RedisStore;
use crate::limiter::StoreFailurePolicy;

/// A layer's Redis store and what to do while it cannot answer.
pub(crate) struct RedisBackend {
    pub(crate) store: RedisStore,
    pub(crate) on_failure: StoreFailurePolicy,
    /// Whether a degraded episode is under way (and so has been logged).
    episode: AtomicBool,
    degraded: AtomicU64,
}

impl RedisBackend {
    pub(crate) fn new(store: RedisStore, on_failure: StoreFailurePolicy) -> Self {
        RedisBackend {
            store,
            on_failure,
            episode: AtomicBool::new(false),
            degraded: AtomicU64::new(0),
        }
    }

    /// Redis answered: the degraded episode, if any, is over.
    pub(crate) fn answered(&self) {
        // A load first: the common case writes nothing to the shared cache line.
        if self.episode.load(Relaxed) {
            self.episode.store(false, Relaxed);
        }
    }

    /// Counts a decision made without Redis; whether it opens a degraded episode, the one
    /// decision of the episode to log, so an outage is one log record and not one per request.
    #[must_use = "the first degraded decision of an episode is to be logged"]
    pub(crate) fn degraded(&self) -> bool {
        self.degraded.fetch_add(1, Relaxed);
        !self.episode.swap(true, Relaxed)
    }

    /// How many decisions were made without Redis.
    pub(crate) fn degraded_decisions(&self) -> u64 {
        self.degraded.load(Relaxed)
    }
}
