//! `Config` seen from outside: the EchoTuner variables through `Config::from_lookup`.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use proptest::prelude::*;
use tower_shield::config::{LogFormat, SecretKey, StoreFailurePolicy};
use tower_shield::{Config, ConfigError};

mod common;
use common::{config, try_config};

fn err(vars: &[(&str, &str)]) -> ConfigError {
    match try_config(vars) {
        Ok(config) => panic!("{vars:?} should be refused, got {config:?}"),
        Err(e) => e,
    }
}

fn settings(error: &ConfigError) -> Vec<&str> {
    error.problems().iter().map(|p| p.setting()).collect()
}

/// The only problem of `vars`, which must concern `name`; returns its message.
fn only_problem(vars: &[(&str, &str)], name: &str) -> String {
    let error = err(vars);
    assert_eq!(settings(&error), [name], "{error}");
    error.problems()[0].message().to_owned()
}

const HASH_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const HASH_B: &str = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752";

#[test]
fn defaults() {
    let c = config(&[]);
    assert_eq!(c.bind(), SocketAddr::from(([127, 0, 0, 1], 8000)));
    assert!(c.secure_headers());
    assert!(!c.cors_enabled());
    assert!(c.allowed_origins().is_empty());
    assert!(c.cors_allow_credentials());
    assert!(c.rate_limit_enabled());
    assert_eq!(c.rate_limit_quota().requests(), 60);
    assert_eq!(c.rate_limit_quota().window(), Duration::from_secs(60));
    assert!(c.trusted_proxies().is_empty());
    assert_eq!(c.max_auth_attempts(), 5);
    assert_eq!(c.auth_attempt_timeout(), Duration::from_secs(300));
    assert_eq!(c.max_devices_per_user(), 10);
    assert_eq!(c.device_registration_timeout(), Duration::from_secs(1800));
    assert_eq!(c.session_cleanup_interval(), Duration::from_secs(300));
    assert!(c.api_key_hashes().is_empty());
    assert_eq!(c.redis_url(), None);
    assert_eq!(c.rate_limit_store_failure(), StoreFailurePolicy::Local);
    assert_eq!(c.log_format(), LogFormat::Json);
    assert!(c.secret_key().is_none());
}

#[test]
fn empty_and_blank_values_count_as_unset() {
    for blank in ["", "   ", "\t"] {
        let c = config(&[
            ("BIND", blank),
            ("SECURE_HEADERS", blank),
            ("RATE_LIMIT_REQUESTS_PER_MINUTE", blank),
            ("AUTH_ATTEMPT_TIMEOUT", blank),
            ("TRUSTED_PROXIES", blank),
            ("API_KEY_HASHES", blank),
            ("REDIS_URL", blank),
            ("LOG_FORMAT", blank),
            ("SECRET_KEY", blank),
        ]);
        assert_eq!(c.bind().port(), 8000);
        assert!(c.secure_headers());
        assert_eq!(c.rate_limit_quota().requests(), 60);
        assert_eq!(c.auth_attempt_timeout(), Duration::from_secs(300));
        assert!(c.trusted_proxies().is_empty());
        assert!(c.api_key_hashes().is_empty());
        assert!(c.redis_url().is_none());
        assert!(c.secret_key().is_none());
    }
}

#[test]
fn bind() {
    assert_eq!(
        config(&[("BIND", "0.0.0.0:9000")]).bind(),
        SocketAddr::from(([0, 0, 0, 0], 9000))
    );
    assert_eq!(
        config(&[("BIND", " [::1]:8443 ")]).bind().to_string(),
        "[::1]:8443"
    );
    let message = only_problem(&[("BIND", "localhost:8000")], "BIND");
    assert!(
        message.contains("\"localhost:8000\" is not an IP address and port"),
        "{message}"
    );
    assert!(message.contains("127.0.0.1:8000"), "{message}");
    let message = only_problem(&[("BIND", "127.0.0.1")], "BIND");
    assert!(message.contains("has no port"), "{message}");
    only_problem(&[("BIND", "127.0.0.1:99999")], "BIND");
}

