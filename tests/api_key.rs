//! Black-box tests of API keys and the RequireApiKey layer through `tower::ServiceExt`.
#![cfg(feature = "api-key")]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response, StatusCode, header};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_shield::api_key::{
    ApiKey, Authenticated, KeyDigest, KeyHasher, KeyPrefix, KeyRecord, KeyStore, KeyStoreError,
    MemoryKeyStore, ParseError, RequireApiKey, RequireApiKeyLayer,
};
use tower_shield::client_ip::ClientIpStrategy;
use tower_shield::config::SecretKey;
use tower_shield::limiter::{LimiterStore, ManualClock, MemoryStore};
use tower_shield::problem::ShieldBody;

mod common;
use common::{CaptureSubscriber, Captured, block_on, body, config, req, send};

type Res = Response<ShieldBody<String>>;
type App = tower::util::BoxCloneService<Request<String>, Res, Infallible>;

/// The app behind the layer answers with the authenticated key id (and label).
fn wrap<K: KeyStore, St: LimiterStore>(layer: RequireApiKeyLayer<K, St>) -> App {
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|req: Request<String>| async move {
                let who = req
                    .extensions()
                    .get::<Authenticated>()
                    .map(|a| format!("{}|{}", a.key_id(), a.label().unwrap_or("")))
                    .unwrap_or_default();
                Ok::<_, Infallible>(Response::new(who))
            }));
    tower::util::BoxCloneService::new(svc)
}

/// A request for the admin route from `peer` with these header fields.
fn admin(peer: &str, headers: &[(&str, &str)]) -> Request<String> {
    req(Method::GET, "/admin/rate-limits", peer, headers)
}

fn bearer(peer: &str, key: &str) -> Request<String> {
    admin(peer, &[("authorization", &format!("Bearer {key}"))])
}

fn key() -> ApiKey {
    ApiKey::generate(&KeyPrefix::new("ech_").unwrap()).unwrap()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A key store that counts lookups, to show which refusals happen before any.
#[derive(Clone, Default)]
struct Counting {
    keys: Arc<MemoryKeyStore>,
    lookups: Arc<AtomicUsize>,
}

impl Counting {
    fn with(digests: impl IntoIterator<Item = KeyDigest>) -> Self {
        let c = Counting::default();
        for d in digests {
            c.keys.insert(KeyRecord::new(d));
        }
        c
    }
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl KeyStore for Counting {
    type Lookup = Ready<Result<Option<KeyRecord>, KeyStoreError>>;
    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.keys.lookup(digest)
    }
}

fn manual_layer<K: KeyStore>(
    keys: K,
    max: u32,
    window: u64,
) -> (
    RequireApiKeyLayer<K, MemoryStore<ManualClock>>,
    ManualClock,
    Arc<MemoryStore<ManualClock>>,
) {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap());
    let layer = RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), keys)
        .limiter_store(store.clone())
        .lockout(max, Duration::from_secs(window))
        .build()
        .unwrap();
    (layer, clock, store)
}

const PEER: &str = "198.51.100.7:40000";

async fn assert_unauthorized(res: Res) -> String {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"api\""
    );
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let text = body(res).await;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["status"], 401);
    text
}

// ---------------------------------------------------------------- keys as values

