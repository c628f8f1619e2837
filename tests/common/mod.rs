//! Scaffolding shared by the integration-test binaries: a `Config` from a list of variables,
//! requests and the calls that send them, a `tracing` subscriber that keeps every event, and
//! (in [`alloc`]) a counting global allocator. Each binary uses a subset.
#![allow(dead_code)]

pub mod alloc;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use tower::{Service, ServiceExt};
#[cfg(feature = "env")]
use tower_shield::{Config, ConfigError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The configuration of exactly these (variable, value) pairs, as `Config::from_lookup` reads
/// them.
#[cfg(feature = "env")]
pub fn try_config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    })
}

/// [`try_config`] of variables that must be accepted.
#[cfg(feature = "env")]
pub fn config(vars: &[(&str, &str)]) -> Config {
    match try_config(vars) {
        Ok(config) => config,
        Err(e) => panic!("{vars:?} should be accepted, got: {e}"),
    }
}

/// A request with an empty body from `peer` (its address in the extensions, as axum's
/// `ConnectInfo` or hyper would put it), with these header fields.
pub fn req(method: Method, path: &str, peer: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut r = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    let mut r = r.body(String::new()).unwrap();
    r.extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    r
}

/// The response of a clone of `service` (clones share their state) to `req`.
pub async fn send<S, R>(service: &S, req: R) -> S::Response
where
    S: Service<R> + Clone,
    S::Error: fmt::Debug,
{
    service.clone().oneshot(req).await.unwrap()
}

/// The whole body of `res`.
pub async fn body_bytes<B>(res: Response<B>) -> Bytes
where
    B: http_body::Body,
    B::Error: fmt::Debug,
{
    res.into_body().collect().await.unwrap().to_bytes()
}

/// The whole body of `res`, which must be UTF-8.
pub async fn body<B>(res: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: fmt::Debug,
{
    String::from_utf8(body_bytes(res).await.to_vec()).unwrap()
}

/// The whole body of `res`, which must be JSON.
pub async fn body_json<B>(res: Response<B>) -> serde_json::Value
where
    B: http_body::Body,
    B::Error: fmt::Debug,
{
    serde_json::from_slice(&body_bytes(res).await).unwrap()
}

/// Runs `f` to its end on a new current-thread runtime (time and I/O enabled).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One event as the subscriber saw it: its target and its fields in order, as
/// (name, value) pairs.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub target: String,
    /// `&str` values as they are, every other value through `Debug`.
    pub fields: Vec<(String, String)>,
}

impl Captured {
    /// The value of the first field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Records each field into any (name, value) collection: a `Vec` keeps every pair in order, a
/// map keeps the last value recorded for each name.
pub struct FieldVisitor<'a, C>(pub &'a mut C);

impl<C: Extend<(String, String)>> Visit for FieldVisitor<'_, C> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.extend([(field.name().to_owned(), value.to_owned())]);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .extend([(field.name().to_owned(), format!("{value:?}"))]);
    }
}

/// A minimal subscriber that keeps every event (spans are accepted and ignored). Clones share
/// the same events.
#[derive(Clone, Default)]
pub struct CaptureSubscriber(Arc<Mutex<Vec<Captured>>>);

impl CaptureSubscriber {
    /// The events seen so far, oldest first.
    pub fn events(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }
}

impl Subscriber for CaptureSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut c = Captured {
            target: event.metadata().target().to_owned(),
            fields: Vec::new(),
        };
        event.record(&mut FieldVisitor(&mut c.fields));
        self.0.lock().unwrap().push(c);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` with only a [`CaptureSubscriber`] listening on this thread; its output and the
/// events it emitted.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Captured>) {
    let subscriber = CaptureSubscriber::default();
    let out = tracing::subscriber::with_default(subscriber.clone(), f);
    (out, subscriber.events())
}

/// [`capture`] of a future, run to its end on a current-thread runtime.
pub fn capture_async<F: Future>(f: F) -> (F::Output, Vec<Captured>) {
    capture(|| block_on(f))
}

/// The captured events whose `event` field is `name`.
pub fn named<'e>(events: &'e [Captured], name: &str) -> Vec<&'e Captured> {
    events
        .iter()
        .filter(|e| e.field("event") == Some(name))
        .collect()
}

/// The Redis server the tests use (`.ci/run` starts it when nothing answers there).
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// A plain connection to [`REDIS_URL`], to look at or change keys behind a store's back.
#[cfg(feature = "redis")]
pub async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis-server must run on 127.0.0.1:6379 for these tests")
}

/// A Redis store of which every call fails within `timeout`: nothing listens on port 1.
#[cfg(feature = "redis")]
pub fn dead_redis(timeout: std::time::Duration) -> tower_shield::limiter::RedisStore {
    tower_shield::limiter::RedisStore::builder("redis://127.0.0.1:1/")
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A Redis key prefix no other test (nor an earlier run) uses: `test` plus the process, the
/// time and a counter.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test:{}:{nanos}:{}:{test}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
