//! The same protection on plain hyper, without axum: [`Shield`] from the environment (security
//! log, security headers, CORS when `CORS_ENABLED`, the per-IP rate limit plus a burst limit)
//! around a `service_fn`.
//!
//! ```text
//! cargo run --example hyper_server            # listens on 127.0.0.1:8001, or BIND
//! curl -i http://127.0.0.1:8001/
//! ```
//!
//! hyper does not tell a service who its peer is, so the accept loop puts the connection's
//! address into every request as a [`PeerAddr`] extension, which every tower-shield layer
//! reads. Stop it with Ctrl-C.

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, service_fn};
use tower_shield::client_ip::PeerAddr;
use tower_shield::limiter::Quota;
use tower_shield::problem::ShieldBody;
use tower_shield::rate_limit::{Policy, Scope};
use tower_shield::{Config, ConfigError, ShieldLayer};

async fn hello(_req: Request<ShieldBody<Incoming>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"{\"hello\":\"world\"}")));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[tokio::main]
async fn main() -> ExitCode {
    // security events and request spans, as text on stdout
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .try_init();
    let config = match Config::from_lookup(|name| match name {
        "BIND" => std::env::var(name)
            .ok()
            .or_else(|| Some("127.0.0.1:8001".into())),
        _ => std::env::var(name).ok(),
    }) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("hyper_server: {error}");
            return ExitCode::from(2);
        }
    };
    let shield = match shield(&config) {
        Ok(shield) => shield,
        Err(error) => {
            eprintln!("hyper_server: {error}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.bind()).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "hyper_server: cannot listen on BIND={}: {error}",
                config.bind()
            );
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().unwrap_or(config.bind());
    eprintln!("hyper_server listening on http://{addr}");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("hyper_server: accept failed: {error}");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        // One service per connection, knowing its peer address; the layers share their state.
        let service = ServiceBuilder::new()
            // The input sanitizer hands on the bodies it has read as bytes: `ShieldBody` can
            // carry either those or hyper's own.
            .map_request(move |req: Request<Incoming>| {
                let mut req = req.map(ShieldBody::inner);
                req.extensions_mut().insert(PeerAddr(peer));
                req
            })
            .layer(shield.clone())
            .service(service_fn(hello));
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = connection.await {
                eprintln!("hyper_server: connection from {peer}: {error}");
            }
        });
    }
}

/// The shield, built once from the environment: a bad value is reported by its name.
fn shield(config: &Config) -> Result<ShieldLayer, ConfigError> {
    let burst = Quota::per_second(20)?;
    config
        .shield_builder()
        .map_rate_limit(|limits| limits.policy(Policy::new("burst", burst, Scope::ip())))
        .build()
}