#[test]
fn booleans_accept_the_usual_spellings_in_any_case() {
    let names = [
        "SECURE_HEADERS",
        "CORS_ENABLED",
        "CORS_ALLOW_CREDENTIALS",
        "RATE_LIMIT_ENABLED",
    ];
    let read = |c: &Config| {
        [
            c.secure_headers(),
            c.cors_enabled(),
            c.cors_allow_credentials(),
            c.rate_limit_enabled(),
        ]
    };
    for (spelling, expected) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("Yes", true),
        ("on", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("no", false),
        ("OFF", false),
    ] {
        let vars: Vec<_> = names.iter().map(|&n| (n, spelling)).collect();
        assert_eq!(read(&config(&vars)), [expected; 4], "{spelling}");
    }
    for name in names {
        let message = only_problem(&[(name, "enabled")], name);
        assert_eq!(
            message,
            "\"enabled\" is not a boolean; expected one of true, false, 1, 0, yes, no, on, off"
        );
    }
}

#[test]
fn allowed_origins_are_split_trimmed_and_empty_items_dropped() {
    let c = config(&[(
        "ALLOWED_ORIGINS",
        " https://echotuner.app ,,https://admin.echotuner.app, ",
    )]);
    assert_eq!(
        c.allowed_origins(),
        ["https://echotuner.app", "https://admin.echotuner.app"]
    );
}

#[test]
fn rate_limit_quota() {
    let c = config(&[
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "100"),
        ("RATE_LIMIT_WINDOW_SECONDS", "30"),
    ]);
    assert_eq!(c.rate_limit_quota().requests(), 100);
    assert_eq!(c.rate_limit_quota().window(), Duration::from_secs(30));
    assert_eq!(c.rate_limit_quota().burst(), 100);
    let c = config(&[("RATE_LIMIT_REQUESTS_PER_MINUTE", "4294967295")]);
    assert_eq!(c.rate_limit_quota().requests(), u32::MAX);
}

#[test]
fn the_message_says_what_is_wrong_and_what_is_accepted() {
    let error = err(&[("RATE_LIMIT_REQUESTS_PER_MINUTE", "abc")]);
    assert_eq!(
        error.to_string(),
        "invalid configuration: RATE_LIMIT_REQUESTS_PER_MINUTE: \"abc\" is not a whole number; \
         expected an integer from 1 to 4294967295"
    );
}

#[test]
fn counts_refuse_zero_negatives_fractions_and_overflow() {
    for name in [
        "RATE_LIMIT_REQUESTS_PER_MINUTE",
        "MAX_AUTH_ATTEMPTS",
        "MAX_DEVICES_PER_USER",
    ] {
        for (bad, what) in [
            ("0", "is out of range"),
            ("-3", "is out of range"),
            ("4294967296", "is out of range"),
            ("99999999999999999999999", "is out of range"),
            ("1.5", "is not a whole number"),
            ("ten", "is not a whole number"),
            ("-", "is not a whole number"),
        ] {
            let message = only_problem(&[(name, bad)], name);
            assert!(message.contains(what), "{name}={bad}: {message}");
            assert!(
                message.ends_with("expected an integer from 1 to 4294967295"),
                "{message}"
            );
        }
    }
}

#[test]
fn other_counts_and_durations() {
    let c = config(&[
        ("MAX_AUTH_ATTEMPTS", "3"),
        ("AUTH_ATTEMPT_TIMEOUT", "600"),
        ("MAX_DEVICES_PER_USER", "+2"),
        ("DEVICE_REGISTRATION_TIMEOUT", " 3600 "),
        ("SESSION_CLEANUP_INTERVAL", "15"),
    ]);
    assert_eq!(c.max_auth_attempts(), 3);
    assert_eq!(c.auth_attempt_timeout(), Duration::from_secs(600));
    assert_eq!(c.max_devices_per_user(), 2);
    assert_eq!(c.device_registration_timeout(), Duration::from_secs(3600));
    assert_eq!(c.session_cleanup_interval(), Duration::from_secs(15));
}