#[test]
fn generated_keys_have_the_published_format() {
    assert_eq!(
        KeyPrefix::new("ech_").unwrap().regex(),
        "ech_[0-9A-Za-z]{49}"
    );
    for _ in 0..100 {
        let k = key();
        let t = k.expose_secret();
        // what the regex says, checked by hand (no regex engine in the dev-dependencies)
        assert_eq!(t.len(), 4 + 49);
        assert!(t.starts_with("ech_"));
        assert!(t[4..].bytes().all(|b| b.is_ascii_alphanumeric()), "{t}");
        // the checksum is CRC32 (IEEE) of prefix and body, 6 base62 digits, 0-9A-Za-z
        let crc = crc32fast::hash(&t.as_bytes()[..47]);
        let value = t[47..].bytes().fold(0u64, |acc, b| {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'A'..=b'Z' => b - b'A' + 10,
                _ => b - b'a' + 36,
            };
            acc * 62 + u64::from(d)
        });
        assert_eq!(value, u64::from(crc));
    }
    let live = KeyPrefix::new("ech_live_").unwrap();
    assert_eq!(live.regex(), "ech_live_[0-9A-Za-z]{49}");
    assert!(
        ApiKey::generate(&live)
            .unwrap()
            .expose_secret()
            .starts_with("ech_live_")
    );
}

#[test]
fn the_secret_never_shows_in_debug_or_display() {
    let k = key();
    let secret = k.expose_secret().to_owned();
    for shown in [format!("{k:?}"), format!("{k}"), format!("{:?}", Some(&k))] {
        assert!(!shown.contains(&secret[4..20]), "{shown}");
    }
    assert_eq!(format!("{k}"), "<redacted>");
    let pepper = KeyHasher::hmac_sha256(b"0123456789abcdef0123456789abcdef").unwrap();
    assert!(!format!("{pepper:?}").contains("0123"));
}

#[test]
fn storage_form_is_the_guides_sha256_hex() {
    // A fixed key, its checksum and hash computed with Python's zlib.crc32 and
    // hashlib.sha256(key.encode()).hexdigest(), the guide's storage form.
    let fixed = "ech_EchoTuner0EchoTuner0EchoTuner0EchoTuner0abc0cSPpF";
    let parsed = ApiKey::parse(fixed, &KeyPrefix::new("ech_").unwrap()).unwrap();
    assert_eq!(
        parsed.sha256().to_hex(),
        "5dbee424d2d22ad0a229bce2674fd3aa990ae69ce787c396a57b44c4f063d17d"
    );
    let k = key();
    assert_eq!(k.sha256().to_hex(), sha256_hex(k.expose_secret()));
    assert_eq!(
        KeyDigest::from_hex(&sha256_hex(k.expose_secret())).unwrap(),
        k.sha256()
    );
    // The digest is what Config::api_key_hashes holds.
    let config = config(&[("API_KEY_HASHES", &sha256_hex(k.expose_secret()))]);
    assert_eq!(config.api_key_hashes(), &[*k.sha256().as_bytes()]);
}

