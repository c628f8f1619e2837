//! The reference server: the EchoTuner API surface, behind tower-shield's protection.
//!
//! The handlers are small stubs that return JSON; the point of this example is the protection
//! wrapped around them. Run it with
//!
//! ```text
//! cargo run --release --example echotuner
//! BIND=0.0.0.0:9000 cargo run --release --example echotuner
//! ```
//!
//! and stop it with Ctrl-C or `SIGTERM`; either lets requests in flight finish first.
//!
//! | route | answer |
//! |---|---|
//! | `GET /config/health` | `{"status":"ok"}` |
//! | `POST /auth/init` | a new random `session_id` |
//! | `POST /playlist/generate`, `POST /playlist/refine` | a stub playlist |
//! | `GET /search?q=` | the length of the query and no results |
//! | `GET /admin/rate-limits` | the top rate-limit offenders, for holders of an API key |
//!
//! # Environment
//!
//! Every variable of [`tower_shield::Config`] is read (from the process environment, then a
//! `.env` file in the working directory): `BIND`, `SECURE_HEADERS`, `CORS_ENABLED`,
//! `ALLOWED_ORIGINS`, `CORS_ALLOW_CREDENTIALS`, `RATE_LIMIT_ENABLED`,
//! `RATE_LIMIT_REQUESTS_PER_MINUTE`, `RATE_LIMIT_WINDOW_SECONDS`, `TRUSTED_PROXIES`,
//! `MAX_AUTH_ATTEMPTS`, `AUTH_ATTEMPT_TIMEOUT`, `MAX_DEVICES_PER_USER`,
//! `DEVICE_REGISTRATION_TIMEOUT`, `SESSION_CLEANUP_INTERVAL`, `API_KEY_HASHES`, `REDIS_URL`,
//! `RATE_LIMIT_STORE_FAILURE`, `LOG_FORMAT` and `SECRET_KEY`; and `RUST_LOG`, what is logged
//! (`info` when unset: a line per request and every security event; `warn`: the security
//! events only).
//!
//! A bad value stops the server with a message naming the variable (exit code 2). Acting on
//! them now: `BIND`; `CORS_ENABLED`, `ALLOWED_ORIGINS`, `CORS_ALLOW_CREDENTIALS` (CORS);
//! `API_KEY_HASHES`, `MAX_AUTH_ATTEMPTS`, `AUTH_ATTEMPT_TIMEOUT` (the admin API);
//! `SECURE_HEADERS` (the security headers, HSTS believing
//! `X-Forwarded-Proto` only from `TRUSTED_PROXIES`); `RATE_LIMIT_ENABLED`,
//! `RATE_LIMIT_REQUESTS_PER_MINUTE`, `RATE_LIMIT_WINDOW_SECONDS`, `TRUSTED_PROXIES`,
//! `MAX_DEVICES_PER_USER`, `DEVICE_REGISTRATION_TIMEOUT` and `SESSION_CLEANUP_INTERVAL` (the
//! rate limits below); `LOG_FORMAT` (`json`: one JSON object per line on stdout; `pretty`).
//! `REDIS_URL` (built with `--features redis`; set without it, the server stops with exit code
//! 2) keeps the rate limits in Redis, shared by every instance, and `RATE_LIMIT_STORE_FAILURE`
//! decides while Redis cannot answer (`fail-closed`: 503, `fail-open`, `local`: each instance
//! alone); start-up does not need Redis to be up. With `REDIS_URL`, `SECRET_KEY` is required:
//! instances derive the keys of device and session ids from it, so set the same value on every
//! instance. The API-key lockout (`MAX_AUTH_ATTEMPTS`) is then shared too; the device-rotation
//! cap (`MAX_DEVICES_PER_USER`) stays per instance.
//! `SECRET_KEY` is otherwise validated (API-key hashes use a pepper only when asked to).
//!
//! ```text
//! cargo build --release --example echotuner --features redis
//! export REDIS_URL=redis://127.0.0.1:6379/0 SECRET_KEY=$(openssl rand -hex 32)
//! BIND=127.0.0.1:8001 target/release/examples/echotuner &
//! BIND=127.0.0.1:8002 target/release/examples/echotuner &
//! ```
//!
//! # Input validation
//!
//! `X-Device-ID`, when sent, is exactly one `^[A-Za-z0-9_-]{1,64}$`; `/playlist/*` bodies are
//! JSON `{"prompt", "session_id", "device_id"}` with a plain-text prompt of 1 to 500
//! characters after trimming and ids of the same pattern; bodies are at most 64 KiB.
//!
//! # Rate limits
//!
//! | route | limit | per |
//! |---|---|---|
//! | `GET /config/health` | none | |
//! | `POST /auth/init` | 5 per 60 s | client IP |
//! | `POST /playlist/generate` | 10 per 300 s | device (`X-Device-ID`, required) |
//! | `POST /playlist/refine` | 20 per 300 s | device |
//! | `GET /search` | 100 per 60 s | session (`X-Device-ID`, else client IP) |
//! | every route but health | `RATE_LIMIT_REQUESTS_PER_MINUTE` per `RATE_LIMIT_WINDOW_SECONDS` | client IP |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::Method;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_shield::config::{LogFormat, echotuner_input_rules};
#[cfg(feature = "redis")]
use tower_shield::limiter::RedisStore;
use tower_shield::limiter::{EitherStore, MemoryStore, Quota};
use tower_shield::rate_limit::{Policy, RateLimitMonitor, Scope};
use tower_shield::security_log::Coalescer;
use tower_shield::{Config, ConfigError};
use tracing_subscriber::EnvFilter;

