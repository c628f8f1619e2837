//! Tower middleware for the security surface of a production HTTP API.
//!
//! `tower-shield` is a set of independent [tower] layers for any tower-based server (axum,
//! hyper, tonic…). This release holds the foundation every layer stands on:
//!
//! - [`limiter`]: the token-bucket (GCRA) core: [`Quota`](limiter::Quota), exact
//!   [`Decision`](limiter::Decision)s, weighted and all-or-nothing checks, and a sharded
//!   in-memory store with a hard key cap.
//! - [`Config`]: the EchoTuner environment variables, parsed and checked at start-up, every
//!   bad value reported by name.
//!
//! ```
//! use tower_shield::limiter::{Key, MemoryStore, Quota};
//!
//! let store = MemoryStore::builder().build()?;
//! let quota = Quota::per_minute(60)?;
//! assert!(store.check(Key::GLOBAL, &quota).is_allowed());
//! # Ok::<(), tower_shield::ConfigError>(())
//! ```
//!
//! [tower]: https://docs.rs/tower

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "api-key")]
pub mod api_key;
pub mod client_ip;
pub mod config;
#[cfg(feature = "cors")]
pub mod cors;
mod error;
mod identifier;
pub mod limiter;
pub mod problem;
#[cfg(feature = "rate-limit")]
pub mod rate_limit;
pub mod route;
#[cfg(feature = "sanitize")]
pub mod sanitize;
#[cfg(feature = "secure-headers")]
pub mod secure_headers;
#[cfg(feature = "security-log")]
pub mod security_log;
#[cfg(all(
    feature = "rate-limit",
    feature = "secure-headers",
    feature = "cors",
    feature = "sanitize",
    feature = "security-log"
))]
pub mod shield;

pub use config::Config;
pub use error::{ConfigError, ConfigProblem};
#[cfg(all(
    feature = "rate-limit",
    feature = "secure-headers",
    feature = "cors",
    feature = "sanitize",
    feature = "security-log"
))]
pub use shield::{Shield, ShieldLayer};

/// The README's examples, compiled and run as doctests so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
