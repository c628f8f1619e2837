//! The properties of the fuzz targets in `fuzz/` (origin, CSP, forwarding headers, plain
//! text, JSON field rules, API keys), as property tests that run in CI. The generators aim
//! at the inputs where each parser has to decide, so a few hundred cases cover what the
//! fuzzers reach in minutes; the fuzzers remain the deeper search.
#![cfg(all(
    feature = "cors",
    feature = "secure-headers",
    feature = "sanitize",
    feature = "api-key"
))]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};
use tower_shield::api_key::{ApiKey, KeyHasher, KeyPrefix};
use tower_shield::client_ip::{ClientIpStrategy, PeerAddr};
use tower_shield::cors::{Origin, OriginPattern};
use tower_shield::sanitize::{
    Field, InputSanitizer, InputSanitizerLayer, Pattern, validate_plain_text,
};
use tower_shield::secure_headers::Csp;

// ----- origins -----

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9_-]{0,8}[a-z0-9])?"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        // The last label has a letter, or the host would be read as an IPv4 address.
        (prop::collection::vec(label(), 0..3), "[a-z][a-z0-9]{0,5}").prop_map(|(mut l, tld)| {
            l.push(tld);
            l.join(".")
        }),
        any::<Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| format!("[{a}]")),
    ]
}

fn origin_text() -> impl Strategy<Value = String> {
    (prop::bool::ANY, host(), prop::option::of(1u16..)).prop_map(|(https, host, port)| {
        let scheme = if https { "https" } else { "http" };
        match port {
            Some(p) if p != if https { 443 } else { 80 } => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }
    })
}