/// Exit code for a configuration that cannot work (a bad variable, an address in use).
const EXIT_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("echotuner: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    // Before the socket opens: a configuration the layers cannot honour (a REDIS_URL this
    // build has no support for, say) stops the server at once.
    // `--unprotected` serves the same routes with no protection at all: it exists to measure
    // what the protection costs (`.ci/load.sh`), never to serve real traffic.
    let unprotected = std::env::args().skip(1).any(|arg| arg == "--unprotected");
    let app = if unprotected {
        Ok((routes().merge(admin(None)), None))
    } else {
        app(&config).map(|(app, events)| (app, Some(events)))
    };
    let (app, events) = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("echotuner: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let filter = match log_filter() {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("echotuner: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.log_format(), filter);
    // The summary of a flood that stops is logged within a second of its window's end, not
    // only with the next request.
    if let Some(Err(error)) = events
        .as_ref()
        .map(|e| e.spawn_flusher(Duration::from_secs(1)))
    {
        eprintln!("echotuner: no flusher thread ({error}); flood summaries wait for a request");
    }

    // Signal handlers go in before the socket opens, so a SIGTERM sent as soon as the server
    // reports that it listens already shuts it down gracefully.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("echotuner: cannot install the SIGTERM handler: {error}");
            return ExitCode::FAILURE;
        }
    };

    if unprotected {
        eprintln!(
            "echotuner: --unprotected: EVERY PROTECTION LAYER IS OFF (for load comparisons only)"
        );
    }
    let listener = match tokio::net::TcpListener::bind(config.bind()).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "echotuner: cannot listen on BIND={}: {error}; expected an address of this host \
                 that no other process listens on",
                config.bind()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let addr = listener.local_addr().unwrap_or(config.bind());
    eprintln!("echotuner listening on http://{addr}");

    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    // Flood summaries still pending are written before the process ends.
    if let Some(events) = events {
        events.flush();
    }
    match served {
        Ok(()) => {
            eprintln!("echotuner stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("echotuner: server error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The EchoTuner routes behind the protection `config` enables: [`Shield`] with the guide's
/// rate limits and the contract's input rules, and an API key on the admin route.
fn app(config: &Config) -> Result<(Router, Arc<Coalescer>), ConfigError> {
    let per = |n, secs| Quota::per(n, Duration::from_secs(secs));
    let (auth, generate, refine, search) =
        (per(5, 60)?, per(10, 300)?, per(20, 300)?, per(100, 60)?);
    let shield = config
        .shield_builder()
        .map_rate_limit(|limits| {
            limits
                .exempt(Method::GET, "/config/health")
                .policy(Policy::new("auth", auth, Scope::ip()).on(Method::POST, "/auth/init"))
                .policy(
                    Policy::new("generate", generate, Scope::device())
                        .on(Method::POST, "/playlist/generate"),
                )
                .policy(
                    Policy::new("refine", refine, Scope::device())
                        .on(Method::POST, "/playlist/refine"),
                )
                .policy(Policy::new("search", search, Scope::session()).on(Method::GET, "/search"))
        })
        .sanitizer(echotuner_input_rules())
        .build()?;
    // Idle keys are evicted on demand at the store's cap; the sweep gives memory back sooner.
    if let Some(memory) = shield.rate_limit().and_then(|l| l.store().memory()) {
        if let Err(error) = memory.spawn_sweeper(config.session_cleanup_interval()) {
            eprintln!("echotuner: no sweeper thread ({error}); idle keys are evicted on demand");
        }
    }
    // The admin API: the rate limiter's top offenders, for holders of a key in API_KEY_HASHES,
    // with MAX_AUTH_ATTEMPTS / AUTH_ATTEMPT_TIMEOUT lockout counted in the limiter's store.
    let limiter = shield.rate_limit();
    // Every layer's security events share the log's flood control, flushed at shutdown.
    let events = shield.security_log().coalescer().clone();
    let keys = config
        .require_api_key_builder(config.key_store())?
        .coalescer(events.clone());
    // With REDIS_URL, the lockout is shared by every instance too, through the rate limit's
    // store (one connection, one circuit breaker, RATE_LIMIT_STORE_FAILURE for both).
    let store = match (limiter, config.redis_url()) {
        (Some(l), _) => l.store().clone(),
        #[cfg(feature = "redis")]
        (None, Some(url)) => Arc::new(EitherStore::from(
            RedisStore::builder(url)
                .on_failure(config.rate_limit_store_failure())
                .build()?,
        )),
        _ => Arc::new(EitherStore::from(
            MemoryStore::builder().max_keys(100_000).build()?,
        )),
    };
    let keys = keys.limiter_store(store);
    let keys = keys.build()?;
    let admin = admin(limiter.map(|l| l.monitor().clone())).route_layer(keys);
    Ok((routes().merge(admin).layer(shield), events))
}

/// The EchoTuner API, unprotected.
fn routes() -> Router {
    Router::new()
        .route("/config/health", get(health))
        .route("/auth/init", post(auth_init))
        .route("/playlist/generate", post(playlist))
        .route("/playlist/refine", post(playlist))
        .route("/search", get(search))
}

/// The admin API: the rate limiter's top offenders (an empty list without a limiter).
fn admin(monitor: Option<Arc<RateLimitMonitor>>) -> Router {
    Router::new().route(
        "/admin/rate-limits",
        get(move || admin_rate_limits(monitor.clone())),
    )
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A new session: 128 random bits as 32 lowercase hex digits.
async fn auth_init() -> Json<Value> {
    let bytes: [u8; 16] = rand::random();
    let session_id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Json(json!({ "session_id": session_id }))
}

/// A fixed playlist: nothing from the request is echoed back.
async fn playlist() -> Json<Value> {
    Json(json!({
        "playlist": {
            "name": "EchoTuner mix",
            "tracks": [
                { "title": "Signal", "artist": "The Shields", "duration_seconds": 214 },
                { "title": "Token Bucket", "artist": "GCRA", "duration_seconds": 187 },
                { "title": "Graceful Shutdown", "artist": "SIGTERM", "duration_seconds": 242 },
            ],
        },
    }))
}

/// Reports how long the query is (in characters), never the query itself.
async fn search(Query(params): Query<HashMap<String, String>>) -> Json<Value> {
    let query_length = params.get("q").map_or(0, |q| q.chars().count());
    Json(json!({ "query_length": query_length, "results": [] }))
}

/// The clients refused most, per policy (bounded: the monitor keeps a fixed number of
/// counters).
async fn admin_rate_limits(monitor: Option<Arc<RateLimitMonitor>>) -> Json<Value> {
    Json(monitor.map_or_else(|| json!([]), |m| m.top_json(20)))
}

/// Logs to stdout: `LOG_FORMAT=json` gives exactly one JSON object per line (start-up messages
/// go to stderr), `pretty` is for people.
fn init_logging(format: LogFormat, filter: EnvFilter) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
    if let Err(error) = installed {
        eprintln!("echotuner: logging is not set up: {error}");
    }
}

/// What is logged: `RUST_LOG` in `tracing-subscriber`'s syntax, `info` when unset (every
/// request's completion line and every security event). `RUST_LOG=warn` keeps the security
/// events and drops the per-request lines.
fn log_filter() -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives).map_err(|error| {
            format!("RUST_LOG={directives:?} is not a valid filter ({error}); expected e.g. `info` or `warn,tower_shield=info`")
        }),
        Err(std::env::VarError::NotPresent) => Ok(EnvFilter::new("info")),
        Err(std::env::VarError::NotUnicode(_)) => Err("RUST_LOG is not valid UTF-8".into()),
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM. The handlers are installed when this is called.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                eprintln!("echotuner: cannot listen for Ctrl-C: {error}");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            terminate.recv().await;
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => eprintln!("echotuner: Ctrl-C received, shutting down"),
            () = terminate => eprintln!("echotuner: SIGTERM received, shutting down"),
        }
    })
}