#[test]
fn table_6_5_parse_cases() {
    let p = KeyPrefix::new("ech_").unwrap();
    let k = key();
    let t = k.expose_secret();
    assert!(ApiKey::parse(t, &p).is_ok());
    // wrong prefix
    assert_eq!(
        ApiKey::parse(&format!("ghp_{}", &t[4..]), &p).unwrap_err(),
        ParseError::WrongPrefix
    );
    // right vendor, wrong environment
    let test_key = ApiKey::generate(&KeyPrefix::new("ech_test_").unwrap()).unwrap();
    let live = KeyPrefix::new("ech_live_").unwrap();
    assert_eq!(
        ApiKey::parse(test_key.expose_secret(), &live).unwrap_err(),
        ParseError::WrongPrefix
    );
    // bad CRC: the last digit changed
    let mut bad = t.to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        ApiKey::parse(&bad, &p).unwrap_err(),
        ParseError::BadChecksum
    );
    // truncated by one character
    assert!(matches!(
        ApiKey::parse(&t[..t.len() - 1], &p).unwrap_err(),
        ParseError::WrongLength {
            expected: 53,
            found: 52
        }
    ));
    // trailing newline / space
    for junk in ["\n", " ", "\r\n", "\0"] {
        assert!(matches!(
            ApiKey::parse(&format!("{t}{junk}"), &p).unwrap_err(),
            ParseError::WrongLength { .. }
        ));
    }
    // leading space
    assert_eq!(
        ApiKey::parse(&format!(" {t}"), &p).unwrap_err(),
        ParseError::WrongPrefix
    );
    // lower-cased copy (a key with no upper-case letter is ~1e-12 likely; pick one that has)
    let k2 = std::iter::repeat_with(key)
        .find(|k| {
            k.expose_secret()[4..47]
                .bytes()
                .any(|b| b.is_ascii_uppercase())
        })
        .unwrap();
    assert!(ApiKey::parse(&k2.expose_secret().to_lowercase(), &p).is_err());
    // `_` inside the random part
    let underscored = format!("{}_{}", &t[..20], &t[21..]);
    assert_eq!(
        ApiKey::parse(&underscored, &p).unwrap_err(),
        ParseError::InvalidCharacter { position: 20 }
    );
    // messages never repeat the key
    for e in [
        ApiKey::parse(&bad, &p).unwrap_err(),
        ApiKey::parse(&underscored, &p).unwrap_err(),
    ] {
        assert!(!e.to_string().contains(&t[4..12]));
    }
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = ApiKey::parse(&s, &KeyPrefix::new("ech_").unwrap());
        let _ = ApiKey::parse(&format!("ech_{s}"), &KeyPrefix::new("ech_").unwrap());
        let _ = KeyDigest::from_hex(&s);
        let _ = KeyPrefix::new(s);
    }

    #[test]
    fn parse_never_panics_near_valid_keys(body in "[0-9A-Za-z_ é\n]{40,55}") {
        let _ = ApiKey::parse(&format!("ech_{body}"), &KeyPrefix::new("ech_").unwrap());
    }

    /// Any single-character change is refused by the checksum (or, were it to pass, by the
    /// digest): CRC32 catches every burst error of up to 32 bits.
    #[test]
    fn any_single_character_change_is_refused(
        at in 0usize..53,
        replacement in prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            Just('_'), Just(' '), Just('-'), Just('é'), Just('\n'),
        ],
    ) {
        let k = key();
        let original: Vec<char> = k.expose_secret().chars().collect();
        prop_assume!(original[at] != replacement);
        let mut changed = original.clone();
        changed[at] = replacement;
        let changed: String = changed.into_iter().collect();
        match ApiKey::parse(&changed, &KeyPrefix::new("ech_").unwrap()) {
            Err(_) => {}
            Ok(parsed) => prop_assert_ne!(parsed.sha256(), k.sha256()),
        }
        prop_assert!(ApiKey::parse(&changed, &KeyPrefix::new("ech_").unwrap()).is_err());
    }

    #[test]
    fn hashes_of_generated_keys_are_the_sha256_hex_of_the_string(_n in 0..32u8) {
        let k = key();
        prop_assert_eq!(k.sha256().to_hex(), sha256_hex(k.expose_secret()));
        prop_assert!(KeyHasher::sha256().verify(&k, &k.sha256()));
        prop_assert!(!KeyHasher::sha256().verify(&key(), &k.sha256()));
    }
}

// ---------------------------------------------------------------- the layer: table 6.5

#[tokio::test]
async fn a_valid_key_passes_with_the_authenticated_extension() {
    let k = key();
    let keys = MemoryKeyStore::new();
    keys.insert(KeyRecord::new(k.sha256()).label("ops"));
    let app = wrap(
        RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), keys)
            .build()
            .unwrap(),
    );
    let expected = format!("{}|ops", &sha256_hex(k.expose_secret())[..8]);

    let res = send(&app, bearer(PEER, k.expose_secret())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, expected);
    // X-API-Key, and the scheme in any case
    let res = send(&app, admin(PEER, &[("x-api-key", k.expose_secret())])).await;
    assert_eq!(body(res).await, expected);
    let lower = format!("bearer {}", k.expose_secret());
    let res = send(&app, admin(PEER, &[("authorization", &lower)])).await;
    assert_eq!(body(res).await, expected);
}

