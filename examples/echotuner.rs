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
//! | `GET /admin/rate-limits` | 403 until API-key authentication is configured |
//!
//! # Environment
//!
//! Every variable of [`tower_shield::Config`] is read (from the process environment, then a
//! `.env` file in the working directory): `BIND`, `SECURE_HEADERS`, `CORS_ENABLED`,
//! `ALLOWED_ORIGINS`, `CORS_ALLOW_CREDENTIALS`, `RATE_LIMIT_ENABLED`,
//! `RATE_LIMIT_REQUESTS_PER_MINUTE`, `RATE_LIMIT_WINDOW_SECONDS`, `TRUSTED_PROXIES`,
//! `MAX_AUTH_ATTEMPTS`, `AUTH_ATTEMPT_TIMEOUT`, `MAX_DEVICES_PER_USER`,
//! `DEVICE_REGISTRATION_TIMEOUT`, `SESSION_CLEANUP_INTERVAL`, `API_KEY_HASHES`, `REDIS_URL`,
//! `RATE_LIMIT_STORE_FAILURE`, `LOG_FORMAT` and `SECRET_KEY`.
//!
//! For now only `BIND` changes behaviour. The rest is validated at start-up, so that a bad
//! value stops the server with a message naming the variable (exit code 2), and each
//! protection layer wires its own settings as it arrives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_shield::Config;

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

    // Signal handlers go in before the socket opens, so a SIGTERM sent as soon as the server
    // reports that it listens already shuts it down gracefully.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("echotuner: cannot install the SIGTERM handler: {error}");
            return ExitCode::FAILURE;
        }
    };

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

    let app = app(&config);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
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

/// The EchoTuner routes. Later protection layers wrap this router; `config` is what they will
/// be built from.
fn app(_config: &Config) -> Router {
    Router::new()
        .route("/config/health", get(health))
        .route("/auth/init", post(auth_init))
        .route("/playlist/generate", post(playlist))
        .route("/playlist/refine", post(playlist))
        .route("/search", get(search))
        .route("/admin/rate-limits", get(admin_rate_limits))
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

/// The admin API stays shut until the API-key layer guards it.
async fn admin_rate_limits() -> impl IntoResponse {
    let problem = json!({
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "the admin API is disabled until API-key authentication is configured",
    });
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/problem+json")],
        problem.to_string(),
    )
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
