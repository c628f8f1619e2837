//! The EchoTuner environment variables, parsed and checked once at start-up.
//!
//! [`Config::from_env`] reads the process environment (and a `.env` file in the working
//! directory, if there is one); [`Config::from_lookup`] reads any `name → value` function,
//! which is how tests and embedders supply settings without touching the process environment.
//!
//! Every variable is optional. A value that cannot work stops start-up with a [`ConfigError`]
//! that lists *every* bad variable at once, each by its name, saying what is wrong and what
//! would be accepted. Secrets are never repeated in a message: `SECRET_KEY` is not shown at
//! all, a password in `REDIS_URL` is masked and an `API_KEY_HASHES` entry shows at most its
//! first 8 characters.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use tower_shield::Config;
//! use tower_shield::config::LogFormat;
//!
//! let env = HashMap::from([
//!     ("BIND", "0.0.0.0:8080"),
//!     ("RATE_LIMIT_REQUESTS_PER_MINUTE", "100"),
//!     ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
//!     ("LOG_FORMAT", "pretty"),
//! ]);
//! let config = Config::from_lookup(|name| env.get(name).map(|v| v.to_string()))?;
//! assert_eq!(config.bind().port(), 8080);
//! assert_eq!(config.rate_limit_quota().requests(), 100);
//! assert_eq!(config.rate_limit_quota().window(), Duration::from_secs(60));
//! assert_eq!(config.trusted_proxies().len(), 2);
//! assert_eq!(config.log_format(), LogFormat::Pretty);
//! assert!(config.secure_headers()); // the default
//!
//! // Every bad variable is reported, by name, in one error.
//! let err = Config::from_lookup(|name| match name {
//!     "RATE_LIMIT_WINDOW_SECONDS" => Some("0".to_string()),
//!     "CORS_ENABLED" => Some("maybe".to_string()),
//!     _ => None,
//! })
//! .unwrap_err();
//! let names: Vec<_> = err.problems().iter().map(|p| p.setting()).collect();
//! assert_eq!(names, ["CORS_ENABLED", "RATE_LIMIT_WINDOW_SECONDS"]);
//! # Ok::<(), tower_shield::ConfigError>(())
//! ```
//!
//! # Variables
//!
//! | variable | type | default |
//! |---|---|---|
//! | `BIND` | socket address, `IP:PORT` | `127.0.0.1:8000` |
//! | `SECURE_HEADERS` | boolean | `true` |
//! | `CORS_ENABLED` | boolean | `false` |
//! | `ALLOWED_ORIGINS` | comma-separated origins | none |
//! | `CORS_ALLOW_CREDENTIALS` | boolean | `true` |
//! | `RATE_LIMIT_ENABLED` | boolean | `true` |
//! | `RATE_LIMIT_REQUESTS_PER_MINUTE` | integer ≥ 1: requests per window | `60` |
//! | `RATE_LIMIT_WINDOW_SECONDS` | seconds ≥ 1 | `60` |
//! | `TRUSTED_PROXIES` | comma-separated CIDR ranges or IP addresses | none (trust no forwarding header) |
//! | `MAX_AUTH_ATTEMPTS` | integer ≥ 1 | `5` |
//! | `AUTH_ATTEMPT_TIMEOUT` | seconds ≥ 1 | `300` |
//! | `MAX_DEVICES_PER_USER` | integer ≥ 1 | `10` |
//! | `DEVICE_REGISTRATION_TIMEOUT` | seconds ≥ 1 | `1800` |
//! | `SESSION_CLEANUP_INTERVAL` | seconds ≥ 1 | `300` |
//! | `API_KEY_HASHES` | comma-separated SHA-256 digests, 64 hex characters each | none |
//! | `REDIS_URL` | `redis://`, `rediss://` or `unix://` URL | unset: in-memory store |
//! | `RATE_LIMIT_STORE_FAILURE` | `fail-closed`, `fail-open` or `local` | `local` |
//! | `LOG_FORMAT` | `json` or `pretty` | `json` |
//! | `SECRET_KEY` | at least 32 bytes | unset |
//!
//! Booleans accept `true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off`, in any case. Integers
//! and seconds range from 1 to 4294967295. A value that is empty (or only whitespace) counts
//! as unset, so the default applies; surrounding whitespace is ignored everywhere except in
//! `SECRET_KEY`, where it is refused as a likely copy-paste mistake.
//!
//! # The `.env` file
//!
//! [`Config::from_env`] also reads `.env` in the current directory when it exists, without
//! changing the process environment. A variable present in the process environment wins over
//! the file, even when its value is empty; within the file, the first assignment of a name
//! wins. The file uses the [`dotenvy`] syntax: `KEY=VALUE` lines, `#` comments, an optional
//! `export` prefix, quotes around values that hold spaces or `#`, and `$NAME` substitution in
//! unquoted and double-quoted values (write a value containing `$` in single quotes). A line
//! that cannot be parsed is reported under the setting `.env`, by line number, without its
//! contents.
//!
//! [`dotenvy`]: https://docs.rs/dotenvy

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use crate::error::{ConfigError, ConfigErrors};
use crate::limiter::Quota;

