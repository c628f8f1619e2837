//! Prints a new API key and its hash as one line of JSON: `{"key": "...", "hash": "..."}`.
//!
//! ```text
//! cargo run --example keygen
//! cargo run --example keygen -- --pepper     # hash = HMAC-SHA-256 keyed by SECRET_KEY
//! ```
//!
//! Give the key to its owner once; put the hash in `API_KEY_HASHES` (comma-separated). The
//! hash is the SHA-256 hex of the key string, as the EchoTuner guide stores it
//! (`hashlib.sha256(key.encode()).hexdigest()`). With `--pepper` it is HMAC-SHA-256 keyed by
//! `SECRET_KEY` (from the environment or `.env`, as the server reads it), for a server built
//! with `RequireApiKeyBuilder::pepper`. `API_KEY_PREFIX` chooses another prefix (default
//! `ech_`). Errors go to standard error with exit status 2.

#[cfg(feature = "api-key")]
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    use tower_shield::Config;
    use tower_shield::api_key::{ApiKey, KeyHasher, KeyPrefix};

    fn fail(message: impl std::fmt::Display) -> ExitCode {
        eprintln!("keygen: {message}");
        ExitCode::from(2)
    }

    let mut pepper = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--pepper" => pepper = true,
            other => {
                return fail(format!(
                    "unknown argument {other:?}; usage: keygen [--pepper]"
                ));
            }
        }
    }
    let prefix = match std::env::var("API_KEY_PREFIX") {
        Ok(p) => KeyPrefix::new(p),
        Err(_) => KeyPrefix::new(tower_shield::config::ECHOTUNER_KEY_PREFIX),
    };
    let prefix = match prefix {
        Ok(prefix) => prefix,
        Err(e) => return fail(format!("API_KEY_PREFIX: {e}")),
    };
    let hasher = if pepper {
        let config = match Config::from_env() {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        match config.secret_key() {
            Some(secret) => KeyHasher::from_secret_key(secret),
            None => return fail("--pepper needs SECRET_KEY (at least 32 bytes)"),
        }
    } else {
        KeyHasher::sha256()
    };
    let key = match ApiKey::generate(&prefix) {
        Ok(key) => key,
        Err(e) => return fail(e),
    };
    let hash = hasher.digest(&key).to_hex();
    // Fixed member order, one line; both strings are plain ASCII but are escaped anyway.
    println!(
        "{{\"key\": {}, \"hash\": {}}}",
        serde_json::Value::from(key.expose_secret()),
        serde_json::Value::from(hash)
    );
    ExitCode::SUCCESS
}

#[cfg(not(feature = "api-key"))]
fn main() {
    eprintln!("keygen needs the `api-key` feature (on by default)");
    std::process::exit(2);
}