#[test]
fn seconds_are_whole_numbers_of_seconds() {
    for name in [
        "RATE_LIMIT_WINDOW_SECONDS",
        "AUTH_ATTEMPT_TIMEOUT",
        "DEVICE_REGISTRATION_TIMEOUT",
        "SESSION_CLEANUP_INTERVAL",
    ] {
        let message = only_problem(&[(name, "5m")], name);
        assert_eq!(
            message,
            "\"5m\" is not a whole number; expected a number of seconds from 1 to 4294967295"
        );
        let message = only_problem(&[(name, "0")], name);
        assert!(message.starts_with("\"0\" is out of range"), "{message}");
    }
}

#[test]
fn trusted_proxies() {
    let c = config(&[(
        "TRUSTED_PROXIES",
        "10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,,::1",
    )]);
    let expected: Vec<IpNet> = ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "::1/128"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(c.trusted_proxies(), expected);

    let error = err(&[(
        "TRUSTED_PROXIES",
        "10.0.0.0/8, 10.0.0.300, proxy.internal, 10.0.0.0/33",
    )]);
    assert_eq!(
        settings(&error),
        ["TRUSTED_PROXIES", "TRUSTED_PROXIES", "TRUSTED_PROXIES"]
    );
    let messages: Vec<_> = error.problems().iter().map(|p| p.message()).collect();
    assert!(messages[0].starts_with("entry 2 (\"10.0.0.300\") is not an IP address or CIDR range"));
    assert!(messages[1].starts_with("entry 3 (\"proxy.internal\")"));
    assert!(messages[2].starts_with("entry 4 (\"10.0.0.0/33\")"));
    assert!(messages[2].contains("10.0.0.0/8, 192.168.1.7, 2001:db8::/32"));
}

#[test]
fn api_key_hashes() {
    let c = config(&[("API_KEY_HASHES", &format!(" {HASH_A} , {HASH_B},"))]);
    assert_eq!(c.api_key_hashes().len(), 2);
    assert_eq!(&c.api_key_hashes()[0][..4], &[0x9f, 0x86, 0xd0, 0x81]);
    assert_eq!(&c.api_key_hashes()[1][..4], &[0x60, 0x30, 0x3a, 0xe2]);

    let raw_key = "tsk_live_DoNotLogThisSecretValue";
    let error = err(&[(
        "API_KEY_HASHES",
        &format!("{HASH_A},{raw_key},abc,{}", &HASH_B[..63]),
    )]);
    assert_eq!(settings(&error), ["API_KEY_HASHES"; 3]);
    let messages: Vec<_> = error.problems().iter().map(|p| p.message()).collect();
    assert!(
        messages[0].starts_with("entry 2 (starting \"tsk_live\") contains a character"),
        "{}",
        messages[0]
    );
    assert!(messages[1].starts_with("entry 3 (\"abc\") has 3 characters"));
    assert!(messages[2].starts_with("entry 4 (starting \"60303AE2\") has 63 characters"));
    assert!(
        messages[2].ends_with("expected a SHA-256 digest written as 64 hexadecimal characters")
    );
    assert!(!error.to_string().contains("DoNotLog"), "{error}");
}

#[test]
fn redis_url() {
    for url in [
        "redis://localhost:6379/0",
        "rediss://user:pw@cache:6380",
        "unix:///run/redis.sock",
        "REDIS://cache",
    ] {
        assert_eq!(config(&[("REDIS_URL", url)]).redis_url(), Some(url));
    }
    let message = only_problem(
        &[("REDIS_URL", "http://admin:s3cr3t-pw@cache:6379")],
        "REDIS_URL",
    );
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(
        message.starts_with(
            "\"http://admin:****@cache:6379\" does not start with redis://, rediss:// or unix://"
        ),
        "{message}"
    );
    let message = only_problem(&[("REDIS_URL", ":s3cr3t-pw@cache:6379")], "REDIS_URL");
    assert!(!message.contains("s3cr3t"), "{message}");
    let message = only_problem(&[("REDIS_URL", "redis://")], "REDIS_URL");
    assert!(message.contains("names no server"), "{message}");
}