mod adapter;

#[cfg(feature = "cors")]
pub use adapter::ECHOTUNER_EXPOSED_HEADERS;
#[cfg(feature = "api-key")]
pub use adapter::ECHOTUNER_KEY_PREFIX;
#[cfg(feature = "sanitize")]
pub use adapter::echotuner_input_rules;

const BIND: &str = "BIND";
const SECURE_HEADERS: &str = "SECURE_HEADERS";
const CORS_ENABLED: &str = "CORS_ENABLED";
const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
const CORS_ALLOW_CREDENTIALS: &str = "CORS_ALLOW_CREDENTIALS";
const RATE_LIMIT_ENABLED: &str = "RATE_LIMIT_ENABLED";
const RATE_LIMIT_REQUESTS_PER_MINUTE: &str = "RATE_LIMIT_REQUESTS_PER_MINUTE";
const RATE_LIMIT_WINDOW_SECONDS: &str = "RATE_LIMIT_WINDOW_SECONDS";
const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
const MAX_AUTH_ATTEMPTS: &str = "MAX_AUTH_ATTEMPTS";
const AUTH_ATTEMPT_TIMEOUT: &str = "AUTH_ATTEMPT_TIMEOUT";
const MAX_DEVICES_PER_USER: &str = "MAX_DEVICES_PER_USER";
const DEVICE_REGISTRATION_TIMEOUT: &str = "DEVICE_REGISTRATION_TIMEOUT";
const SESSION_CLEANUP_INTERVAL: &str = "SESSION_CLEANUP_INTERVAL";
const API_KEY_HASHES: &str = "API_KEY_HASHES";
const REDIS_URL: &str = "REDIS_URL";
const RATE_LIMIT_STORE_FAILURE: &str = "RATE_LIMIT_STORE_FAILURE";
const LOG_FORMAT: &str = "LOG_FORMAT";
const SECRET_KEY: &str = "SECRET_KEY";

/// The setting name of problems with the `.env` file itself.
const DOTENV: &str = ".env";

/// Every variable [`Config`] reads, in the order it reads them.
const VARIABLES: [&str; 19] = [
    BIND,
    SECURE_HEADERS,
    CORS_ENABLED,
    ALLOWED_ORIGINS,
    CORS_ALLOW_CREDENTIALS,
    RATE_LIMIT_ENABLED,
    RATE_LIMIT_REQUESTS_PER_MINUTE,
    RATE_LIMIT_WINDOW_SECONDS,
    TRUSTED_PROXIES,
    MAX_AUTH_ATTEMPTS,
    AUTH_ATTEMPT_TIMEOUT,
    MAX_DEVICES_PER_USER,
    DEVICE_REGISTRATION_TIMEOUT,
    SESSION_CLEANUP_INTERVAL,
    API_KEY_HASHES,
    REDIS_URL,
    RATE_LIMIT_STORE_FAILURE,
    LOG_FORMAT,
    SECRET_KEY,
];

/// The EchoTuner settings, every one checked. Build it with [`Config::from_env`] or
/// [`Config::from_lookup`]; read it through the accessors, one per variable.
///
/// `Debug` shows every setting except secrets: the [`SecretKey`] prints as `<redacted>`, a
/// password in `REDIS_URL` as `****`, and API-key hashes only by their first 8 hex digits.
#[derive(Clone)]
pub struct Config {
    bind: SocketAddr,
    secure_headers: bool,
    cors_enabled: bool,
    allowed_origins: Vec<String>,
    cors_allow_credentials: bool,
    rate_limit_enabled: bool,
    rate_limit_quota: Quota,
    trusted_proxies: Vec<IpNet>,
    max_auth_attempts: u32,
    auth_attempt_timeout: Duration,
    max_devices_per_user: u32,
    device_registration_timeout: Duration,
    session_cleanup_interval: Duration,
    api_key_hashes: Vec<[u8; 32]>,
    redis_url: Option<String>,
    rate_limit_store_failure: StoreFailurePolicy,
    log_format: LogFormat,
    secret_key: Option<SecretKey>,
}