#[tokio::test]
async fn no_key_is_401_with_www_authenticate() {
    let k = key();
    let app = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([k.sha256()]),
        )
        .build()
        .unwrap(),
    );
    assert_unauthorized(send(&app, admin(PEER, &[])).await).await;
    // another scheme is no key
    assert_unauthorized(
        send(
            &app,
            admin(PEER, &[("authorization", "Basic YWxhZGRpbjpvcGVu")]),
        )
        .await,
    )
    .await;
    // the key sent twice is refused, even when both are right
    let both = admin(
        PEER,
        &[
            ("authorization", &format!("Bearer {}", k.expose_secret())),
            ("x-api-key", k.expose_secret()),
        ],
    );
    assert_unauthorized(send(&app, both).await).await;
}

#[tokio::test]
async fn malformed_keys_are_refused_before_any_lookup() {
    let k = key();
    let keys = Counting::with([k.sha256()]);
    let app = wrap(
        RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), keys.clone())
            .no_lockout()
            .build()
            .unwrap(),
    );
    let t = k.expose_secret();
    let mut bad_crc = t.to_owned();
    let last = bad_crc.pop().unwrap();
    bad_crc.push(if last == '0' { '1' } else { '0' });
    let upper = std::iter::repeat_with(key)
        .find(|k| {
            k.expose_secret()[4..47]
                .bytes()
                .any(|b| b.is_ascii_uppercase())
        })
        .unwrap();
    let cases = [
        format!("ghp_{}", &t[4..]),           // wrong prefix
        bad_crc,                              // bad CRC
        t[..t.len() - 1].to_owned(),          // truncated by one
        format!("{t} "),                      // trailing space
        upper.expose_secret().to_lowercase(), // lower-cased copy
        format!("{}_{}", &t[..20], &t[21..]), // `_` in the random part
        String::new(),                        // empty
        "x".repeat(10_000),                   // long junk
    ];
    let mut bodies = Vec::new();
    for case in &cases {
        bodies
            .push(assert_unauthorized(send(&app, admin(PEER, &[("x-api-key", case)])).await).await);
    }
    assert_eq!(keys.lookups(), 0);
    // one answer for every refusal: nothing tells the kinds apart
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));

    // right prefix, wrong environment: a test key at a live server, though its hash is known
    let test_key = ApiKey::generate(&KeyPrefix::new("ech_test_").unwrap()).unwrap();
    let keys = Counting::with([test_key.sha256()]);
    let live = wrap(
        RequireApiKey::builder(KeyPrefix::new("ech_live_").unwrap(), keys.clone())
            .build()
            .unwrap(),
    );
    assert_unauthorized(send(&live, bearer(PEER, test_key.expose_secret())).await).await;
    assert_eq!(keys.lookups(), 0);
}

#[tokio::test]
async fn unknown_revoked_and_expired_keys_are_refused_alike() {
    let (known, revoked, expired, unknown) = (key(), key(), key(), key());
    let keys = Counting::default();
    keys.keys.insert(KeyRecord::new(known.sha256()));
    keys.keys
        .insert(KeyRecord::new(revoked.sha256()).revoked(true));
    keys.keys.insert(
        KeyRecord::new(expired.sha256()).expires_at(SystemTime::now() - Duration::from_secs(1)),
    );
    let app = wrap(
        RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), keys.clone())
            .no_lockout()
            .build()
            .unwrap(),
    );

    let a = assert_unauthorized(send(&app, bearer(PEER, unknown.expose_secret())).await).await;
    let b = assert_unauthorized(send(&app, bearer(PEER, revoked.expose_secret())).await).await;
    let c = assert_unauthorized(send(&app, bearer(PEER, expired.expose_secret())).await).await;
    assert_eq!((&a, &b), (&b, &c));
    assert_eq!(keys.lookups(), 3);
    assert_eq!(
        send(&app, bearer(PEER, known.expose_secret()))
            .await
            .status(),
        StatusCode::OK
    );

    // revoking at run time takes effect on the next request
    keys.keys.revoke(&known.sha256());
    assert_unauthorized(send(&app, bearer(PEER, known.expose_secret())).await).await;
}

