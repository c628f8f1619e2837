//! API keys: generate, parse, hash and verify them; require one with [`RequireApiKey`], with
//! a lockout after repeated failures.
//!
//! # Keys
//!
//! An [`ApiKey`] is a prefix of your choosing (`ech_` in these examples) + 43 random base62
//! characters (256 bits from the operating
//! system's CSPRNG) + a 6-character CRC32 checksum, GitHub's token format:
//! `ech_3kTq…Zr0aQ1bC`. The prefix makes leaked keys easy to find ([`KeyPrefix::regex`] is the
//! pattern to give secret scanners); the checksum lets the server refuse a mistyped,
//! truncated or made-up key before it hashes or looks anything up. The checksum is not a
//! secret and not a MAC: anyone can compute one, and it only saves work.
//!
//! The server stores only a digest: SHA-256 of the whole key string, exactly as the
//! EchoTuner guide stores `API_KEY_HASHES` (`hashlib.sha256(key.encode()).hexdigest()`), so
//! existing hashes keep working; or, with a pepper, HMAC-SHA-256 ([`KeyHasher`]). Digests are
//! compared as fixed 32-byte values in constant time, never with `==` on strings as the
//! guide's sketch does.
//!
//! Keys made by other means (the guide's `secrets.token_urlsafe`) have no checksum: give
//! them out again as keys of this format, since [`RequireApiKey`] refuses anything else.
//!
//! # The layer
//!
//! [`RequireApiKey`] reads the key from `Authorization: Bearer <key>` or `X-API-Key: <key>`
//! and:
//!
//! 1. refuses a client that is locked out with `429 Too Many Requests` and `Retry-After`,
//!    whatever key it sends (even the right one) until the lock ends;
//! 2. refuses a request with no key with `401` and `WWW-Authenticate: Bearer realm="api"`;
//! 3. refuses a malformed key (prefix, length, alphabet, checksum) with the same `401`,
//!    without hashing it;
//! 4. looks the digest up in a [`KeyStore`] ([`MemoryKeyStore`] holds `API_KEY_HASHES`);
//!    an unknown, revoked or expired key is refused with the same `401`;
//! 5. on success inserts an [`Authenticated`] request extension (the key's digest prefix,
//!    never the key) and calls the inner service.
//!
//! Every malformed, unknown, revoked or expired key counts as a failed attempt of the client
//! (its address, IPv6 grouped by /64). `MAX_AUTH_ATTEMPTS` failures within
//! `AUTH_ATTEMPT_TIMEOUT` lock the client out for `AUTH_ATTEMPT_TIMEOUT`; a success resets
//! the count. The lockout ([`Lockout`]) is two token buckets in a
//! [`LimiterStore`], a [`MemoryStore`] of its own by default; the store can be the rate
//! limiter's, and, behind several instances, in Redis (see
//! [below](#behind-several-instances-the-lockout-on-redis)).
//!
//! Every attempt emits one `tracing` event with target `tower_shield::security`,
//! `event = "auth_attempt"`, `success`, `owasp` (`authn_login_success`, `authn_login_fail`,
//! `authn_login_lock`), `reason`, `client_ip` and `key_id` (the first 8 hex digits of the
//! digest; never the key).
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode, header};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_shield::api_key::{ApiKey, Authenticated, KeyPrefix, MemoryKeyStore, RequireApiKey};
//! use tower_shield::client_ip::PeerAddr;
//!
//! // `cargo run --example keygen` prints a key and its hash; the hash goes in API_KEY_HASHES.
//! let prefix = KeyPrefix::new("ech_")?;
//! let key = ApiKey::generate(&prefix)?;
//! let layer = RequireApiKey::builder(prefix.clone(), MemoryKeyStore::from_digests([key.sha256()]))
//!     .lockout(5, std::time::Duration::from_secs(300))
//!     .build()?;
//!
//! let app = ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<String>| async move {
//!     let who = req.extensions().get::<Authenticated>().map(|a| a.key_id().to_string());
//!     Ok::<_, Infallible>(Response::new(who.unwrap_or_default()))
//! }));
//!
//! let request = |key: Option<&str>| {
//!     let mut builder = Request::get("/admin/rate-limits");
//!     if let Some(key) = key {
//!         builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
//!     }
//!     let mut req = builder.body(String::new()).unwrap();
//!     req.extensions_mut().insert(PeerAddr("203.0.113.9:4711".parse::<SocketAddr>().unwrap()));
//!     req
//! };
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let ok = app.clone().oneshot(request(Some(key.expose_secret()))).await.unwrap();
//!     assert_eq!(ok.status(), StatusCode::OK);
//!
//!     let missing = app.clone().oneshot(request(None)).await.unwrap();
//!     assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
//!     assert_eq!(missing.headers()[header::WWW_AUTHENTICATE], r#"Bearer realm="api""#);
//!
//!     // five wrong keys, then even the right key is refused for AUTH_ATTEMPT_TIMEOUT
//!     for _ in 0..5 {
//!         let other = ApiKey::generate(&prefix).unwrap();
//!         let wrong = app.clone().oneshot(request(Some(other.expose_secret()))).await.unwrap();
//!         assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
//!     }
//!     let locked = app.clone().oneshot(request(Some(key.expose_secret()))).await.unwrap();
//!     assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
//!     assert_eq!(locked.headers()[header::RETRY_AFTER], "300");
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Behind several instances: the lockout on Redis
//!
//! Each instance's in-memory lockout counts alone, so behind a load balancer a client gets
//! `MAX_AUTH_ATTEMPTS` guesses per instance. With feature `redis`,
//! [`RequireApiKeyBuilder::limiter_store`] given a [`RedisStore`](crate::limiter::RedisStore)
//! keeps the same two buckets, with the same decisions, in Redis: every instance on the same
//! Redis and key prefix shares one count and one lock per client, and the store can be the
//! rate limiter's. The bucket names do not depend on the store's secret.
//!
//! While Redis cannot answer, the store's
//! [`StoreFailurePolicy`](crate::limiter::StoreFailurePolicy) decides: `fail-closed` answers
//! 503 problem+json, `fail-open` still verifies keys but counts nothing, `local` counts in the
//! store's in-memory fallback until Redis answers again; the store's timeout and circuit
//! breaker keep every attempt short, and the store logs one `rate_limit_store_degraded` event
//! per episode.
//!
//! Every attempt, a valid key included, then costs one Redis round trip (an `EVALSHA` that
//! reads the lock and the failure count together) before the key is checked, since a
//! locked-out client is refused whatever key it sends, exactly as in memory. A failure costs
//! one more (three for the failure that locks); a success costs a second one (`DEL`) only
//! when there are failures to forget.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn build() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower_shield::api_key::{KeyPrefix, MemoryKeyStore, RequireApiKey};
//! use tower_shield::limiter::{RedisStore, StoreFailurePolicy};
//!
//! // Validates the URL only: start-up does not need Redis to be up.
//! let store = RedisStore::builder("redis://127.0.0.1:6379/")
//!     .key_prefix("echotuner:")
//!     .on_failure(StoreFailurePolicy::Local)
//!     .build()?;
//! let layer = RequireApiKey::builder(KeyPrefix::new("ech_")?, MemoryKeyStore::new())
//!     .lockout(5, Duration::from_secs(300))
//!     .limiter_store(Arc::new(store))
//!     .build()?;
//! assert!(layer.lockout().is_some());
//! # Ok(()) }
//! ```

