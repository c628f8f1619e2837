//! The reference server end to end: the example binary started on a free port, spoken to over
//! plain HTTP/1.1, stopped with SIGTERM.

#![cfg(all(
    unix,
    feature = "axum",
    feature = "rate-limit",
    feature = "secure-headers",
    feature = "api-key"
))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `target/<profile>/examples/echotuner`, which a plain `cargo test` builds before running
/// tests (with `cargo test --test echotuner` alone, build it first: `cargo build --examples`).
fn binary() -> PathBuf {
    example("echotuner")
}

/// `target/<profile>/examples/<name>`.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        Server::start_example("echotuner", env)
    }

    fn start_example(name: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(example(name));
        cmd.env_clear()
            .env("BIND", "127.0.0.1:0")
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} example (built by cargo test): {e}"));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let line = lines.next().expect("a first line").expect("utf-8");
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // keep draining stderr so the server never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    /// Sends one request and returns (status, headers lowercased, body).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .expect("a complete response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }

    fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_reference_server_applies_the_guides_limits_and_headers() {
    let server = Server::start(&[("RATE_LIMIT_REQUESTS_PER_MINUTE", "100")]);

    let (status, headers, body) = server.send("GET", "/config/health", &[], "");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&headers, "x-xss-protection"), Some("0"));
    assert!(header(&headers, "ratelimit").is_none(), "health is exempt");

    // POST /auth/init: 5 per 60 s per IP
    for _ in 0..5 {
        let (status, headers, _) = server.send("POST", "/auth/init", &[], "");
        assert_eq!(status, 200);
        assert!(header(&headers, "ratelimit-policy").is_some());
    }
    let (status, headers, body) = server.send("POST", "/auth/init", &[], "");
    assert_eq!(status, 429);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(header(&headers, "retry-after"), Some("12"));
    assert_eq!(
        header(&headers, "x-frame-options"),
        Some("DENY"),
        "429s carry the security headers"
    );
    assert!(body.contains("\"violated-policies\":[\"auth\"]"), "{body}");

    // the device scope requires X-Device-ID
    let (status, _, body) = server.send("POST", "/playlist/generate", &[], "{}");
    assert_eq!(status, 400);
    assert!(body.contains("device id required"), "{body}");
    let body =
        r#"{"prompt": "I <3 jazz & rock 'n' roll", "session_id": "s-1", "device_id": "device-1"}"#;
    let json = [
        ("X-Device-ID", "device-1"),
        ("Content-Type", "application/json"),
    ];
    let (status, _, _) = server.send("POST", "/playlist/generate", &json, body);
    assert_eq!(status, 200);
    // markup in the prompt is refused by name, without echoing it
    let hostile = r#"{"prompt": "<img src=x onerror=alert(1)>", "session_id": "s-1", "device_id": "device-1"}"#;
    let (status, headers, body) = server.send("POST", "/playlist/generate", &json, hostile);
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert!(
        body.contains("prompt") && !body.contains("onerror"),
        "{body}"
    );

    assert_eq!(server.stop(), Some(0), "SIGTERM shuts down gracefully");
}

/// `examples/keygen`'s one line of JSON: (key, hash).
fn keygen() -> (String, String) {
    let out = Command::new(binary().with_file_name("keygen"))
        .output()
        .expect("run the keygen example");
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let json: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON object");
    (
        json["key"].as_str().expect("key").to_string(),
        json["hash"].as_str().expect("hash").to_string(),
    )
}