#[tokio::test]
async fn the_same_key_twice_concurrently_passes_twice() {
    let k = key();
    let app = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([k.sha256()]),
        )
        .build()
        .unwrap(),
    );
    let (a, b) = tokio::join!(
        send(&app, bearer(PEER, k.expose_secret())),
        send(&app, bearer("198.51.100.8:1", k.expose_secret()))
    );
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
}

/// A store that answers only after yielding once, through a boxed future.
struct Slow(MemoryKeyStore);

impl KeyStore for Slow {
    type Lookup = Pin<Box<dyn Future<Output = Result<Option<KeyRecord>, KeyStoreError>> + Send>>;
    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        let found = self.0.get(digest);
        Box::pin(async move {
            tokio::task::yield_now().await;
            Ok(found)
        })
    }
}

#[tokio::test]
async fn an_asynchronous_store_works() {
    let k = key();
    let app = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            Slow(MemoryKeyStore::from_digests([k.sha256()])),
        )
        .build()
        .unwrap(),
    );
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::OK
    );
    assert_unauthorized(send(&app, bearer(PEER, key().expose_secret())).await).await;
}

struct Broken;

impl KeyStore for Broken {
    type Lookup = Ready<Result<Option<KeyRecord>, KeyStoreError>>;
    fn lookup(&self, _: &KeyDigest) -> Self::Lookup {
        ready(Err(KeyStoreError::new(
            "database is down: password=hunter2",
        )))
    }
}

#[tokio::test]
async fn a_store_failure_is_503_without_details_and_counts_no_failure() {
    let (layer, _clock, _store) = manual_layer(Broken, 1, 60);
    let app = wrap(layer);
    for _ in 0..3 {
        let res = send(&app, bearer(PEER, key().expose_secret())).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body(res).await.contains("hunter2"));
    }
}

#[tokio::test]
async fn a_pepper_needs_digests_made_with_it() {
    let secret = SecretKey::new(b"an example pepper of at least 32 bytes".to_vec()).unwrap();
    let k = key();
    let peppered = KeyHasher::from_secret_key(&secret).digest(&k);
    assert_ne!(peppered, k.sha256());

    let good = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([peppered]),
        )
        .pepper(&secret)
        .build()
        .unwrap(),
    );
    assert_eq!(
        send(&good, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::OK
    );
    let plain = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([k.sha256()]),
        )
        .pepper(&secret)
        .build()
        .unwrap(),
    );
    assert_unauthorized(send(&plain, bearer(PEER, k.expose_secret())).await).await;
}

// ---------------------------------------------------------------- lockout