#[test]
fn store_failure_policy_and_log_format() {
    for (value, policy) in [
        ("fail-closed", StoreFailurePolicy::FailClosed),
        ("Fail-Open", StoreFailurePolicy::FailOpen),
        ("local", StoreFailurePolicy::Local),
    ] {
        let c = config(&[("RATE_LIMIT_STORE_FAILURE", value)]);
        assert_eq!(c.rate_limit_store_failure(), policy);
    }
    let message = only_problem(
        &[("RATE_LIMIT_STORE_FAILURE", "closed")],
        "RATE_LIMIT_STORE_FAILURE",
    );
    assert_eq!(
        message,
        "\"closed\" is not a store failure policy; expected fail-closed, fail-open or local"
    );

    assert_eq!(
        config(&[("LOG_FORMAT", "PRETTY")]).log_format(),
        LogFormat::Pretty
    );
    assert_eq!(
        config(&[("LOG_FORMAT", "json")]).log_format(),
        LogFormat::Json
    );
    let message = only_problem(&[("LOG_FORMAT", "text")], "LOG_FORMAT");
    assert_eq!(
        message,
        "\"text\" is not a log format; expected json or pretty"
    );
}

#[test]
fn secret_key_is_checked_and_never_shown() {
    let secret = "0123456789abcdef0123456789abcdef";
    let c = config(&[("SECRET_KEY", secret)]);
    let key = c.secret_key().expect("set");
    assert_eq!(key.as_bytes(), secret.as_bytes());
    assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    assert!(!format!("{c:?}").contains(secret));

    for bad in ["hunter2-hunter2", " 0123456789abcdef0123456789abcdef "] {
        let error = err(&[("SECRET_KEY", bad)]);
        assert_eq!(settings(&error), ["SECRET_KEY"]);
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("0123456789"), "{text}");
    }
    assert!(
        err(&[("SECRET_KEY", "short")])
            .to_string()
            .contains("at least 32")
    );
    assert!(SecretKey::new(vec![7u8; 32]).is_ok());
    assert!(SecretKey::new(vec![7u8; 31]).is_err());
}

#[test]
fn debug_redacts_secrets_and_shows_the_rest() {
    let c = config(&[
        ("BIND", "0.0.0.0:9000"),
        ("SECRET_KEY", "a-very-long-secret-that-must-not-leak!"),
        ("REDIS_URL", "rediss://default:redis-pw-123@cache:6380/0"),
        ("API_KEY_HASHES", HASH_A),
    ]);
    let debug = format!("{c:?}");
    assert!(debug.contains("0.0.0.0:9000"), "{debug}");
    assert!(
        debug.contains("rediss://default:****@cache:6380/0"),
        "{debug}"
    );
    assert!(debug.contains("9f86d081…"), "{debug}");
    assert!(!debug.contains("must-not-leak"), "{debug}");
    assert!(!debug.contains("redis-pw-123"), "{debug}");
    assert!(!debug.contains(HASH_A), "{debug}");
    // Clone keeps every setting.
    assert_eq!(format!("{:?}", c.clone()), debug);
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let error = err(&[
        ("BIND", "nowhere"),
        ("CORS_ENABLED", "perhaps"),
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "0"),
        ("RATE_LIMIT_WINDOW_SECONDS", "0"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,bad"),
        ("MAX_AUTH_ATTEMPTS", "x"),
        ("API_KEY_HASHES", "zz"),
        ("REDIS_URL", "memcached://x"),
        ("RATE_LIMIT_STORE_FAILURE", "retry"),
        ("LOG_FORMAT", "xml"),
        ("SECRET_KEY", "tiny-secret"),
        ("SECURE_HEADERS", "true"),
    ]);
    assert_eq!(
        settings(&error),
        [
            "BIND",
            "CORS_ENABLED",
            "RATE_LIMIT_REQUESTS_PER_MINUTE",
            "RATE_LIMIT_WINDOW_SECONDS",
            "TRUSTED_PROXIES",
            "MAX_AUTH_ATTEMPTS",
            "API_KEY_HASHES",
            "REDIS_URL",
            "RATE_LIMIT_STORE_FAILURE",
            "LOG_FORMAT",
            "SECRET_KEY",
        ]
    );
    let text = error.to_string();
    assert!(
        text.starts_with("invalid configuration (11 problems):"),
        "{text}"
    );
    for problem in error.problems() {
        assert!(
            text.contains(&format!("  - {}: {}", problem.setting(), problem.message())),
            "{text}"
        );
    }
    assert!(!text.contains("tiny-secret"), "{text}");
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(10_000);
    let message = only_problem(&[("LOG_FORMAT", &long)], "LOG_FORMAT");
    assert!(message.len() < 200, "{message}");
    let message = only_problem(&[("LOG_FORMAT", "a\u{1b}[31mred")], "LOG_FORMAT");
    assert!(
        !message.contains('\u{1b}'),
        "control characters are escaped: {message:?}"
    );
}