impl Config {
    /// Reads the process environment, falling back to a `.env` file in the current directory
    /// for variables the environment does not set.
    ///
    /// The file is optional; when present, it must parse (see the [module docs](self)). The
    /// process environment is never modified. A variable whose value is not valid UTF-8 is an
    /// error.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut errors = ConfigErrors::default();
        for name in VARIABLES {
            let is_unicode = std::env::var_os(name).is_none_or(|value| value.to_str().is_some());
            if !is_unicode {
                errors.push(
                    name,
                    "is not valid UTF-8; expected text (the value is not shown)",
                );
            }
        }
        // A variable that is set but not UTF-8 is already reported; reading it as empty keeps
        // the `.env` file from filling it in.
        let process =
            |name: &str| std::env::var_os(name).map(|v| v.into_string().unwrap_or_default());
        Config::load(process, Some(Path::new(".env")), errors)
    }

    /// Reads each variable through `lookup`, which returns `None` for an unset variable.
    ///
    /// No file and no process environment is consulted. `from_lookup(|_| None)` is the
    /// all-defaults configuration.
    ///
    /// ```
    /// use tower_shield::Config;
    ///
    /// let config = Config::from_lookup(|name| (name == "CORS_ENABLED").then(|| "yes".into()))?;
    /// assert!(config.cors_enabled());
    /// assert_eq!(config.bind().to_string(), "127.0.0.1:8000");
    /// # Ok::<(), tower_shield::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::load(lookup, None, ConfigErrors::default())
    }

    /// Reads `lookup`, falling back to the `.env`-syntax file at `dotenv` (when given and
    /// present), after the problems already in `errors`.
    fn load(
        lookup: impl Fn(&str) -> Option<String>,
        dotenv: Option<&Path>,
        mut errors: ConfigErrors,
    ) -> Result<Config, ConfigError> {
        let file = match dotenv {
            Some(path) => read_dotenv(path, &mut errors),
            None => HashMap::new(),
        };
        let mut env = Env {
            lookup: &|name: &str| lookup(name).or_else(|| file.get(name).cloned()),
            errors,
        };

        let bind = env.value(BIND, default_bind(), parse_socket_addr);
        let secure_headers = env.value(SECURE_HEADERS, true, parse_bool);
        let cors_enabled = env.value(CORS_ENABLED, false, parse_bool);
        let allowed_origins = env.value(ALLOWED_ORIGINS, Vec::new(), |v| {
            Ok(list_items(v).map(|(_, origin)| origin.to_owned()).collect())
        });
        let cors_allow_credentials = env.value(CORS_ALLOW_CREDENTIALS, true, parse_bool);
        let rate_limit_enabled = env.value(RATE_LIMIT_ENABLED, true, parse_bool);
        let requests = env.value(RATE_LIMIT_REQUESTS_PER_MINUTE, 60, parse_count);
        let window = env.value(
            RATE_LIMIT_WINDOW_SECONDS,
            Duration::from_secs(60),
            parse_seconds,
        );
        // Built now, so that a combination that cannot work fails at start-up.
        let rate_limit_quota = rate_limit_quota(requests, window, &mut env.errors);
        let trusted_proxies = env.values(TRUSTED_PROXIES, parse_trusted_proxies);
        let max_auth_attempts = env.value(MAX_AUTH_ATTEMPTS, 5, parse_count);
        let auth_attempt_timeout = env.value(
            AUTH_ATTEMPT_TIMEOUT,
            Duration::from_secs(300),
            parse_seconds,
        );
        let max_devices_per_user = env.value(MAX_DEVICES_PER_USER, 10, parse_count);
        let device_registration_timeout = env.value(
            DEVICE_REGISTRATION_TIMEOUT,
            Duration::from_secs(1800),
            parse_seconds,
        );
        let session_cleanup_interval = env.value(
            SESSION_CLEANUP_INTERVAL,
            Duration::from_secs(300),
            parse_seconds,
        );
        let api_key_hashes = env.values(API_KEY_HASHES, parse_api_key_hashes);
        let redis_url = env.value(REDIS_URL, None, |v| parse_redis_url(v).map(Some));
        let rate_limit_store_failure = env.value(
            RATE_LIMIT_STORE_FAILURE,
            StoreFailurePolicy::Local,
            parse_store_failure,
        );
        let log_format = env.value(LOG_FORMAT, LogFormat::Json, parse_log_format);
        let secret_key = env.secret(SECRET_KEY);

        env.errors.finish(|| ())?;
        // Unreachable: a missing quota always leaves a problem behind, so `finish` failed.
        let rate_limit_quota = rate_limit_quota.ok_or_else(|| {
            ConfigError::new(
                RATE_LIMIT_REQUESTS_PER_MINUTE,
                "no rate limit could be built",
            )
        })?;
        Ok(Config {
            bind,
            secure_headers,
            cors_enabled,
            allowed_origins,
            cors_allow_credentials,
            rate_limit_enabled,
            rate_limit_quota,
            trusted_proxies,
            max_auth_attempts,
            auth_attempt_timeout,
            max_devices_per_user,
            device_registration_timeout,
            session_cleanup_interval,
            api_key_hashes,
            redis_url,
            rate_limit_store_failure,
            log_format,
            secret_key,
        })
    }

    /// `BIND`: the address the server listens on. Default `127.0.0.1:8000`.
    pub fn bind(&self) -> SocketAddr {
        self.bind
    }

    /// `SECURE_HEADERS`: whether responses carry the security headers. Default `true`.
    pub fn secure_headers(&self) -> bool {
        self.secure_headers
    }

    /// `CORS_ENABLED`: whether cross-origin requests are answered with CORS headers.
    /// Default `false`.
    pub fn cors_enabled(&self) -> bool {
        self.cors_enabled
    }

    /// `ALLOWED_ORIGINS`: the origins CORS allows, comma-separated, each trimmed, empty items
    /// dropped. Default: none. The CORS layer checks their form when it is built.
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    /// `CORS_ALLOW_CREDENTIALS`: whether CORS responses allow credentials. Default `true`.
    pub fn cors_allow_credentials(&self) -> bool {
        self.cors_allow_credentials
    }

    /// `RATE_LIMIT_ENABLED`: whether rate limits apply at all. Default `true`.
    pub fn rate_limit_enabled(&self) -> bool {
        self.rate_limit_enabled
    }

    /// `RATE_LIMIT_REQUESTS_PER_MINUTE` per `RATE_LIMIT_WINDOW_SECONDS`: the limit of every
    /// route but the health check, per client IP. Default 60 per 60 s.
    ///
    /// Despite its name, `RATE_LIMIT_REQUESTS_PER_MINUTE` counts requests per window, which
    /// is a minute only by default.
    pub fn rate_limit_quota(&self) -> Quota {
        self.rate_limit_quota
    }

    /// `TRUSTED_PROXIES`: the networks whose forwarding headers (`X-Forwarded-For`,
    /// `Forwarded`) are believed; a bare IP address is a `/32` or `/128`. Default: none, so no
    /// forwarding header is trusted and the client is the peer address.
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// `MAX_AUTH_ATTEMPTS`: failed authentications a client may make before it is locked out.
    /// Default `5`.
    pub fn max_auth_attempts(&self) -> u32 {
        self.max_auth_attempts
    }

    /// `AUTH_ATTEMPT_TIMEOUT` (seconds): how long an authentication lockout lasts.
    /// Default 300 s.
    pub fn auth_attempt_timeout(&self) -> Duration {
        self.auth_attempt_timeout
    }

    /// `MAX_DEVICES_PER_USER`: distinct device ids one client may register within
    /// [`device_registration_timeout`](Config::device_registration_timeout). Default `10`.
    pub fn max_devices_per_user(&self) -> u32 {
        self.max_devices_per_user
    }

    /// `DEVICE_REGISTRATION_TIMEOUT` (seconds): the window of the device cap. Default 1800 s.
    pub fn device_registration_timeout(&self) -> Duration {
        self.device_registration_timeout
    }

    /// `SESSION_CLEANUP_INTERVAL` (seconds): how often idle rate-limit keys are swept.
    /// Default 300 s.
    pub fn session_cleanup_interval(&self) -> Duration {
        self.session_cleanup_interval
    }

    /// `API_KEY_HASHES`: the SHA-256 digests of the accepted API keys, decoded from
    /// comma-separated hex. Default: none, so the admin API accepts no key.
    pub fn api_key_hashes(&self) -> &[[u8; 32]] {
        &self.api_key_hashes
    }

    /// `REDIS_URL`: the shared rate-limit store, as written (it may hold a password). Default
    /// unset: limits are kept in memory, per process.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// `RATE_LIMIT_STORE_FAILURE`: what rate limiting does while the shared store is
    /// unreachable. Default [`StoreFailurePolicy::Local`].
    pub fn rate_limit_store_failure(&self) -> StoreFailurePolicy {
        self.rate_limit_store_failure
    }

    /// `LOG_FORMAT`: how logs are written. Default [`LogFormat::Json`].
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// `SECRET_KEY`: the server's secret, at least 32 bytes. Default unset.
    pub fn secret_key(&self) -> Option<&SecretKey> {
        self.secret_key.as_ref()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            bind,
            secure_headers,
            cors_enabled,
            allowed_origins,
            cors_allow_credentials,
            rate_limit_enabled,
            rate_limit_quota,
            trusted_proxies,
            max_auth_attempts,
            auth_attempt_timeout,
            max_devices_per_user,
            device_registration_timeout,
            session_cleanup_interval,
            api_key_hashes,
            redis_url,
            rate_limit_store_failure,
            log_format,
            secret_key,
        } = self;
        f.debug_struct("Config")
            .field("bind", bind)
            .field("secure_headers", secure_headers)
            .field("cors_enabled", cors_enabled)
            .field("allowed_origins", allowed_origins)
            .field("cors_allow_credentials", cors_allow_credentials)
            .field("rate_limit_enabled", rate_limit_enabled)
            .field("rate_limit_quota", rate_limit_quota)
            .field("trusted_proxies", trusted_proxies)
            .field("max_auth_attempts", max_auth_attempts)
            .field("auth_attempt_timeout", auth_attempt_timeout)
            .field("max_devices_per_user", max_devices_per_user)
            .field("device_registration_timeout", device_registration_timeout)
            .field("session_cleanup_interval", session_cleanup_interval)
            .field("api_key_hashes", &DigestPrefixes(api_key_hashes))
            .field("redis_url", &redis_url.as_deref().map(mask_url_password))
            .field("rate_limit_store_failure", rate_limit_store_failure)
            .field("log_format", log_format)
            .field("secret_key", secret_key)
            .finish()
    }
}

