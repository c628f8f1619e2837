//! What a shared store decides while it cannot answer, and why it could not.

use std::time::Duration;

/// What a shared store (Redis) decides while it cannot be reached: the configuration's
/// `RATE_LIMIT_STORE_FAILURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StoreFailurePolicy {
    /// `fail-closed`: refuse every limited request until the store is back. Safest against
    /// abuse; an outage of the store becomes an outage of the API.
    FailClosed,
    /// `fail-open`: admit every request unlimited until the store is back. Keeps the API up;
    /// leaves it unprotected meanwhile.
    FailOpen,
    /// `local`: fall back to an in-memory store per process until the store is back. Limits
    /// stay in force, each process counting alone. The default.
    #[default]
    Local,
}

impl StoreFailurePolicy {
    /// Every policy, in the order of the variants.
    pub const ALL: [StoreFailurePolicy; 3] = [
        StoreFailurePolicy::FailClosed,
        StoreFailurePolicy::FailOpen,
        StoreFailurePolicy::Local,
    ];

    /// The policy's name in `RATE_LIMIT_STORE_FAILURE`.
    pub fn name(self) -> &'static str {
        match self {
            StoreFailurePolicy::FailClosed => "fail-closed",
            StoreFailurePolicy::FailOpen => "fail-open",
            StoreFailurePolicy::Local => "local",
        }
    }
}

/// Why a store call has no decision. What it means for a request (refuse, admit, or decide
/// locally) is the store's [`StoreFailurePolicy`] where it has one; a layer answers an error
/// with 503 and `Retry-After` ([`retry_after`](StoreError::retry_after), else 1 s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The circuit breaker is open after repeated failures: the store was not called.
    #[error("the Redis store is unavailable (circuit breaker open)")]
    Unavailable,
    /// The store did not answer within the per-call timeout.
    #[error("the Redis store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store answered with an error, or the connection failed.
    #[error("the Redis store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered something it cannot have meant.
    #[error("the Redis store answered unexpectedly: {0}")]
    Protocol(String),
    /// The store could not decide and its policy is [`StoreFailurePolicy::FailClosed`]:
    /// refuse, and expect the store back after `retry_after`.
    #[error("the store cannot decide and fails closed: {source}")]
    FailedClosed {
        /// When to expect the store back (a circuit breaker's cool-down).
        retry_after: Duration,
        /// Why it could not decide.
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// How long a refused client should wait before trying again, when the store knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StoreError::FailedClosed { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}