proptest! {
    #[test]
    fn any_positive_count_is_read_back(n in 1u32..) {
        let c = config(&[("MAX_AUTH_ATTEMPTS", &n.to_string()), ("SESSION_CLEANUP_INTERVAL", &n.to_string())]);
        prop_assert_eq!(c.max_auth_attempts(), n);
        prop_assert_eq!(c.session_cleanup_interval(), Duration::from_secs(u64::from(n)));
    }

    #[test]
    fn any_value_either_parses_or_names_its_variable(
        value in "\\PC{0,40}",
        index in 0usize..18,
    ) {
        const NAMES: [&str; 18] = [
            "BIND", "SECURE_HEADERS", "CORS_ENABLED", "ALLOWED_ORIGINS", "CORS_ALLOW_CREDENTIALS",
            "RATE_LIMIT_ENABLED", "RATE_LIMIT_REQUESTS_PER_MINUTE", "RATE_LIMIT_WINDOW_SECONDS",
            "TRUSTED_PROXIES", "MAX_AUTH_ATTEMPTS", "AUTH_ATTEMPT_TIMEOUT", "MAX_DEVICES_PER_USER",
            "DEVICE_REGISTRATION_TIMEOUT", "SESSION_CLEANUP_INTERVAL", "API_KEY_HASHES", "REDIS_URL",
            "RATE_LIMIT_STORE_FAILURE", "LOG_FORMAT",
        ];
        let name = NAMES[index];
        if let Err(error) = try_config(&[(name, &value)]) {
            prop_assert!(!error.problems().is_empty());
            for problem in error.problems() {
                prop_assert_eq!(problem.setting(), name);
                prop_assert!(problem.message().contains("expected"), "{}", problem.message());
            }
        }
    }

    #[test]
    fn a_secret_key_never_appears_in_the_error(secret in "[!-~]{12,31}") {
        let error = err(&[("SECRET_KEY", &secret)]);
        let text = format!("{error} {error:?}");
        prop_assert!(!text.contains(&secret));
    }

    #[test]
    fn any_ip_address_is_a_single_host_proxy(addr in any::<std::net::IpAddr>()) {
        let c = config(&[("TRUSTED_PROXIES", &addr.to_string())]);
        prop_assert_eq!(c.trusted_proxies(), &[IpNet::from(addr)]);
        prop_assert_eq!(c.trusted_proxies()[0].prefix_len(), c.trusted_proxies()[0].max_prefix_len());
    }

    #[test]
    fn any_digest_round_trips_through_hex(digest in any::<[u8; 32]>(), upper in any::<bool>()) {
        let hex: String = digest.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
        let c = config(&[("API_KEY_HASHES", &hex)]);
        prop_assert_eq!(c.api_key_hashes(), &[digest]);
    }
}