/// Near misses: origins with a mistake spliced in somewhere.
fn near_miss() -> impl Strategy<Value = String> {
    (
        origin_text(),
        any::<prop::sample::Index>(),
        prop::sample::select(vec![
            "/", ":", ".", "@", "*", " ", "\u{1}", "A", "é", "[", "]", "0", ":443", "?", "#",
        ]),
    )
        .prop_map(|(o, at, bit)| {
            let cut = at.index(o.len() + 1);
            let cut = (0..=cut).rev().find(|&c| o.is_char_boundary(c)).unwrap();
            format!("{}{bit}{}", &o[..cut], &o[cut..])
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_origin_re_renders_to_itself(text in prop_oneof![origin_text(), near_miss()]) {
        match Origin::parse(&text) {
            Ok(origin) => {
                prop_assert_eq!(origin.as_str(), text.as_str());
                prop_assert_eq!(origin.to_string(), text.clone());
                let rebuilt = match origin.port() {
                    Some(p) => format!("{}://{}:{p}", origin.scheme().as_str(), origin.host()),
                    None => format!("{}://{}", origin.scheme().as_str(), origin.host()),
                };
                prop_assert_eq!(rebuilt, text.clone());
                prop_assert_ne!(origin.port(), Some(origin.scheme().default_port()));
                let pattern = OriginPattern::parse(&text).unwrap();
                prop_assert!(pattern.matches(&text));
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(!message.chars().any(char::is_control), "{:?}", message);
                if let Some(fix) = err.suggestion() {
                    prop_assert!(Origin::parse(fix).is_ok(), "suggested {:?}", fix);
                }
            }
        }
    }

    #[test]
    fn a_subdomain_pattern_matches_only_its_subdomains(
        sub in prop::collection::vec(label(), 1..3),
        base in (label(), "[a-z][a-z0-9]{0,5}").prop_map(|(l, tld)| format!("{l}.{tld}")),
        https in any::<bool>(),
        other in prop_oneof![origin_text(), near_miss()],
    ) {
        let scheme = if https { "https" } else { "http" };
        let pattern = OriginPattern::parse(&format!("{scheme}://*.{base}")).unwrap();
        let inside = format!("{scheme}://{}.{base}", sub.join("."));
        prop_assert!(pattern.matches(&inside), "{} misses {}", pattern, inside);
        let base_origin = format!("{scheme}://{base}");
        prop_assert!(!pattern.matches(&base_origin), "{} matches its own base", pattern);
        let look_alike = format!("{scheme}://{}{base}", sub.concat());
        prop_assert!(!pattern.matches(&look_alike), "{} matches {}", pattern, look_alike);
        if pattern.matches(&other) {
            let o = Origin::parse(&other).unwrap();
            let suffix = format!(".{base}");
            prop_assert!(o.host().ends_with(&suffix));
            prop_assert_eq!(o.port(), None);
        }
    }
}

// ----- CSP -----

const DIRECTIVES: &[&str] = &[
    "default-src",
    "script-src",
    "style-src",
    "img-src",
    "connect-src",
    "object-src",
    "frame-ancestors",
    "base-uri",
];
const SOURCES: &[&str] = &[
    "'self'",
    "https:",
    "data:",
    "https://cdn.example.com",
    "'unsafe-inline'",
    "'strict-dynamic'",
    "'sha256-abc='",
    "*.example.com",
];

fn parse_policy(value: &str) -> Vec<(String, Vec<String>)> {
    value
        .split(';')
        .map(|d| {
            let mut t = d.split_ascii_whitespace().map(str::to_owned);
            (t.next().unwrap_or_default(), t.collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_built_csp_parses_back_into_its_directives(
        picks in prop::collection::vec(
            (0..DIRECTIVES.len(), prop::collection::vec(0..SOURCES.len(), 1..4)),
            1..6,
        ),
        compact in any::<bool>(),
        injected in prop::option::of(("[ -~]{0,6}", prop::sample::select(
            vec![";", ",", "\n", "\r", "\u{0}", " ", "\t"],
        ), "[ -~]{0,6}")),
    ) {
        let mut expected: Vec<(String, Vec<String>)> = vec![("default-src".into(), vec!["'self'".into()])];
        for (d, sources) in picks {
            let name = DIRECTIVES[d];
            if expected.iter().any(|(n, _)| n == name) {
                continue;
            }
            expected.push((name.into(), sources.iter().map(|&s| SOURCES[s].to_owned()).collect()));
        }
        if let Some((a, bad, b)) = &injected {
            expected.last_mut().unwrap().1.push(format!("{a}{bad}{b}"));
        }
        let mut builder = Csp::builder();
        for (name, values) in &expected {
            builder = builder.directive(name.clone(), values.clone());
        }
        if compact {
            builder = builder.compact();
        }
        match builder.build() {
            Ok(csp) => {
                prop_assert!(injected.is_none(), "accepted an injected value");
                let rendered = csp.to_string();
                prop_assert!(HeaderValue::from_str(&rendered).is_ok());
                prop_assert!(!rendered.contains(','));
                prop_assert!(rendered.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
                prop_assert_eq!(parse_policy(&rendered), expected);
            }
            Err(err) => {
                prop_assert!(injected.is_some(), "refused a valid policy: {}", err);
            }
        }
    }
}

// ----- forwarding headers -----

const TRUSTED: &str = "10.0.0.0/8";

fn address(trusted: bool) -> impl Strategy<Value = IpAddr> {
    any::<[u8; 3]>().prop_map(move |[a, b, c]| {
        if trusted {
            IpAddr::V4(Ipv4Addr::new(10, a, b, c))
        } else {
            IpAddr::V4(Ipv4Addr::new(100 + a % 100, a, b, c.max(1)))
        }
    })
}

fn chain() -> impl Strategy<Value = Vec<(bool, IpAddr)>> {
    prop::collection::vec(
        any::<bool>().prop_flat_map(|t| address(t).prop_map(move |ip| (t, ip))),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_client_is_the_rightmost_untrusted_address(
        spoofed in prop::collection::vec("[ -+\\--~]{0,12}", 0..3),
        chain in chain(),
        peer_trusted in any::<bool>(),
        peer in address(false),
        trusted_peer in address(true),
        v6_form in any::<bool>(),
    ) {
        let strategy = ClientIpStrategy::trusted_proxies([TRUSTED.parse().unwrap()]).unwrap();
        let peer = if peer_trusted { trusted_peer } else { peer };
        // Whatever a client writes on the left, then the proxies' entries.
        let mut entries: Vec<String> = spoofed.clone();
        entries.extend(chain.iter().map(|(_, ip)| match (ip, v6_form) {
            (IpAddr::V4(v4), true) => format!("[{}]:443", v4.to_ipv6_mapped()),
            _ => ip.to_string(),
        }));
        let request = Request::builder()
            .header("x-forwarded-for", entries.join(", "))
            .extension(PeerAddr(SocketAddr::new(peer, 4711)))
            .body(())
            .unwrap();
        let got = strategy.resolve_request(&request);
        if !peer_trusted {
            prop_assert_eq!(got, Ok(peer));
            return Ok(());
        }
        match chain.iter().rposition(|(t, _)| !t) {
            // The rightmost untrusted entry, whatever lies to its left.
            Some(i) => prop_assert_eq!(got, Ok(chain[i].1)),
            // Every proxy entry trusted: the walk reaches what the client wrote; the answer
            // is then an address from the header or an error, never something invented.
            None => match got {
                Ok(ip) => prop_assert!(
                    ip == peer
                        || chain.iter().any(|(_, c)| *c == ip)
                        || spoofed.iter().any(|s| s.trim().parse::<IpAddr>().ok().map(|a| a.to_canonical()) == Some(ip)),
                    "{} came from nowhere", ip
                ),
                Err(_) => prop_assert!(!spoofed.iter().all(|s| s.trim().is_empty())),
            },
        }
    }
}

// ----- plain text -----

/// Text built from the characters the validator decides on.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "<",
                ">",
                "=",
                ":",
                "&",
                "#",
                ";",
                "/",
                "!",
                "?",
                " ",
                "\t",
                "\n",
                "\r",
                "\u{0}",
                "\u{202e}",
                "＜",
                "＞",
                "ｊ",
                "on",
                "error",
                "load",
                "img",
                "script",
                "java",
                "javascript:",
                "&#x3c;",
                "&lt;",
                "&#106;",
                "data:",
                "text/html",
                "x",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z]{1,4}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn accepted_plain_text_holds_no_tag_and_no_control(text in tricky_text()) {
        if validate_plain_text(&text).is_err() {
            return Ok(());
        }
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let control = c.is_control() && !matches!(c, '\t' | '\n' | '\r');
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            prop_assert!(!control && !bidi, "{:?}", text);
            if c == '\r' {
                prop_assert_eq!(chars.peek(), Some(&'\n'));
            }
        }
        // No `<tag` that can close or carry an attribute, no comment or end tag, judged on
        // the fullwidth-folded, lower-cased text.
        let folded: Vec<char> = text
            .chars()
            .map(|c| match c { '＜' => '<', '＞' => '>', 'ｊ' => 'j', c => c })
            .flat_map(char::to_lowercase)
            .collect();
        let last = folded.iter().rposition(|&c| c == '>' || c == '=');
        for (i, _) in folded.iter().enumerate().filter(|(_, c)| **c == '<') {
            match folded.get(i + 1) {
                Some('!' | '/' | '?') => prop_assert!(false, "comment or end tag in {:?}", text),
                Some(c) if c.is_ascii_alphabetic() => {
                    prop_assert!(last.is_none_or(|j| j <= i + 1), "tag in {:?}", text)
                }
                _ => {}
            }
        }
        let flat: String = folded.iter().filter(|c| !c.is_control()).collect();
        for (i, _) in flat.match_indices("javascript:") {
            let before = flat[..i].chars().next_back();
            prop_assert!(
                before.is_some_and(|c| c.is_alphanumeric() || "_-+.;&#".contains(c)),
                "script URL in {:?}", text
            );
        }
    }
}

// ----- JSON field rules -----

fn layer() -> &'static InputSanitizerLayer {
    static LAYER: OnceLock<InputSanitizerLayer> = OnceLock::new();
    LAYER.get_or_init(|| {
        InputSanitizer::builder()
            .json_body(
                Method::POST,
                "/items",
                [
                    Field::new("name").required().length(1, 20).plain_text(),
                    Field::new("device_id").pattern(Pattern::ascii_id(1, 16)),
                    Field::new("/address/city").length(1, 30).plain_text(),
                ],
            )
            .body_limit(1024)
            .max_depth(4)
            .build()
            .unwrap()
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        tricky_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["name", "device_id", "address", "city", "x"])
                    .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_rules_never_fail_the_server_nor_echo_a_value(
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::btree_map(
                prop::sample::select(vec!["name", "device_id", "address"]).prop_map(str::to_owned),
                json_value(),
                0..4,
            ).prop_map(|m| serde_json::to_vec(&m).unwrap()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let service = layer().layer(service_fn(|req: Request<Full<Bytes>>| async move {
            let seen = req.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(seen)))
        }));
        let request = Request::post("/items")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let (status, bytes) = runtime.block_on(async {
            let response = service.oneshot(request).await.unwrap();
            let status = response.status();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        });
        prop_assert!(!status.is_server_error(), "{}", status);
        if status == StatusCode::OK {
            let seen: Value = serde_json::from_slice(&bytes).unwrap();
            let name = seen["name"].as_str().unwrap();
            prop_assert!(validate_plain_text(name).is_ok());
            return Ok(());
        }
        let problem = String::from_utf8(bytes.to_vec()).unwrap();
        let mut values = Vec::new();
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            strings(&v, &mut values);
        }
        for v in values {
            let v = v.trim();
            // Only values the fixed messages cannot spell by themselves.
            if v.chars().all(|c| c.is_ascii_alphanumeric() || " :,._/()'+-\"{}[]".contains(c)) {
                continue;
            }
            let escaped = Value::String(v.to_owned()).to_string();
            prop_assert!(
                !problem.contains(v) && !problem.contains(&escaped[1..escaped.len() - 1]),
                "{:?} echoed in {}", v, problem
            );
        }
    }
}

// ----- API keys -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_key_round_trips_and_one_changed_byte_fails(
        prefix in prop::sample::select(vec!["ech_", "ech_live_", "a_", "x9_y_"]),
        at in any::<prop::sample::Index>(),
        to in any::<u8>(),
        bit in 0..256usize,
    ) {
        let prefix = KeyPrefix::new(prefix).unwrap();
        let key = ApiKey::generate(&prefix).unwrap();
        let text = key.expose_secret().to_owned();
        let parsed = ApiKey::parse(&text, &prefix).unwrap();
        prop_assert_eq!(parsed.expose_secret(), text.as_str());
        prop_assert!(!parsed.to_string().contains(&text));
        for hasher in [KeyHasher::sha256(), KeyHasher::hmac_sha256(&[7; 32]).unwrap()] {
            let digest = hasher.digest(&key);
            prop_assert!(hasher.verify(&parsed, &digest));
            let mut bytes = *digest.as_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!hasher.verify(&parsed, &tower_shield::api_key::KeyDigest::from_bytes(bytes)));
        }
        let mut changed = text.clone().into_bytes();
        let i = at.index(changed.len());
        prop_assume!(changed[i] != to);
        changed[i] = to;
        if let Ok(changed) = String::from_utf8(changed) {
            prop_assert!(ApiKey::parse(&changed, &prefix).is_err(), "{:?} parses", changed);
        }
    }
}