mod key;
mod layer;
mod lockout;
mod service;
mod store;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

pub use key::{
    ApiKey, BODY_LEN, CHECKSUM_LEN, GenerateError, KeyDigest, KeyHasher, KeyId, KeyPrefix,
    ParseError,
};
pub use layer::RequireApiKeyLayer;
pub use lockout::{Failure, Lockout};
pub use service::{RequireApiKeyService, ResponseFuture, X_API_KEY};
pub use store::{KeyRecord, KeyStore, KeyStoreError, MemoryKeyStore};

use crate::SecretKey;
use crate::client_ip::{ClientIpStrategy, Ipv6Grouping};
use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::{LimiterStore, MemoryStore};
use crate::security_log::Coalescer;
use layer::Shared;

/// The request extension of an authenticated request: which key, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    key_id: KeyId,
    label: Option<Arc<str>>,
}

impl Authenticated {
    /// The first 4 bytes of the key's digest (8 hex digits when shown).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The label of the key's [`KeyRecord`], if it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
}

/// Entry point: `RequireApiKey::builder(prefix, key_store)`.
#[derive(Debug, Clone, Copy)]
pub struct RequireApiKey;

impl RequireApiKey {
    /// A builder for keys of `prefix` looked up in `keys`, with the defaults: plain SHA-256 digests, a
    /// lockout after 5 failures within 300 s (the guide's `MAX_AUTH_ATTEMPTS` and
    /// `AUTH_ATTEMPT_TIMEOUT`), the peer address as the client with IPv6 grouped by /64, a
    /// lockout store of its own, realm `api`.
    pub fn builder<K: KeyStore>(prefix: KeyPrefix, keys: K) -> RequireApiKeyBuilder<K> {
        RequireApiKeyBuilder {
            keys,
            prefix,
            hasher: KeyHasher::sha256(),
            lockout: Some((5, Duration::from_secs(300))),
            store: MemoryStore::builder()
                .max_keys(100_000)
                .build()
                .map(Arc::new),
            client_ip: ClientIpStrategy::peer(),
            ipv6_prefix: Ipv6Grouping::DEFAULT_PREFIX_LEN,
            realm: Cow::Borrowed("api"),
            coalescer: None,
            errors: ConfigErrors::default(),
        }
    }
}