/// Shows SHA-256 digests by their first 4 bytes, e.g. `["3f2a9c1d…"]`.
struct DigestPrefixes<'a>(&'a [[u8; 32]]);

impl fmt::Debug for DigestPrefixes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefixes = self
            .0
            .iter()
            .map(|digest| format!("{}…", hex::encode(&digest[..4])));
        f.debug_list().entries(prefixes).finish()
    }
}

pub use crate::limiter::StoreFailurePolicy;

/// How logs are written: `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// `json`: one JSON object per line, for log collectors. The default.
    #[default]
    Json,
    /// `pretty`: human-readable lines, for a terminal.
    Pretty,
}

pub use crate::secret::SecretKey;

/// Reads variables and collects the problems of bad values.
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: ConfigErrors,
}

impl Env<'_> {
    /// The raw value of `name`, or `None` when it is unset, empty or only whitespace.
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value of `name` parsed from its trimmed text, or `default` when unset; a parse
    /// failure is recorded and gives `default` too (the configuration then fails anyway).
    fn value<T>(
        &mut self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match parse(raw.trim()) {
            Ok(value) => value,
            Err(message) => {
                self.errors.push(name, message);
                default
            }
        }
    }

    /// A list value whose parser may find several problems; empty when unset.
    fn values<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<Vec<T>, Vec<String>>,
    ) -> Vec<T> {
        let Some(raw) = self.raw(name) else {
            return Vec::new();
        };
        match parse(raw.trim()) {
            Ok(values) => values,
            Err(messages) => {
                for message in messages {
                    self.errors.push(name, message);
                }
                Vec::new()
            }
        }
    }

    /// `SECRET_KEY`: untrimmed, never shown.
    fn secret(&mut self, name: &'static str) -> Option<SecretKey> {
        let raw = self.raw(name)?;
        if raw.trim() != raw {
            self.errors.push(
                name,
                "starts or ends with whitespace, which is usually a copy-paste mistake (the \
                 value is not shown); expected the secret alone",
            );
            return None;
        }
        self.errors.take(SecretKey::new(raw))
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

/// The quota of `RATE_LIMIT_REQUESTS_PER_MINUTE` per `RATE_LIMIT_WINDOW_SECONDS`, its problems
/// (if any) renamed after those variables.
fn rate_limit_quota(requests: u32, window: Duration, errors: &mut ConfigErrors) -> Option<Quota> {
    match Quota::per(requests, window) {
        Ok(quota) => Some(quota),
        Err(error) => {
            for problem in error.problems() {
                let setting = match problem.setting() {
                    "quota.window" => RATE_LIMIT_WINDOW_SECONDS,
                    _ => RATE_LIMIT_REQUESTS_PER_MINUTE,
                };
                errors.push(
                    setting,
                    format!(
                        "{requests} per {} s cannot be a rate limit: {}",
                        window.as_secs(),
                        problem.message()
                    ),
                );
            }
            None
        }
    }
}

/// Reads the `.env`-syntax file at `path` into a map (the first assignment of a name wins). A
/// missing file is an empty map; an unreadable or malformed one records problems under `.env`.
fn read_dotenv(path: &Path, errors: &mut ConfigErrors) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return vars,
        Err(e) => {
            errors.push(
                DOTENV,
                format!(
                    "{} cannot be read ({e}); expected a readable file of KEY=VALUE lines, \
                     or no file",
                    path.display()
                ),
            );
            return vars;
        }
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = line_number(bytes, e.valid_up_to());
            errors.push(
                DOTENV,
                format!(
                    "line {line} is not valid UTF-8 (the line is not shown); expected UTF-8 text"
                ),
            );
            return vars;
        }
    };
    let mut cursor = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                vars.entry(key).or_insert(value);
            }
            Err(dotenvy::Error::LineParse(fragment, _)) => {
                let place = match locate(text, &mut cursor, &fragment) {
                    Some((number, line)) => match line_key(line) {
                        Some(key) => format!("line {number} (the assignment of {key})"),
                        None => format!("line {number}"),
                    },
                    None => "a line".to_owned(),
                };
                errors.push(
                    DOTENV,
                    format!(
                        "{place} cannot be parsed (its contents are not shown); expected \
                         KEY=VALUE, a # comment or a blank line, with quotes around a value \
                         that holds spaces or # and every quote closed"
                    ),
                );
            }
            Err(other) => {
                errors.push(
                    DOTENV,
                    format!(
                        "{} cannot be read ({other}); expected a readable file of KEY=VALUE lines",
                        path.display()
                    ),
                );
                break;
            }
        }
    }
    vars
}

