//! What a shared store decides while it cannot answer.

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
