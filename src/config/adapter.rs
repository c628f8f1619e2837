//! The EchoTuner environment turned into each layer's builder.
//!
//! This is the one place where the guide's variables meet the layers: a layer knows only its
//! own builder, and these methods fill builders from a [`Config`]. Anything they do can be
//! done with the builders alone; the adapter adds the guide's names to error messages and the
//! guide's own choices (the `ech_` key prefix, the exposed headers of its API).

#[cfg(feature = "cors")]
use super::{ALLOWED_ORIGINS, CORS_ALLOW_CREDENTIALS};
use super::{Config, TRUSTED_PROXIES};
use crate::client_ip::ClientIpStrategy;
use crate::error::ConfigError;

/// The prefix of EchoTuner's API keys (`ech_…`).
#[cfg(feature = "api-key")]
pub const ECHOTUNER_KEY_PREFIX: &str = "ech_";

/// The headers EchoTuner's API adds for paging, exposed to browsers besides the rate-limit
/// fields.
#[cfg(feature = "cors")]
pub const ECHOTUNER_EXPOSED_HEADERS: [&str; 2] = ["X-Total-Count", "X-Page-Count"];

impl Config {
    /// `TRUSTED_PROXIES` as a strategy: [`trusted_proxies`](ClientIpStrategy::trusted_proxies)
    /// when it lists any, else [`peer`](ClientIpStrategy::peer); `X-Forwarded-For`.
    ///
    /// # Errors
    ///
    /// The problems of [`ClientIpStrategy::trusted_proxies`], under `TRUSTED_PROXIES`.
    pub fn client_ip_strategy(&self) -> Result<ClientIpStrategy, ConfigError> {
        let proxies = self.trusted_proxies();
        if proxies.is_empty() {
            Ok(ClientIpStrategy::peer())
        } else {
            ClientIpStrategy::trusted_proxies(proxies.iter().copied())
                .map_err(|e| e.within(TRUSTED_PROXIES))
        }
    }

    /// The security log: the client address found by [`client_ip_strategy`](Self::client_ip_strategy).
    ///
    /// # Errors
    ///
    /// The problems of `TRUSTED_PROXIES`.
    #[cfg(feature = "security-log")]
    pub fn security_log_builder(
        &self,
    ) -> Result<crate::security_log::SecurityLogBuilder, ConfigError> {
        Ok(crate::security_log::SecurityLog::builder().client_ip(self.client_ip_strategy()?))
    }

    /// The security headers, or `None` when `SECURE_HEADERS` is false: the defaults, with
    /// `X-Forwarded-Proto` believed (for HSTS) only from `TRUSTED_PROXIES`.
    ///
    /// # Errors
    ///
    /// The problems of `TRUSTED_PROXIES`.
    #[cfg(feature = "secure-headers")]
    pub fn secure_headers_builder(
        &self,
    ) -> Result<Option<crate::secure_headers::SecureHeadersBuilder>, ConfigError> {
        if !self.secure_headers() {
            return Ok(None);
        }
        let builder =
            crate::secure_headers::SecureHeaders::builder().client_ip(self.client_ip_strategy()?);
        Ok(Some(builder))
    }

    /// CORS, or `None` unless `CORS_ENABLED`: `ALLOWED_ORIGINS` (exact origins and patterns;
    /// `*` alone means public mode), `CORS_ALLOW_CREDENTIALS`, `Authorization` allowed besides
    /// any other request header, and EchoTuner's paging headers exposed.
    ///
    /// The settings are checked now, so that every problem names the variable to fix: an
    /// empty `ALLOWED_ORIGINS`, `*` with credentials, a malformed origin.
    ///
    /// ```
    /// use tower_shield::Config;
    ///
    /// let env = |vars: &'static [(&'static str, &'static str)]| {
    ///     Config::from_lookup(move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    /// };
    /// let config = env(&[("CORS_ENABLED", "true"), ("ALLOWED_ORIGINS", "https://app.example.com")])?;
    /// assert!(config.cors_builder()?.is_some());
    ///
    /// let config = env(&[("CORS_ENABLED", "true"), ("ALLOWED_ORIGINS", "*")])?;
    /// let err = config.cors_builder().unwrap_err();
    /// assert_eq!(err.problems()[0].setting(), "ALLOWED_ORIGINS");
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Every problem of the CORS settings, under the variable that holds it.
    #[cfg(feature = "cors")]
    pub fn cors_builder(&self) -> Result<Option<crate::cors::CorsBuilder>, ConfigError> {
        use crate::cors::{
            CORS_ALLOW_CREDENTIALS_SETTING, CORS_ALLOW_ORIGIN_SETTING, Cors,
            DEFAULT_EXPOSED_HEADERS,
        };
        if !self.cors_enabled() {
            return Ok(None);
        }
        let builder = Cors::builder()
            .allow_origins(self.allowed_origins())
            .allow_credentials(self.cors_allow_credentials())
            .allow_headers(["authorization"])
            .allow_any_header()
            .expose_headers(
                ECHOTUNER_EXPOSED_HEADERS
                    .iter()
                    .chain(&DEFAULT_EXPOSED_HEADERS),
            );
        builder.clone().build().map_err(|e| {
            e.renamed(CORS_ALLOW_ORIGIN_SETTING, ALLOWED_ORIGINS)
                .renamed(CORS_ALLOW_CREDENTIALS_SETTING, CORS_ALLOW_CREDENTIALS)
        })?;
        Ok(Some(builder))
    }