/// The 1-based line of byte `offset` in `bytes`.
fn line_number(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the text dotenvy could not parse (a line, or the value part of one) in the file, at
/// or after `cursor`: its 1-based line number and the whole physical line it starts on.
fn locate<'t>(text: &'t str, cursor: &mut usize, fragment: &str) -> Option<(usize, &'t str)> {
    if fragment.trim().is_empty() {
        return None;
    }
    let start = *cursor + text.get(*cursor..)?.find(fragment)?;
    *cursor = start + fragment.len();
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    Some((
        line_number(text.as_bytes(), start),
        &text[line_start..line_end],
    ))
}

/// The variable name a `.env` line assigns (`KEY=…` or `export KEY=…`), if it reads as one.
fn line_key(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    };
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && rest.trim_start().starts_with('=');
    valid.then_some(key)
}

/// A value quoted and escaped for a message, cut after 40 characters.
fn show(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// The non-empty items of a comma-separated list, trimmed, with their 1-based position among
/// all items (empty ones included, so positions match what a person counts).
fn list_items(value: &str) -> impl Iterator<Item = (usize, &str)> {
    value
        .split(',')
        .map(str::trim)
        .enumerate()
        .filter(|(_, item)| !item.is_empty())
        .map(|(i, item)| (i + 1, item))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    const TRUE: [&str; 4] = ["true", "1", "yes", "on"];
    const FALSE: [&str; 4] = ["false", "0", "no", "off"];
    if TRUE.iter().any(|t| value.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|f| value.eq_ignore_ascii_case(f)) {
        Ok(false)
    } else {
        Err(format!(
            "{} is not a boolean; expected one of true, false, 1, 0, yes, no, on, off",
            show(value)
        ))
    }
}

fn parse_socket_addr(value: &str) -> Result<SocketAddr, String> {
    const EXPECTED: &str = "expected an IP address and port such as 127.0.0.1:8000, \
                            0.0.0.0:8000 or [::1]:8000 (host names are not resolved)";
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if value.parse::<IpAddr>().is_ok() {
        return Err(format!("{} has no port; {EXPECTED}", show(value)));
    }
    Err(format!(
        "{} is not an IP address and port; {EXPECTED}",
        show(value)
    ))
}

/// A whole number from 1 to `u32::MAX`, described as `noun` in messages.
fn parse_positive(value: &str, noun: &str) -> Result<u32, String> {
    let expected = format!("expected {noun} from 1 to {}", u32::MAX);
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a whole number; {expected}", show(value)));
    }
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{} is out of range; {expected}", show(value))),
    }
}