#[tokio::test]
async fn max_failures_lock_out_even_the_right_key_until_the_window_passes() {
    let k = key();
    let (layer, clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 5, 300);
    let app = wrap(layer);
    for _ in 0..5 {
        assert_unauthorized(send(&app, bearer(PEER, key().expose_secret())).await).await;
        clock.advance(Duration::from_secs(10));
    }
    // the 5th failure was at t = 40 s; it is now 50 s
    let locked = send(&app, bearer(PEER, k.expose_secret())).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()[header::RETRY_AFTER], "290");
    assert_eq!(
        locked.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let json: serde_json::Value = serde_json::from_str(&body(locked).await).unwrap();
    assert_eq!(json["status"], 429);

    // with no key, with a malformed one: still 429, and none of it extends the lock
    assert_eq!(
        send(&app, admin(PEER, &[])).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, bearer(PEER, "junk")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    clock.advance(Duration::from_millis(289_500));
    let res = send(&app, bearer(PEER, k.expose_secret())).await;
    assert_eq!(res.headers()[header::RETRY_AFTER], "1", "rounded up");
    clock.advance(Duration::from_millis(500));
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn another_client_is_not_locked_out() {
    let k = key();
    let (layer, _clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 2, 60);
    let app = wrap(layer);
    for _ in 0..2 {
        send(&app, bearer(PEER, "ech_wrong")).await;
    }
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, bearer("203.0.113.1:1", k.expose_secret()))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn success_resets_the_count() {
    let k = key();
    let (layer, _clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 3, 300);
    let app = wrap(layer);
    for _ in 0..3 {
        for _ in 0..2 {
            assert_unauthorized(send(&app, bearer(PEER, key().expose_secret())).await).await;
        }
        assert_eq!(
            send(&app, bearer(PEER, k.expose_secret())).await.status(),
            StatusCode::OK
        );
    }
    // without the successes these would have been 6 failures; now 2 more lock
    for _ in 0..3 {
        send(&app, bearer(PEER, key().expose_secret())).await;
    }
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn requests_without_a_key_do_not_count() {
    let k = key();
    let (layer, _clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 2, 300);
    let app = wrap(layer);
    for _ in 0..10 {
        assert_unauthorized(send(&app, admin(PEER, &[])).await).await;
    }
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let k = key();
    let (layer, _clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 3, 300);
    let app = wrap(layer);
    // three failures from three addresses of one /64
    for peer in [
        "[2001:db8:aa:bb::1]:443",
        "[2001:db8:aa:bb::2]:443",
        "[2001:db8:aa:bb:ffff:ffff:ffff:ffff]:443",
    ] {
        assert_unauthorized(send(&app, bearer(peer, key().expose_secret())).await).await;
    }
    let same_64 = send(&app, bearer("[2001:db8:aa:bb::9]:443", k.expose_secret())).await;
    assert_eq!(same_64.status(), StatusCode::TOO_MANY_REQUESTS);
    let next_64 = send(&app, bearer("[2001:db8:aa:bc::1]:443", k.expose_secret())).await;
    assert_eq!(next_64.status(), StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_locked_not_the_proxy() {
    let k = key();
    let clock = ManualClock::new();
    let layer = RequireApiKey::builder(
        KeyPrefix::new("ech_").unwrap(),
        MemoryKeyStore::from_digests([k.sha256()]),
    )
    .limiter_store(Arc::new(
        MemoryStore::builder().clock(clock).build().unwrap(),
    ))
    .client_ip(ClientIpStrategy::trusted_proxies(["10.0.0.0/8".parse().unwrap()]).unwrap())
    .lockout(2, Duration::from_secs(60))
    .build()
    .unwrap();
    let app = wrap(layer);
    let via_proxy = |client: &str, key: &str| {
        admin(
            "10.0.0.2:5000",
            &[
                ("x-forwarded-for", client),
                ("authorization", &format!("Bearer {key}")),
            ],
        )
    };
    for _ in 0..2 {
        send(&app, via_proxy("192.0.2.50", key().expose_secret())).await;
    }
    assert_eq!(
        send(&app, via_proxy("192.0.2.50", k.expose_secret()))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via_proxy("192.0.2.51", k.expose_secret()))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_lockout_lives_in_a_store_shared_with_the_rate_limiter() {
    let clock = ManualClock::new();
    let shared = Arc::new(MemoryStore::builder().clock(clock.clone()).build().unwrap());
    let layer = RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), MemoryKeyStore::new())
        .limiter_store(shared.clone())
        .lockout(1, Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(shared.is_empty());
    let app = wrap(layer);
    send(&app, bearer(PEER, key().expose_secret())).await;
    assert_eq!(shared.len(), 1, "the lock is held in the shared store");
    clock.advance(Duration::from_secs(60));
    shared.sweep();
    assert!(shared.is_empty(), "an expired lock holds nothing");
}

#[test]
fn bad_settings_are_all_reported() {
    assert_eq!(
        KeyPrefix::new("ECH").unwrap_err().problems()[0].setting(),
        "api_key.prefix"
    );
    let err = RequireApiKey::builder(KeyPrefix::new("ech_").unwrap(), MemoryKeyStore::new())
        .lockout(0, Duration::ZERO)
        .ipv6_prefix(8)
        .realm("a\"b")
        .build()
        .unwrap_err();
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    for expected in [
        "MAX_AUTH_ATTEMPTS",
        "AUTH_ATTEMPT_TIMEOUT",
        "client_ip.ipv6_prefix",
        "api_key.realm",
    ] {
        assert!(
            settings.contains(&expected),
            "{expected} missing from {settings:?}"
        );
    }
}

#[tokio::test]
async fn from_config() {
    let k = key();
    let hex = sha256_hex(k.expose_secret());
    let config = config(&[
        ("API_KEY_HASHES", &hex),
        ("MAX_AUTH_ATTEMPTS", "1"),
        ("AUTH_ATTEMPT_TIMEOUT", "120"),
    ]);
    let layer = config
        .require_api_key_builder(config.key_store())
        .unwrap()
        .build()
        .unwrap();
    let lockout = layer.lockout().unwrap();
    assert_eq!(
        (lockout.max_attempts(), lockout.window()),
        (1, Duration::from_secs(120))
    );
    let app = wrap(layer);
    assert_eq!(
        send(&app, bearer(PEER, k.expose_secret())).await.status(),
        StatusCode::OK
    );
    send(&app, bearer(PEER, key().expose_secret())).await;
    let res = send(&app, bearer(PEER, k.expose_secret())).await;
    assert_eq!(res.headers()[header::RETRY_AFTER], "120");
}

#[tokio::test]
async fn without_a_peer_address_the_lockout_fails_closed() {
    let k = key();
    let app = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([k.sha256()]),
        )
        .build()
        .unwrap(),
    );
    let mut r = Request::get("/").header("authorization", format!("Bearer {}", k.expose_secret()));
    r = r.header("x-other", "1");
    let res = send(&app, r.body(String::new()).unwrap()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // with the lockout off, the key alone decides
    let app = wrap(
        RequireApiKey::builder(
            KeyPrefix::new("ech_").unwrap(),
            MemoryKeyStore::from_digests([k.sha256()]),
        )
        .no_lockout()
        .build()
        .unwrap(),
    );
    let r = Request::get("/").header("authorization", format!("Bearer {}", k.expose_secret()));
    assert_eq!(
        send(&app, r.body(String::new()).unwrap()).await.status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- events

#[tokio::test]
async fn every_attempt_is_one_event_without_the_key() {
    let capture = CaptureSubscriber::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let k = key();
    let wrong = key();
    let (layer, _clock, _) = manual_layer(MemoryKeyStore::from_digests([k.sha256()]), 2, 60);
    let app = wrap(layer);

    send(&app, bearer(PEER, k.expose_secret())).await; // success
    send(&app, bearer(PEER, wrong.expose_secret())).await; // failure 1
    send(&app, bearer(PEER, wrong.expose_secret())).await; // failure 2: locks
    send(&app, bearer(PEER, k.expose_secret())).await; // refused while locked

    let events = capture.events();
    let ours: Vec<&Captured> = events
        .iter()
        .filter(|e| e.field("event") == Some("auth_attempt"))
        .collect();
    assert_eq!(ours.len(), 4, "{events:#?}");
    for e in &ours {
        assert_eq!(e.target, "tower_shield::security", "{e:?}");
        assert_eq!(e.field("client_ip"), Some("198.51.100.7"), "{e:?}");
    }
    let k_id = &sha256_hex(k.expose_secret())[..8];
    let wrong_id = &sha256_hex(wrong.expose_secret())[..8];
    for (e, success, owasp, id) in [
        (ours[0], "true", "authn_login_success", k_id),
        (ours[1], "false", "authn_login_fail", wrong_id),
    ] {
        assert_eq!(e.field("success"), Some(success), "{e:?}");
        assert_eq!(e.field("owasp"), Some(owasp), "{e:?}");
        assert!(
            e.field("key_prefix").is_some_and(|p| p.contains(id)),
            "{e:?}"
        );
    }
    assert_eq!(
        ours[2].field("owasp"),
        Some("authn_login_lock"),
        "{:?}",
        ours[2]
    );
    assert!(
        ours[3].field("owasp") == Some("authn_login_lock")
            && ours[3].field("retry_after_secs") == Some("60"),
        "{:?}",
        ours[3]
    );
    for e in &events {
        let all = format!("{e:?}");
        assert!(!all.contains(&k.expose_secret()[4..]), "{e:?}");
        assert!(!all.contains(&wrong.expose_secret()[4..]), "{e:?}");
    }
}

#[test]
fn config_never_turns_secret_key_into_a_pepper_by_itself() {
    // A SECRET_KEY set for another purpose must not break the guide's plain SHA-256 hashes.
    let k = key();
    let hex = sha256_hex(k.expose_secret());
    let config = config(&[("API_KEY_HASHES", &hex), ("SECRET_KEY", &"s".repeat(40))]);
    let layer = config
        .require_api_key_builder(config.key_store())
        .unwrap()
        .build()
        .unwrap();
    let app = wrap(layer);
    let res = block_on(send(&app, bearer(PEER, k.expose_secret())));
    assert_eq!(res.status(), StatusCode::OK);
}

/// The reference server's wiring: the admin route of an axum Router behind the key, the
/// lockout counted in the rate limiter's store, everything from `Config`.
#[cfg(feature = "rate-limit")]
#[tokio::test]
async fn guards_an_axum_admin_route_with_the_rate_limiters_store() {
    use axum::Router;
    use axum::routing::get;
    use tower_shield::rate_limit::{Policy, RateLimit, Scope};

    let k = key();
    let hex = sha256_hex(k.expose_secret());
    let config = config(&[("API_KEY_HASHES", &hex), ("MAX_AUTH_ATTEMPTS", "2")]);

    let rate_limit = RateLimit::builder()
        .client_ip(config.client_ip_strategy().unwrap())
        .policy(Policy::new("ip", config.rate_limit_quota(), Scope::ip()))
        .build()
        .unwrap();
    let monitor = rate_limit.monitor().clone();
    let require_key = config
        .require_api_key_builder(config.key_store())
        .unwrap()
        .limiter_store(rate_limit.store().clone())
        .build()
        .unwrap();
    let admin = Router::new()
        .route(
            "/admin/rate-limits",
            get(move || {
                let monitor = monitor.clone();
                async move { axum::Json(monitor.top_json(20)) }
            }),
        )
        .route_layer(require_key);
    let app = Router::new()
        .route("/config/health", get(|| async { "ok" }))
        .merge(admin)
        .layer(rate_limit);

    let call = |path: &str, key: Option<&str>| {
        let mut r = Request::get(path);
        if let Some(key) = key {
            r = r.header("x-api-key", key);
        }
        let mut r = r.body(axum::body::Body::empty()).unwrap();
        r.extensions_mut()
            .insert(PEER.parse::<SocketAddr>().unwrap());
        app.clone().oneshot(r)
    };
    assert_eq!(
        call("/config/health", None).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        call("/admin/rate-limits", Some(k.expose_secret()))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        let res = call("/admin/rate-limits", None).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = call("/admin/rate-limits", Some("ech_guess")).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = call("/admin/rate-limits", Some(k.expose_secret()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    // other routes are not locked
    assert_eq!(
        call("/config/health", None).await.unwrap().status(),
        StatusCode::OK
    );
}