/// Builds a [`RequireApiKeyLayer`]; [`build`](Self::build) reports every problem at once.
///
/// `St` is the store the lockout is kept in: a [`MemoryStore`] of its own unless
/// [`limiter_store`](Self::limiter_store) gives one.
pub struct RequireApiKeyBuilder<K, St = MemoryStore> {
    keys: K,
    prefix: KeyPrefix,
    hasher: KeyHasher,
    lockout: Option<(u32, Duration)>,
    store: Result<Arc<St>, ConfigError>,
    client_ip: ClientIpStrategy,
    ipv6_prefix: u8,
    realm: Cow<'static, str>,
    coalescer: Option<Arc<Coalescer>>,
    errors: ConfigErrors,
}

impl<K, St> std::fmt::Debug for RequireApiKeyBuilder<K, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireApiKeyBuilder")
            .field("prefix", &self.prefix)
            .field("hasher", &self.hasher)
            .field("lockout", &self.lockout)
            .field("client_ip", &self.client_ip)
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl<K: KeyStore, St: LimiterStore> RequireApiKeyBuilder<K, St> {
    /// How keys are hashed into what the store holds (default [`KeyHasher::sha256`]).
    pub fn hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// HMAC-SHA-256 with `secret` as the pepper: shorthand for
    /// [`hasher`](Self::hasher)`(KeyHasher::from_secret_key(secret))`.
    pub fn pepper(self, secret: &SecretKey) -> Self {
        self.hasher(KeyHasher::from_secret_key(secret))
    }

    /// Lock a client out for `window` after `max_attempts` failed attempts within `window`
    /// (default 5 within 300 s). See [`Lockout`].
    pub fn lockout(mut self, max_attempts: u32, window: Duration) -> Self {
        self.lockout = Some((max_attempts, window));
        self
    }

    /// No lockout: failures are logged but not counted. Only for keys that a rate limit in
    /// front already protects.
    pub fn no_lockout(mut self) -> Self {
        self.lockout = None;
        self
    }

    /// Keep the lockout's counters in `store` (default: a [`MemoryStore`] of its own): the
    /// rate limiter's ([`RateLimitLayer::store`](crate::rate_limit::RateLimitLayer::store)),
    /// whether in memory or in Redis, or any [`LimiterStore`].
    ///
    /// On a [`RedisStore`](crate::limiter::RedisStore) (feature `redis`) the lockout is shared
    /// by every instance pointing at the same Redis with the same key prefix: a client locked
    /// out through one instance is locked out on all. While Redis cannot answer (the store's
    /// per-call timeout and circuit breaker bound the wait), the store's
    /// [failure policy](crate::limiter::RedisStoreBuilder::on_failure) decides: `FailClosed`
    /// answers 503 problem+json with `Retry-After` (the breaker's cool-down) to every attempt
    /// whose lock or failure count Redis cannot settle (a valid key whose failures cannot be
    /// forgotten still passes: leaving them counted is the strict side); `FailOpen` still
    /// verifies keys but neither counts failures nor locks anyone out; `Local` counts in the
    /// store's in-memory fallback, each instance alone, until Redis answers again.
    ///
    /// The cost on Redis: every attempt, a valid key included, makes one round trip
    /// (`EVALSHA`) before the key is checked, since a locked-out client is refused whatever
    /// key it sends. A failure adds one more (three for the one that locks); a success adds a
    /// `DEL` only when the client has failures to forget. Without a lockout
    /// ([`no_lockout`](Self::no_lockout)) the store is not used.
    pub fn limiter_store<T: LimiterStore>(self, store: Arc<T>) -> RequireApiKeyBuilder<K, T> {
        RequireApiKeyBuilder {
            keys: self.keys,
            prefix: self.prefix,
            hasher: self.hasher,
            lockout: self.lockout,
            store: Ok(store),
            client_ip: self.client_ip,
            ipv6_prefix: self.ipv6_prefix,
            realm: self.realm,
            coalescer: self.coalescer,
            errors: self.errors,
        }
    }

    /// How the client address is found (default: the peer address; see
    /// [`ClientIpStrategy`]). Behind a reverse proxy use
    /// the configuration adapter's `client_ip_strategy`, or every client is the proxy.
    pub fn client_ip(mut self, strategy: ClientIpStrategy) -> Self {
        self.client_ip = strategy;
        self
    }

    /// The prefix length IPv6 clients are grouped by (default 64), so that rotating
    /// addresses inside one prefix does not multiply the attempts.
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits;
        self
    }

    /// The coalescer of the security events this layer emits (default: a
    /// [`Coalescer::default`] of this layer's own); pass the log layer's
    /// ([`SecurityLogLayer::coalescer`](crate::security_log::SecurityLogLayer::coalescer)) to
    /// share its flood control and flushing.
    pub fn coalescer(mut self, coalescer: Arc<Coalescer>) -> Self {
        self.coalescer = Some(coalescer);
        self
    }

    /// The realm of `WWW-Authenticate: Bearer realm="…"` (default `api`).
    pub fn realm(mut self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The layer, or every problem with the settings.
    pub fn build(self) -> Result<RequireApiKeyLayer<K, St>, ConfigError> {
        let mut errors = self.errors;
        let prefix = Some(self.prefix);
        let grouping = errors.take(Ipv6Grouping::new(self.ipv6_prefix));
        let realm_ok = !self.realm.is_empty()
            && self
                .realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if !realm_ok {
            errors.push(
                "api_key.realm",
                "must be 1 or more printable ASCII characters other than \" and \\",
            );
        }
        let lockout = match self.lockout {
            Some((max, window)) => errors
                .take(self.store)
                .and_then(|store| errors.take(Lockout::new(store, max, window))),
            None => None,
        };
        let www_authenticate = HeaderValue::from_str(&format!("Bearer realm=\"{}\"", self.realm));
        errors.finish(|| ())?;
        match (prefix, grouping, www_authenticate) {
            (Some(prefix), Some(grouping), Ok(www_authenticate)) => Ok(RequireApiKeyLayer {
                shared: Arc::new(Shared {
                    keys: self.keys,
                    prefix,
                    hasher: self.hasher,
                    lockout,
                    client_ip: self.client_ip,
                    grouping,
                    www_authenticate,
                    events: self.coalescer.unwrap_or_default(),
                }),
            }),
            _ => Err(ConfigError::new(
                "api_key.realm",
                "is not a valid header value",
            )),
        }
    }
}