#[test]
fn the_admin_api_needs_a_key_and_locks_out_guessers() {
    let (key, hash) = keygen();
    let server = Server::start(&[("API_KEY_HASHES", &hash), ("MAX_AUTH_ATTEMPTS", "3")]);
    let admin =
        |auth: &str| server.send("GET", "/admin/rate-limits", &[("Authorization", auth)], "");

    let (status, headers, body) = admin(&format!("Bearer {key}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "[]");
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));

    let (status, headers, _) = server.send("GET", "/admin/rate-limits", &[], "");
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let mut wrong = key.clone();
    wrong.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    for _ in 0..3 {
        assert_eq!(admin(&format!("Bearer {wrong}")).0, 401);
    }
    // locked out, even with the right key
    let (status, headers, _) = admin(&format!("Bearer {key}"));
    assert_eq!(status, 429);
    assert!(header(&headers, "retry-after").is_some());
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn json_logs_are_one_object_per_line_whatever_the_client_sends() {
    let mut child = Command::new(binary())
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the echotuner example");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines.next().expect("a first line").expect("utf-8");
    let addr: SocketAddr = line
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .expect("address");
    std::thread::spawn(move || for _ in lines {});
    let server = Server { child, addr };
    // a right-to-left override and a fake log line in the user agent, a key in the query
    let hostile = [
        (
            "User-Agent",
            "\u{202e}gnp.exe INFO authn_login_success admin",
        ),
        ("X-Request-Id", "forged id"),
    ];
    server.send("GET", "/search?q=jazz&api_key=ech_secret", &hostile, "");
    server.send(
        "GET",
        "/admin/rate-limits",
        &[("X-API-Key", "ech_not_a_valid_key")],
        "",
    );
    let mut child = server.child;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    let _ = child.wait();
    let mut records = 0;
    for line in stdout.lines() {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(json.is_object());
        assert!(!line.contains('\u{202e}'), "raw bidi control in {line}");
        assert!(
            !line.contains("ech_secret") && !line.contains("ech_not_a_valid_key"),
            "secret in {line}"
        );
        assert!(
            !line.contains("forged id"),
            "an invalid request id is replaced: {line}"
        );
        records += 1;
    }
    // two completed requests and one failed authentication, nothing forged
    assert_eq!(records, 3, "{stdout}");
}

#[test]
fn a_bad_variable_stops_start_up_naming_it() {
    let out = Command::new(binary())
        .env_clear()
        .env("RATE_LIMIT_WINDOW_SECONDS", "0")
        .env("CORS_ENABLED", "maybe")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the example");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RATE_LIMIT_WINDOW_SECONDS") && stderr.contains("CORS_ENABLED"),
        "{stderr}"
    );

    let out = Command::new(binary())
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "tower_shield=loud")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the example");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RUST_LOG"), "{stderr}");
}

/// Two instances on one Redis: a device's limit and a guesser's lockout hold across both.
#[cfg(feature = "redis")]
#[test]
fn two_instances_on_one_redis_share_the_limits_and_the_lockout() {
    let (key, hash) = keygen();
    let env = [
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("SECRET_KEY", "echotuner-test-secret-of-at-least-32-bytes"),
        ("API_KEY_HASHES", hash.as_str()),
        ("MAX_AUTH_ATTEMPTS", "3"),
        // short, so that a lock left by an earlier run of this test is over
        ("AUTH_ATTEMPT_TIMEOUT", "2"),
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "100000"),
        ("RATE_LIMIT_STORE_FAILURE", "fail-closed"),
    ];
    std::thread::sleep(Duration::from_millis(2100));
    let (a, b) = (Server::start(&env), Server::start(&env));

    // 10 per 300 s per device, whichever instance the requests reach
    let device = format!("dev-{}", std::process::id());
    let json = [
        ("X-Device-ID", device.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = format!(r#"{{"prompt": "jazz", "session_id": "s-1", "device_id": "{device}"}}"#);
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, _, text) = server.send("POST", "/playlist/generate", &json, &body);
        assert_eq!(status, 200, "request {i}: {text}");
    }
    let (status, _, text) = a.send("POST", "/playlist/generate", &json, &body);
    assert_eq!(status, 429, "{text}");
    assert!(
        text.contains("\"violated-policies\":[\"generate\"]"),
        "{text}"
    );

    // three wrong keys on one instance lock the client out of the other
    let admin = |server: &Server, auth: &str| {
        server
            .send("GET", "/admin/rate-limits", &[("Authorization", auth)], "")
            .0
    };
    assert_eq!(admin(&b, &format!("Bearer {key}")), 200);
    let mut wrong = key.clone();
    wrong.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    for _ in 0..3 {
        assert_eq!(admin(&a, &format!("Bearer {wrong}")), 401);
    }
    assert_eq!(admin(&b, &format!("Bearer {key}")), 429);
    assert_eq!(a.stop(), Some(0));
    assert_eq!(b.stop(), Some(0));
}

/// The same protection on plain hyper: headers, limits and a 429 from `Shield`, with hyper's
/// own body type wrapped in `ShieldBody`.
#[test]
fn the_hyper_example_is_protected_by_the_shield() {
    let server = Server::start_example("hyper_server", &[]);
    let (status, headers, body) = server.send("GET", "/", &[], "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"hello":"world"}"#);
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        header(&headers, "ratelimit-policy"),
        Some("\"burst\";q=20;w=1")
    );
    assert!(header(&headers, "x-request-id").is_some());
    // 20 per second: a quick burst of 40 meets the limit
    let statuses: Vec<u16> = (0..40)
        .map(|_| server.send("GET", "/", &[], "").0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    server.stop();
}
