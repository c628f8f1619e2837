//! Where a layer's limits may be kept, as a type: it decides what the layer's service asks of
//! the service it wraps, so that turning on feature `redis` changes no bound.
//!
//! Limits kept in this process are decided before the inner service is called, in `call`. Limits
//! kept in Redis are decided when Redis answers, after `call` has returned: the service that
//! was polled ready must go with the response future, and the request with it. A layer that
//! may use Redis ([`Shareable`]) therefore needs the inner service to be `Clone + Send +
//! 'static`, and the request body `Send + 'static`; one that cannot ([`InMemory`]) needs
//! nothing more than any tower middleware.
//!
//! Which one a layer is comes from how it was built, never from the features compiled in:
//! [`RateLimit::builder`](super::RateLimit::builder) makes an [`InMemory`] layer,
//! [`RateLimitBuilder::redis`](super::RateLimitBuilder::redis) (feature `redis`) and
//! the configuration adapter (`Config::rate_limit_builder`) make a [`Shareable`] one. The
//! configured layer is [`Shareable`] in every build: `REDIS_URL` chooses the store at run time,
//! and a bound that appeared with the feature would break a crate that never asked for it once
//! something else in its dependency graph turns `redis` on.
//!
//! An in-memory layer wraps a service that is neither `Clone` nor `Send`, in every build:
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use std::rc::Rc;
//! use http::{Request, Response, StatusCode};
//! use tower::util::UnsyncBoxService;
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_shield::limiter::Quota;
//! use tower_shield::rate_limit::{Policy, RateLimit, Scope};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let this_thread_only = Rc::new("ok");
//! let handler = UnsyncBoxService::new(service_fn(move |_req: Request<String>| {
//!     let body = this_thread_only.to_string();
//!     async move { Ok::<_, Infallible>(Response::new(body)) }
//! }));
//! let layer = RateLimit::builder()
//!     .policy(Policy::new("ip", Quota::per_minute(60)?, Scope::ip()))
//!     .build()?;
//! let mut req = Request::get("/").body(String::new())?;
//! req.extensions_mut().insert("192.0.2.1:1".parse::<SocketAddr>()?);
//! let res = layer.layer(handler).oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! The configured layer does not, with or without feature `redis`:
//!
//! ```compile_fail
//! # use std::convert::Infallible;
//! # use std::rc::Rc;
//! # use http::{Request, Response};
//! # use tower::util::UnsyncBoxService;
//! # use tower::{Layer, ServiceExt, service_fn};
//! # use tower_shield::Config;
//! # use tower_shield::rate_limit::RateLimit;
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! # let this_thread_only = Rc::new("ok");
//! # let handler = UnsyncBoxService::new(service_fn(move |_req: Request<String>| {
//! #     let body = this_thread_only.to_string();
//! #     async move { Ok::<_, Infallible>(Response::new(body)) }
//! # }));
//! let config = Config::from_lookup(|_| None)?;
//! let layer = config.rate_limit_builder()?.expect("on by default").build()?;
//! // error: `UnsyncBoxService` is neither `Clone` nor `Send`
//! let res = layer.layer(handler).oneshot(Request::new(String::new())).await?;
//! # Ok(())
//! # }
//! ```

/// A place to keep limits: [`InMemory`] or [`Shareable`].
pub trait Backing: sealed::Sealed + Clone + Copy + std::fmt::Debug + Send + Sync + 'static {}

/// Limits kept in this process only. The service asks nothing more of the inner service.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemory;

/// Limits that may be kept in Redis, chosen when the layer is built. The inner service must be
/// `Clone + Send + 'static` and the request body `Send + 'static`, with or without feature
/// `redis`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shareable;

impl Backing for InMemory {}
impl Backing for Shareable {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::InMemory {}
    impl Sealed for super::Shareable {}
}
