//! Tower middleware for the security surface of a production HTTP API.
//!
//! `tower-shield` is a set of independent [tower] layers for any tower-based server (axum,
//! hyper, tonic…), and [`Shield`], which composes every layer a [`Config`] enables:
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_shield::{Config, Shield};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_lookup(|_| None)?; // in a server: Config::from_env()?
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(Shield::from_config(&config)?);
//!
//! let mut req = Request::get("/").body(axum::body::Body::empty())?;
//! req.extensions_mut().insert("203.0.113.9:50000".parse::<SocketAddr>()?);
//! let res = app.oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["ratelimit"], "\"ip\";r=59;t=1");
//! # Ok(())
//! # }
//! ```
//!
//! The layers, each usable alone:
//!
//! - [`rate_limit`]: policies per client IP, session, device, globally or by your own key,
//!   all-or-nothing, IETF `RateLimit` headers, problem+json 429s; in memory or on Redis.
//! - [`secure_headers`]: safe defaults, presets, a typed CSP with per-request nonces.
//! - [`cors`]: Fetch-exact CORS whose unsafe configurations do not build.
//! - [`sanitize`]: allow-list input validation of headers, queries and JSON bodies.
//! - [`security_log`]: request spans and one vocabulary of security events.
//! - [`api_key`]: API keys with a checksum, hashed storage and brute-force lockout.
//! - [`client_ip`]: who the client is, behind trusted proxies.
//! - [`limiter`]: the token-bucket (GCRA) core and its stores.
//!
//! [tower]: https://docs.rs/tower

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub mod api_key;
pub mod client_ip;
#[cfg(feature = "env")]
#[cfg_attr(docsrs, doc(cfg(feature = "env")))]
pub mod config;
#[cfg(feature = "cors")]
#[cfg_attr(docsrs, doc(cfg(feature = "cors")))]
pub mod cors;
mod error;
#[cfg(any(feature = "secure-headers", feature = "cors", feature = "rate-limit"))]
mod header_map;
#[cfg(any(feature = "secure-headers", feature = "cors"))]
mod host;
#[cfg(any(feature = "rate-limit", feature = "security-log"))]
mod identifier;
pub mod limiter;
pub mod problem;
#[cfg(feature = "rate-limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
pub mod rate_limit;
pub mod route;
#[cfg(feature = "sanitize")]
#[cfg_attr(docsrs, doc(cfg(feature = "sanitize")))]
pub mod sanitize;
mod secret;
#[cfg(feature = "secure-headers")]
#[cfg_attr(docsrs, doc(cfg(feature = "secure-headers")))]
pub mod secure_headers;
#[cfg(feature = "security-log")]
#[cfg_attr(docsrs, doc(cfg(feature = "security-log")))]
pub mod security_log;
#[cfg(feature = "shield")]
#[cfg_attr(docsrs, doc(cfg(feature = "shield")))]
pub mod shield;

#[cfg(feature = "env")]
#[cfg_attr(docsrs, doc(cfg(feature = "env")))]
pub use config::Config;
pub use error::{ConfigError, ConfigProblem};
#[cfg(any(feature = "rate-limit", feature = "security-log"))]
pub use identifier::DEVICE_ID_HEADER;
pub use secret::SecretKey;
#[cfg(feature = "shield")]
#[cfg_attr(docsrs, doc(cfg(feature = "shield")))]
pub use shield::{Shield, ShieldLayer};

/// The README's examples, compiled and run as doctests so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