fn parse_count(value: &str) -> Result<u32, String> {
    parse_positive(value, "an integer")
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    parse_positive(value, "a number of seconds").map(|secs| Duration::from_secs(u64::from(secs)))
}

fn parse_trusted_proxies(value: &str) -> Result<Vec<IpNet>, Vec<String>> {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    for (position, item) in list_items(value) {
        let parsed = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => problems.push(format!(
                "entry {position} ({}) is not an IP address or CIDR range; expected a \
                 comma-separated list such as 10.0.0.0/8, 192.168.1.7, 2001:db8::/32",
                show(item)
            )),
        }
    }
    if problems.is_empty() {
        Ok(nets)
    } else {
        Err(problems)
    }
}

fn parse_api_key_hashes(value: &str) -> Result<Vec<[u8; 32]>, Vec<String>> {
    const EXPECTED: &str = "expected a SHA-256 digest written as 64 hexadecimal characters";
    let mut digests = Vec::new();
    let mut problems = Vec::new();
    for (position, item) in list_items(value) {
        // Never more than the first 8 characters: a misplaced key must not end up in a log.
        let prefix: String = item.chars().take(8).collect();
        let shown = if prefix.len() < item.len() {
            format!("starting {prefix:?}")
        } else {
            format!("{prefix:?}")
        };
        let chars = item.chars().count();
        if !item.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(format!(
                "entry {position} ({shown}) contains a character that is not a hexadecimal \
                 digit; {EXPECTED}"
            ));
        } else if chars != 64 {
            problems.push(format!(
                "entry {position} ({shown}) has {chars} characters; {EXPECTED}"
            ));
        } else {
            match <[u8; 32] as hex::FromHex>::from_hex(item) {
                Ok(digest) => digests.push(digest),
                Err(e) => problems.push(format!("entry {position} ({shown}): {e}; {EXPECTED}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(digests)
    } else {
        Err(problems)
    }
}

fn parse_redis_url(value: &str) -> Result<String, String> {
    const SCHEMES: [&str; 3] = ["redis://", "rediss://", "unix://"];
    const EXPECTED: &str = "expected a URL such as redis://localhost:6379/0, \
                            rediss://user:password@host:6380 or unix:///run/redis.sock";
    let scheme = SCHEMES.iter().find(|scheme| {
        value
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    match scheme {
        None => Err(format!(
            "{} does not start with redis://, rediss:// or unix://; {EXPECTED}",
            show(&mask_url_password(value))
        )),
        Some(scheme) if value.len() == scheme.len() => {
            Err(format!("{} names no server; {EXPECTED}", show(value)))
        }
        Some(_) => Ok(value.to_owned()),
    }
}

/// The URL with the password of its user info (`user:****@`, or `****@` for user info without
/// a colon) and any `pass`/`password` query parameter replaced by `****`. Errs on the side of
/// masking too much: everything up to the last `@` counts as user info.
fn mask_url_password(url: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(authority);
    let mut masked = String::with_capacity(url.len());
    masked.push_str(scheme);
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            match rest[..at].find(':') {
                Some(colon) => {
                    masked.push_str(&rest[..colon]);
                    masked.push_str(":****");
                }
                None => masked.push_str("****"),
            }
            &rest[at..]
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((path, query)) => {
            masked.push_str(path);
            masked.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _))
                        if key.eq_ignore_ascii_case("pass")
                            || key.eq_ignore_ascii_case("password") =>
                    {
                        format!("{key}=****")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            masked.push_str(&params.join("&"));
        }
        None => masked.push_str(after_userinfo),
    }
    masked
}

fn parse_store_failure(value: &str) -> Result<StoreFailurePolicy, String> {
    StoreFailurePolicy::ALL
        .into_iter()
        .find(|policy| value.eq_ignore_ascii_case(policy.name()))
        .ok_or_else(|| {
            format!(
                "{} is not a store failure policy; expected fail-closed, fail-open or local",
                show(value)
            )
        })
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    if value.eq_ignore_ascii_case("json") {
        Ok(LogFormat::Json)
    } else if value.eq_ignore_ascii_case("pretty") {
        Ok(LogFormat::Pretty)
    } else {
        Err(format!(
            "{} is not a log format; expected json or pretty",
            show(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A `.env` file in the temp directory, removed on drop.
    struct TempDotenv(PathBuf);

    impl TempDotenv {
        fn new(contents: &[u8]) -> TempDotenv {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "tower-shield-config-{}-{}.env",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            TempDotenv(path)
        }
    }

    impl Drop for TempDotenv {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn from_lookup_and_dotenv(
        lookup: impl Fn(&str) -> Option<String>,
        path: &Path,
    ) -> Result<Config, ConfigError> {
        Config::load(lookup, Some(path), ConfigErrors::default())
    }

    fn settings(error: &ConfigError) -> Vec<&str> {
        error.problems().iter().map(|p| p.setting()).collect()
    }

    #[test]
    fn dotenv_fills_in_what_the_lookup_leaves_unset() {
        let file = TempDotenv::new(
            b"# settings\nBIND=0.0.0.0:9000\nexport LOG_FORMAT=pretty\n\
              MAX_AUTH_ATTEMPTS=7 # seven\n\
              CORS_ENABLED=\"yes\"\nMAX_AUTH_ATTEMPTS=8\n",
        );
        let config = from_lookup_and_dotenv(|_| None, &file.0).unwrap();
        assert_eq!(config.bind(), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.log_format(), LogFormat::Pretty);
        assert_eq!(
            config.max_auth_attempts(),
            7,
            "the first assignment in the file wins"
        );
        assert!(config.cors_enabled());
    }

    #[test]
    fn lookup_values_win_over_dotenv_even_when_empty() {
        let file =
            TempDotenv::new(b"BIND=0.0.0.0:9000\nLOG_FORMAT=pretty\nMAX_DEVICES_PER_USER=3\n");
        let config = from_lookup_and_dotenv(
            |name| match name {
                "BIND" => Some("127.0.0.1:7000".into()),
                "LOG_FORMAT" => Some(String::new()),
                _ => None,
            },
            &file.0,
        )
        .unwrap();
        assert_eq!(config.bind(), "127.0.0.1:7000".parse().unwrap());
        assert_eq!(
            config.log_format(),
            LogFormat::Json,
            "set-but-empty shadows the file, then defaults"
        );
        assert_eq!(config.max_devices_per_user(), 3);
    }

    #[test]
    fn a_missing_dotenv_is_no_error() {
        let path =
            std::env::temp_dir().join(format!("tower-shield-missing-{}.env", std::process::id()));
        let config = from_lookup_and_dotenv(|_| None, &path).unwrap();
        assert_eq!(config.bind(), default_bind());
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let file = TempDotenv::new(b"\xEF\xBB\xBFBIND=0.0.0.0:9001\n");
        assert_eq!(
            from_lookup_and_dotenv(|_| None, &file.0)
                .unwrap()
                .bind()
                .port(),
            9001
        );
    }

    #[test]
    fn malformed_dotenv_lines_are_reported_by_number_without_contents() {
        let file = TempDotenv::new(
            b"BIND=0.0.0.0:9000\nSECRET_KEY=hunter2 hunter3 hunter4 hunter5 hunter6\n\
              !!!garbage\nLOG_FORMAT=pretty\n",
        );
        let err = from_lookup_and_dotenv(|_| None, &file.0).unwrap_err();
        assert_eq!(settings(&err), [".env", ".env"]);
        let text = err.to_string();
        assert!(
            text.contains("line 2 (the assignment of SECRET_KEY)"),
            "{text}"
        );
        assert!(text.contains("line 3 cannot be parsed"), "{text}");
        assert!(!text.contains("hunter"), "{text}");
        assert!(!text.contains("garbage"), "{text}");
    }

    #[test]
    fn an_unclosed_quote_is_reported() {
        let file = TempDotenv::new(b"BIND=0.0.0.0:9000\nSECRET_KEY=\"abc\nLOG_FORMAT=pretty\n");
        let err = from_lookup_and_dotenv(|_| None, &file.0).unwrap_err();
        assert_eq!(settings(&err), [".env"]);
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(!err.to_string().contains("abc"), "{err}");
    }

    #[test]
    fn dotenv_problems_and_variable_problems_come_together() {
        let file = TempDotenv::new(b"LOG_FORMAT=yaml\nnot a line\n");
        let err = from_lookup_and_dotenv(
            |name| (name == "CORS_ENABLED").then(|| "perhaps".into()),
            &file.0,
        )
        .unwrap_err();
        assert_eq!(settings(&err), [".env", "CORS_ENABLED", "LOG_FORMAT"]);
    }

    #[test]
    fn invalid_utf8_in_dotenv_is_reported_by_line() {
        let file = TempDotenv::new(b"BIND=0.0.0.0:9000\nSECRET_KEY=\xff\xfe\n");
        let err = from_lookup_and_dotenv(|_| None, &file.0).unwrap_err();
        assert_eq!(settings(&err), [".env"]);
        assert!(
            err.to_string().contains("line 2 is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_dotenv_is_reported() {
        // A directory cannot be read as a file.
        let dir = std::env::temp_dir().join(format!("tower-shield-dir-{}.env", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = from_lookup_and_dotenv(|_| None, &dir).unwrap_err();
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(settings(&err), [".env"]);
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }

    #[test]
    fn every_variable_read_is_listed() {
        let asked = RefCell::new(Vec::new());
        Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        assert_eq!(asked.into_inner(), VARIABLES);
    }

    #[test]
    fn masking_hides_passwords_in_every_position() {
        assert_eq!(
            mask_url_password("redis://:pw@host:6379/0"),
            "redis://:****@host:6379/0"
        );
        assert_eq!(
            mask_url_password("rediss://user:p@ss:w@host"),
            "rediss://user:****@host"
        );
        assert_eq!(
            mask_url_password("redis://secret@host"),
            "redis://****@host"
        );
        assert_eq!(
            mask_url_password("user:pw@host:6379"),
            "user:****@host:6379"
        );
        assert_eq!(
            mask_url_password("unix:///run/redis.sock?db=1&pass=pw"),
            "unix:///run/redis.sock?db=1&pass=****"
        );
        assert_eq!(mask_url_password("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn digests_decode_in_either_case() {
        let hex = "00ff10aB".repeat(8);
        let digest = <[u8; 32] as hex::FromHex>::from_hex(&hex).unwrap();
        assert_eq!(&digest[..4], &[0x00, 0xff, 0x10, 0xab]);
    }

    #[test]
    fn line_keys_are_found_only_in_assignments() {
        assert_eq!(line_key("SECRET_KEY=abc def"), Some("SECRET_KEY"));
        assert_eq!(line_key("  export  A.B = x y"), Some("A.B"));
        assert_eq!(line_key("export=1 2"), Some("export"));
        assert_eq!(line_key("!!!garbage"), None);
        assert_eq!(line_key("KEY value"), None);
    }
}