    /// The limits the configuration asks for, as a builder to add route policies and
    /// exemptions to, or `None` when `RATE_LIMIT_ENABLED` is false:
    ///
    /// - the policy `"ip"`: `RATE_LIMIT_REQUESTS_PER_MINUTE` per `RATE_LIMIT_WINDOW_SECONDS`
    ///   per client IP on every route;
    /// - the client found by [`client_ip_strategy`](Self::client_ip_strategy) (`TRUSTED_PROXIES`);
    /// - at most `MAX_DEVICES_PER_USER` new device ids per client per
    ///   `DEVICE_REGISTRATION_TIMEOUT`;
    /// - with `REDIS_URL` (feature `redis`), the limits kept in Redis with
    ///   `RATE_LIMIT_STORE_FAILURE`, and keys derived from `SECRET_KEY`, which is then
    ///   required so that every instance's keys agree.
    ///
    /// `REDIS_URL` without the feature, or without `SECRET_KEY`, is an error even when the
    /// limits are off: a deployment that asks for shared state never runs without it
    /// unnoticed. Nothing is started: sweep idle keys with the store's `spawn_sweeper` every
    /// `SESSION_CLEANUP_INTERVAL` if you want memory back between floods (the reference
    /// server does).
    ///
    /// ```
    /// use http::Method;
    /// use tower_shield::Config;
    /// use tower_shield::limiter::Quota;
    /// use tower_shield::rate_limit::{Policy, Scope};
    ///
    /// let config = Config::from_lookup(|name| (name == "RATE_LIMIT_REQUESTS_PER_MINUTE").then(|| "120".into()))?;
    /// let layer = config
    ///     .rate_limit_builder()?
    ///     .map(|limits| {
    ///         limits
    ///             .exempt(Method::GET, "/health")
    ///             .policy(Policy::new("login", Quota::per_minute(5)?, Scope::ip()).on(Method::POST, "/login"))
    ///             .build()
    ///     })
    ///     .transpose()?;
    /// assert!(layer.is_some());
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The problems of `TRUSTED_PROXIES`, `REDIS_URL` and `SECRET_KEY`.
    #[cfg(feature = "rate-limit")]
    pub fn rate_limit_builder(
        &self,
    ) -> Result<Option<crate::rate_limit::RateLimitBuilder<crate::limiter::EitherStore>>, ConfigError>
    {
        use crate::limiter::{EitherStore, MemoryStore};
        use crate::rate_limit::{Policy, RateLimit, Scope};
        use std::sync::Arc;

        let redis = self.shared_store()?;
        if !self.rate_limit_enabled() {
            return Ok(None);
        }
        let store = match redis {
            #[cfg(feature = "redis")]
            Some(store) => EitherStore::from(store),
            #[cfg(not(feature = "redis"))]
            Some(never) => match never {},
            None => EitherStore::from(MemoryStore::builder().build()?),
        };
        let builder = RateLimit::builder()
            .store(Arc::new(store))
            .client_ip(self.client_ip_strategy()?)
            .policy(Policy::new("ip", self.rate_limit_quota(), Scope::ip()))
            .device_rotation(
                self.max_devices_per_user(),
                self.device_registration_timeout(),
            );
        Ok(Some(builder))
    }

    /// The Redis store `REDIS_URL` names, after making keys agree across instances.
    #[cfg(all(feature = "redis", feature = "rate-limit"))]
    fn shared_store(&self) -> Result<Option<crate::limiter::RedisStore>, ConfigError> {
        let Some(url) = self.redis_url() else {
            return Ok(None);
        };
        let Some(secret) = self.secret_key() else {
            return Err(ConfigError::new(
                super::SECRET_KEY,
                "REDIS_URL is set but SECRET_KEY is not: instances sharing one Redis must \
                 hash device and session ids with the same secret, or their limits are not \
                 shared; set SECRET_KEY to the same value (at least 32 bytes) on every \
                 instance",
            ));
        };
        crate::limiter::RedisStore::builder(url)
            .secret(secret)
            .on_failure(self.rate_limit_store_failure())
            .build()
            .map(Some)
    }

    #[cfg(all(not(feature = "redis"), feature = "rate-limit"))]
    fn shared_store(&self) -> Result<Option<std::convert::Infallible>, ConfigError> {
        match self.redis_url() {
            Some(_) => Err(ConfigError::new(
                super::REDIS_URL,
                "REDIS_URL is set but this build has no Redis support: build with `--features redis`",
            )),
            None => Ok(None),
        }
    }

    /// A key store of `API_KEY_HASHES`.
    #[cfg(feature = "api-key")]
    pub fn key_store(&self) -> crate::api_key::MemoryKeyStore {
        crate::api_key::MemoryKeyStore::from_digests(self.api_key_hashes().iter().copied())
    }

    /// `RequireApiKey` over `keys` with EchoTuner's `ech_` prefix, the lockout of
    /// `MAX_AUTH_ATTEMPTS` within `AUTH_ATTEMPT_TIMEOUT`, and the client address of
    /// `TRUSTED_PROXIES`.
    ///
    /// `SECRET_KEY` is *not* taken as a pepper here: `API_KEY_HASHES` made the guide's way
    /// (plain SHA-256) would all stop matching the moment a `SECRET_KEY` is set for another
    /// purpose, and nothing at start-up could tell. Call
    /// [`pepper`](crate::api_key::RequireApiKeyBuilder::pepper) when the hashes were made
    /// with it (`cargo run --example keygen -- --pepper`).
    ///
    /// # Errors
    ///
    /// The problems of `TRUSTED_PROXIES`.
    #[cfg(feature = "api-key")]
    pub fn require_api_key_builder<K: crate::api_key::KeyStore>(
        &self,
        keys: K,
    ) -> Result<crate::api_key::RequireApiKeyBuilder<K>, ConfigError> {
        let prefix = crate::api_key::KeyPrefix::new(ECHOTUNER_KEY_PREFIX)?;
        Ok(crate::api_key::RequireApiKey::builder(prefix, keys)
            .lockout(self.max_auth_attempts(), self.auth_attempt_timeout())
            .client_ip(self.client_ip_strategy()?))
    }

    /// The [`Shield`](crate::Shield) of every layer this configuration enables, to adjust
    /// before [`build`](crate::shield::ShieldBuilder::build): the security log, the security
    /// headers (`SECURE_HEADERS`), CORS (`CORS_ENABLED`), the rate limit
    /// (`RATE_LIMIT_ENABLED`). Input validation depends on your routes: add it with
    /// [`sanitizer`](crate::shield::ShieldBuilder::sanitizer).
    ///
    /// Every problem of every layer's settings, each naming its variable, is reported by
    /// `build`, with those of the adjustments made meanwhile.
    #[cfg(feature = "shield")]
    pub fn shield_builder(&self) -> crate::shield::ShieldBuilder {
        let mut shield = crate::Shield::builder();
        let mut errors = std::mem::take(&mut shield.errors);
        if let Some(log) = errors.take(self.security_log_builder()) {
            shield = shield.security_log(log);
        }
        if let Some(Some(headers)) = errors.take(self.secure_headers_builder()) {
            shield = shield.secure_headers(headers);
        }
        if let Some(Some(cors)) = errors.take(self.cors_builder()) {
            shield = shield.cors(cors);
        }
        if let Some(Some(limits)) = errors.take(self.rate_limit_builder()) {
            shield = shield.rate_limit(limits);
        }
        shield.errors = errors;
        shield
    }
}

#[cfg(feature = "shield")]
impl crate::Shield {
    /// Every layer `config` enables, with their defaults: [`Config::shield_builder`], built.
    ///
    /// # Errors
    ///
    /// Every problem of every layer's configuration, each naming its variable.
    pub fn from_config(config: &Config) -> Result<crate::shield::ShieldLayer, ConfigError> {
        config.shield_builder().build()
    }
}

/// The input rules of EchoTuner's API (the reference server's contract): `X-Device-ID`, when
/// sent, is one `^[A-Za-z0-9_-]{1,64}$`; `POST /playlist/*` bodies are JSON
/// `{"prompt", "session_id", "device_id"}` with a plain-text prompt of 1 to 500 characters
/// after trimming and ids of the same pattern; `GET /search?q=` is plain text of at most 200
/// characters; bodies are at most 64 KiB.
#[cfg(feature = "sanitize")]
pub fn echotuner_input_rules() -> crate::sanitize::InputSanitizerBuilder {
    use crate::sanitize::{Field, HeaderRule, ID_PATTERN, InputSanitizer};
    use http::Method;
    InputSanitizer::builder()
        .header(HeaderRule::new("x-device-id", ID_PATTERN))
        .json_body(
            Method::POST,
            "/playlist/*",
            [
                Field::new("prompt").required().length(1, 500).plain_text(),
                Field::new("session_id").required().pattern(ID_PATTERN),
                Field::new("device_id").required().pattern(ID_PATTERN),
            ],
        )
        .query(
            Method::GET,
            "/search",
            [Field::new("q").length(0, 200).plain_text()],
        )
        .body_limit(64 * 1024)
}
