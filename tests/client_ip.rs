//! `client_ip` seen from outside: strategies resolving requests, every row of the research
//! table 6.3, configuration errors, and property tests of the trust walk.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use ipnet::IpNet;
use proptest::prelude::*;
use tower_shield::ConfigError;
use tower_shield::client_ip::{
    ClientIpError, ClientIpStrategy, ForwardingHeader, Ipv6Grouping, PeerAddr,
};

mod common;
use common::{config, try_config};

const XFF: ForwardingHeader = ForwardingHeader::XForwardedFor;
const FWD: ForwardingHeader = ForwardingHeader::Forwarded;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The research table's configuration: trusted proxies 10.0.0.0/8, `X-Forwarded-For`.
fn trusted10() -> ClientIpStrategy {
    ClientIpStrategy::trusted_proxies([net("10.0.0.0/8")]).unwrap()
}

fn trusted10_forwarded() -> ClientIpStrategy {
    trusted10().header(FWD)
}

/// A header map with every `(name, value)` appended in order (repeated names stay separate
/// instances).
fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn resolve(
    strategy: &ClientIpStrategy,
    peer: &str,
    pairs: &[(&str, &str)],
) -> Result<IpAddr, ClientIpError> {
    strategy.resolve_from(Some(ip(peer)), &headers(pairs))
}

fn malformed(header: ForwardingHeader, entry_index: usize) -> Result<IpAddr, ClientIpError> {
    Err(ClientIpError::Malformed {
        header,
        entry_index,
    })
}

fn config_error(result: Result<ClientIpStrategy, ConfigError>) -> ConfigError {
    match result {
        Ok(strategy) => panic!("expected a configuration error, got {strategy:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------
// Table 6.3, row by row (trusted proxy CIDR 10.0.0.0/8, header X-Forwarded-For).
// ---------------------------------------------------------------------------------------

#[test]
fn row01_spoofed_leftmost_is_not_the_client() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

#[test]
fn row02_header_instances_are_merged() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7"),
        ],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

#[test]
fn row03_internal_hops_are_skipped() {
    let pairs = [("x-forwarded-for", "203.0.113.7, 10.1.2.3")];
    assert_eq!(
        resolve(&trusted10(), "10.0.0.5", &pairs),
        Ok(ip("203.0.113.7"))
    );
    // The plain-rightmost answer (one hop) would be the internal proxy.
    let one_hop = ClientIpStrategy::hops(1).unwrap();
    assert_eq!(resolve(&one_hop, "10.0.0.5", &pairs), Ok(ip("10.1.2.3")));
}

#[test]
fn row04_direct_untrusted_peer_ignores_every_header() {
    let got = resolve(
        &trusted10(),
        "198.51.100.9",
        &[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-real-ip", "1.1.1.1"),
            ("forwarded", "for=1.1.1.1"),
        ],
    );
    assert_eq!(got, Ok(ip("198.51.100.9")));
    let got = resolve(
        &trusted10_forwarded(),
        "198.51.100.9",
        &[("forwarded", "for=1.1.1.1")],
    );
    assert_eq!(got, Ok(ip("198.51.100.9")));
}

#[test]
fn row05_garbage_at_the_boundary_fails_closed() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, garbage")],
    );
    assert_eq!(got, malformed(XFF, 0));
}

#[test]
fn row06_aws_alb_example() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "oh, hi,,127.0.0.1,,,,, 203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

#[test]
fn row07_separators_without_space_or_with_tabs() {
    for value in [
        "6.6.6.6,203.0.113.7",
        "6.6.6.6,\t203.0.113.7",
        "6.6.6.6\t,\t203.0.113.7\t",
        "  6.6.6.6 ,  203.0.113.7  ",
    ] {
        let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", value)]);
        assert_eq!(got, Ok(ip("203.0.113.7")), "{value:?}");
    }
    // A tab is not a list separator: one entry, not an address.
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6\t203.0.113.7")],
    );
    assert_eq!(got, malformed(XFF, 0));
}

#[test]
fn row08_ports_brackets_zones_and_mapped_addresses_are_normalised() {
    for (value, want) in [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1%eth0", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
    ] {
        let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", value)]);
        assert_eq!(got, Ok(ip(want)), "{value:?}");
    }
    for bad in [
        "203.0.113.7:",
        "203.0.113.7:99999",
        "[2001:db8::1",
        "2001:db8::1%",
    ] {
        let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", bad)]);
        assert_eq!(got, malformed(XFF, 0), "{bad:?}");
    }
}

#[test]
fn row09_the_unconfigured_header_is_ignored() {
    // X-Forwarded-For configured; the client adds a Forwarded header of its own.
    let got = resolve(&trusted10(), "10.0.0.5", &[("forwarded", "for=6.6.6.6")]);
    assert_eq!(got, Ok(ip("10.0.0.5")));
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7"),
        ],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    // And the other way round.
    let got = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=203.0.113.7"),
        ],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

#[test]
fn row10_forwarded_sabotage_by_unclosed_quote() {
    // The proxy appended to the client's header…
    let got = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[("forwarded", "for=\"1.1.1.1, for=203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    // …or added its own instance.
    let got = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[
            ("forwarded", "for=\"1.1.1.1"),
            ("forwarded", "for=203.0.113.7"),
        ],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    // Other syntax errors on the client's side do not matter either.
    let got = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[("forwarded", "f*r=1.1.1.1, for=203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

#[test]
fn row11_obfuscated_identifier_at_the_boundary_is_an_error() {
    let got = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[("forwarded", "for=6.6.6.6, for=_hidden")],
    );
    assert_eq!(
        got,
        Err(ClientIpError::Obfuscated {
            header: FWD,
            entry_index: 0
        })
    );
}

#[test]
fn row12_one_ipv6_64_is_one_rate_limit_key() {
    let strategy = trusted10();
    let grouping = Ipv6Grouping::default();
    let mut keys = HashSet::new();
    let mut addresses = HashSet::new();
    for i in 0..5_000u64 {
        let host = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let addr = Ipv6Addr::from((0x2001_0db8_0001_0002u128 << 64) | u128::from(host));
        let value = addr.to_string();
        let client = resolve(&strategy, "10.0.0.5", &[("x-forwarded-for", &value)]).unwrap();
        addresses.insert(client);
        keys.insert(grouping.key(client));
    }
    assert_eq!(addresses.len(), 5_000);
    assert_eq!(keys.len(), 1);
}

#[test]
fn row13_huge_headers_cost_bounded_work() {
    // A megabyte of client-written entries: only the right end is read.
    let spoofed = "6.6.6.6, ".repeat(1 << 17) + "203.0.113.7";
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &spoofed)]);
    assert_eq!(got, Ok(ip("203.0.113.7")));

    // A megabyte of trusted-looking entries: at most 32 are examined, then an error.
    let internal = "10.9.9.9, ".repeat(1 << 17) + "10.1.1.1";
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &internal)]);
    assert_eq!(
        got,
        Err(ClientIpError::TooManyEntries {
            header: XFF,
            limit: 32
        })
    );

    // A megabyte without a single comma is one malformed entry.
    let blob = "1".repeat(1 << 20);
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &blob)]);
    assert_eq!(got, malformed(XFF, 0));

    // A megabyte of commas is not walked to the end either.
    let commas = ",".repeat(1 << 20);
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &commas)]);
    assert!(matches!(got, Err(ClientIpError::TooManyEntries { .. })));
}

// ---------------------------------------------------------------------------------------
// The trust walk.
// ---------------------------------------------------------------------------------------

#[test]
fn spoofed_prefixes_never_change_the_result() {
    let honest = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "203.0.113.7, 10.0.0.9")],
    );
    for spoof in [
        "1.1.1.1",
        "10.0.0.1",
        "garbage",
        "unknown",
        "1.1.1.1, 2.2.2.2, 3.3.3.3",
        ",,,",
        "\"",
    ] {
        let merged = format!("{spoof}, 203.0.113.7, 10.0.0.9");
        let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &merged)]);
        assert_eq!(got, honest, "{spoof:?}");
        let separate = resolve(
            &trusted10(),
            "10.0.0.5",
            &[
                ("x-forwarded-for", spoof),
                ("x-forwarded-for", "203.0.113.7, 10.0.0.9"),
            ],
        );
        assert_eq!(separate, honest, "{spoof:?}");
    }
}

#[test]
fn untrusted_peer_is_the_client_whatever_the_header() {
    for peer in ["198.51.100.9", "11.0.0.1", "2001:db8::9"] {
        let got = resolve(
            &trusted10(),
            peer,
            &[("x-forwarded-for", "10.0.0.1, garbage")],
        );
        assert_eq!(got, Ok(ip(peer)));
    }
}

#[test]
fn three_instances_merge_in_order() {
    // The client's entry is in the middle instance; the last one holds trusted proxies only.
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[
            ("x-forwarded-for", "6.6.6.6, 7.7.7.7"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.8"),
            ("x-forwarded-for", "10.0.0.9"),
        ],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    // Positions count across instances, from the right.
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[
            ("x-forwarded-for", "6.6.6.6, bad"),
            ("x-forwarded-for", "10.0.0.8"),
            ("x-forwarded-for", "10.0.0.9"),
        ],
    );
    assert_eq!(got, malformed(XFF, 2));
}

#[test]
fn garbage_between_trusted_proxies_is_never_stepped_over() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "203.0.113.7, garbage, 10.0.0.1")],
    );
    assert_eq!(got, malformed(XFF, 1));
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "203.0.113.7, unknown")],
    );
    assert_eq!(
        got,
        Err(ClientIpError::Obfuscated {
            header: XFF,
            entry_index: 0
        })
    );
}

#[test]
fn empty_elements_count_in_positions() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, nope,, 10.0.0.1")],
    );
    assert_eq!(got, malformed(XFF, 2));
}

#[test]
fn all_trusted_means_the_leftmost_entry_or_the_peer() {
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "10.1.1.1, 10.2.2.2")],
    );
    assert_eq!(got, Ok(ip("10.1.1.1")));
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", ", 10.1.1.1,")],
    );
    assert_eq!(got, Ok(ip("10.1.1.1")));
    assert_eq!(resolve(&trusted10(), "10.0.0.5", &[]), Ok(ip("10.0.0.5")));
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", "")]);
    assert_eq!(got, Ok(ip("10.0.0.5")));
}

#[test]
fn chains_up_to_the_limit_are_walked() {
    let mut entries: Vec<String> = (1..=31).map(|i| format!("10.0.0.{i}")).collect();
    entries.insert(0, "203.0.113.7".to_owned());
    let value = entries.join(", ");
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &value)]);
    assert_eq!(got, Ok(ip("203.0.113.7")));
    entries.push("10.0.0.32".to_owned());
    let value = entries.join(", ");
    let got = resolve(&trusted10(), "10.0.0.5", &[("x-forwarded-for", &value)]);
    assert_eq!(
        got,
        Err(ClientIpError::TooManyEntries {
            header: XFF,
            limit: 32
        })
    );
}

#[test]
fn non_utf8_bytes_are_malformed_only_at_the_boundary() {
    let strategy = trusted10();
    let mut map = HeaderMap::new();
    map.append(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"6.6.6.6, 203.0.113.\xff").unwrap(),
    );
    assert_eq!(
        strategy.resolve_from(Some(ip("10.0.0.5")), &map),
        malformed(XFF, 0)
    );
    let mut map = HeaderMap::new();
    map.append(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.7").unwrap(),
    );
    assert_eq!(
        strategy.resolve_from(Some(ip("10.0.0.5")), &map),
        Ok(ip("203.0.113.7"))
    );
}

#[test]
fn ipv6_proxies_and_clients() {
    let strategy = ClientIpStrategy::trusted_proxies([net("10.0.0.0/8"), net("fd00::/8")]).unwrap();
    let got = resolve(
        &strategy,
        "fd00::5",
        &[("x-forwarded-for", "2001:db8::7, fd12::1, 10.0.0.3")],
    );
    assert_eq!(got, Ok(ip("2001:db8::7")));
    let got = resolve(&strategy, "fe00::5", &[("x-forwarded-for", "2001:db8::7")]);
    assert_eq!(got, Ok(ip("fe00::5")));
}

#[test]
fn single_addresses_are_trusted_as_host_networks() {
    let strategy = ClientIpStrategy::trusted_proxies([IpNet::from(ip("192.168.1.7"))]).unwrap();
    let got = resolve(
        &strategy,
        "192.168.1.7",
        &[("x-forwarded-for", "203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    let got = resolve(
        &strategy,
        "192.168.1.8",
        &[("x-forwarded-for", "203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("192.168.1.8")));
}

// ---------------------------------------------------------------------------------------
// Forwarded.
// ---------------------------------------------------------------------------------------

#[test]
fn forwarded_quoted_ipv6_ports_and_parameters() {
    let strategy = trusted10_forwarded();
    for (value, want) in [
        ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
        ("for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
        ("for=\"2001:db8:cafe::17\"", "2001:db8:cafe::17"),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ("for=\"192.0.2.60:8080\"", "192.0.2.60"),
        ("proto=https;For=192.0.2.60", "192.0.2.60"),
        ("for=\"[2001:db8::1]:_port\"", "2001:db8::1"),
        ("for=\"[::ffff:192.0.2.60]\"", "192.0.2.60"),
        (
            "for=6.6.6.6, for=192.0.2.60;proto=https, for=10.0.0.7;by=_lb",
            "192.0.2.60",
        ),
    ] {
        let got = resolve(&strategy, "10.0.0.5", &[("forwarded", value)]);
        assert_eq!(got, Ok(ip(want)), "{value:?}");
    }
}

#[test]
fn forwarded_errors_at_the_boundary() {
    let strategy = trusted10_forwarded();
    let obfuscated = |entry_index| {
        Err(ClientIpError::Obfuscated {
            header: FWD,
            entry_index,
        })
    };
    for (value, want) in [
        ("for=unknown", obfuscated(0)),
        ("for=203.0.113.7, for=\"_hidden:_port\"", obfuscated(0)),
        ("for=203.0.113.7, for=unknown, for=10.0.0.2", obfuscated(1)),
        ("for=203.0.113.7, by=10.0.0.2", malformed(FWD, 0)),
        (
            "for=203.0.113.7, for=10.0.0.2;for=10.0.0.3",
            malformed(FWD, 0),
        ),
        ("for=203.0.113.7, for=[2001:db8::1", malformed(FWD, 0)),
        ("for=203.0.113.7;host=\"a,b\"", malformed(FWD, 0)),
    ] {
        let got = resolve(&strategy, "10.0.0.5", &[("forwarded", value)]);
        assert_eq!(got, want, "{value:?}");
    }
}

// ---------------------------------------------------------------------------------------
// ::ffff: mapping.
// ---------------------------------------------------------------------------------------

#[test]
fn ipv4_mapped_addresses_are_ipv4_everywhere() {
    // The peer.
    let got = resolve(
        &trusted10(),
        "::ffff:10.0.0.5",
        &[("x-forwarded-for", "203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
    let got = resolve(&ClientIpStrategy::peer(), "::ffff:198.51.100.9", &[]);
    assert_eq!(got, Ok(ip("198.51.100.9")));
    // The trusted networks.
    let mapped = ClientIpStrategy::trusted_proxies([net("::ffff:10.0.0.0/104")]).unwrap();
    let got = resolve(
        &mapped,
        "10.0.0.5",
        &[("x-forwarded-for", "10.1.1.1, ::ffff:10.2.2.2")],
    );
    assert_eq!(got, Ok(ip("10.1.1.1")));
    let got = resolve(&mapped, "11.0.0.5", &[("x-forwarded-for", "203.0.113.7")]);
    assert_eq!(got, Ok(ip("11.0.0.5")));
    // The entries.
    let got = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "::ffff:203.0.113.7, ::ffff:10.0.0.1")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));
}

// ---------------------------------------------------------------------------------------
// Hop counts.
// ---------------------------------------------------------------------------------------

#[test]
fn hops_count_from_the_right_with_the_peer_as_hop_zero() {
    let pairs = [("x-forwarded-for", "6.6.6.6, 203.0.113.7, 198.51.100.2")];
    let two = ClientIpStrategy::hops(2).unwrap();
    assert_eq!(
        two.resolve_from(None, &headers(&pairs)),
        Ok(ip("203.0.113.7"))
    );
    assert_eq!(resolve(&two, "10.0.0.5", &pairs), Ok(ip("203.0.113.7")));
    let one = ClientIpStrategy::hops(1).unwrap();
    assert_eq!(resolve(&one, "10.0.0.5", &pairs), Ok(ip("198.51.100.2")));
    // Empty elements are not hops.
    let sparse = [("x-forwarded-for", "6.6.6.6, 203.0.113.7,, 198.51.100.2,")];
    assert_eq!(resolve(&two, "10.0.0.5", &sparse), Ok(ip("203.0.113.7")));
}

#[test]
fn hops_fail_when_the_chain_is_short_or_the_entry_is_bad() {
    let three = ClientIpStrategy::hops(3).unwrap();
    let got = resolve(
        &three,
        "10.0.0.5",
        &[("x-forwarded-for", "203.0.113.7, 198.51.100.2")],
    );
    assert_eq!(
        got,
        Err(ClientIpError::MissingHops {
            header: XFF,
            expected: 3,
            found: 2
        })
    );
    let two = ClientIpStrategy::hops(2).unwrap();
    let got = resolve(
        &two,
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, junk, 198.51.100.2")],
    );
    assert_eq!(got, malformed(XFF, 1));
}

#[test]
fn hops_read_forwarded_too() {
    let two = ClientIpStrategy::hops(2).unwrap().header(FWD);
    let got = resolve(
        &two,
        "10.0.0.5",
        &[
            ("forwarded", "for=\"6.6.6.6"),
            ("forwarded", "for=\"[2001:db8::7]:1\", for=198.51.100.2"),
        ],
    );
    assert_eq!(got, Ok(ip("2001:db8::7")));
    assert_eq!(two.forwarding_header(), Some(FWD));
}

// ---------------------------------------------------------------------------------------
// Peer address and requests.
// ---------------------------------------------------------------------------------------

#[test]
fn peer_strategy_is_the_default_and_reads_no_header() {
    let strategy = ClientIpStrategy::default();
    assert_eq!(strategy.forwarding_header(), None);
    let got = resolve(&strategy, "198.51.100.9", &[("x-forwarded-for", "1.1.1.1")]);
    assert_eq!(got, Ok(ip("198.51.100.9")));
    // Setting a header does not make the peer strategy read it.
    let strategy = ClientIpStrategy::peer().header(FWD);
    let got = resolve(&strategy, "198.51.100.9", &[("forwarded", "for=1.1.1.1")]);
    assert_eq!(got, Ok(ip("198.51.100.9")));
}

#[test]
fn missing_peer_is_an_error_that_says_how_to_fix_it() {
    let empty = HeaderMap::new();
    assert_eq!(
        ClientIpStrategy::peer().resolve_from(None, &empty),
        Err(ClientIpError::MissingPeer)
    );
    let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
    assert_eq!(
        trusted10().resolve_from(None, &xff),
        Err(ClientIpError::MissingPeer)
    );
    let message = ClientIpError::MissingPeer.to_string();
    assert!(
        message.contains(
            "serve with axum's `into_make_service_with_connect_info::<SocketAddr>()` and \
             enable tower-shield's `axum` feature, or insert a `PeerAddr`/`SocketAddr` \
             request extension"
        ),
        "{message}"
    );
}

#[test]
fn resolve_reads_peer_extensions() {
    let socket: SocketAddr = "198.51.100.9:4000".parse().unwrap();
    let via_socket = Request::builder().extension(socket).body(()).unwrap();
    let (parts, ()) = via_socket.into_parts();
    assert_eq!(
        ClientIpStrategy::peer().resolve(&parts),
        Ok(ip("198.51.100.9"))
    );

    // PeerAddr wins over a SocketAddr extension.
    let both = Request::builder()
        .extension(socket)
        .extension(PeerAddr("10.0.0.5:80".parse().unwrap()))
        .header("x-forwarded-for", "203.0.113.7")
        .body(())
        .unwrap();
    assert_eq!(trusted10().resolve_request(&both), Ok(ip("203.0.113.7")));
    let (parts, ()) = both.into_parts();
    assert_eq!(trusted10().resolve(&parts), Ok(ip("203.0.113.7")));

    let none = Request::builder().body(()).unwrap();
    assert_eq!(
        ClientIpStrategy::peer().resolve_request(&none),
        Err(ClientIpError::MissingPeer)
    );
}

#[cfg(feature = "axum")]
#[test]
fn resolve_reads_axum_connect_info() {
    use axum::extract::ConnectInfo;
    let socket: SocketAddr = "[::ffff:198.51.100.9]:4000".parse().unwrap();
    let request = Request::builder()
        .extension(ConnectInfo(socket))
        .body(())
        .unwrap();
    assert_eq!(
        ClientIpStrategy::peer().resolve_request(&request),
        Ok(ip("198.51.100.9"))
    );
}

#[test]
fn error_messages_name_the_position_never_the_content() {
    let err = resolve(
        &trusted10(),
        "10.0.0.5",
        &[("x-forwarded-for", "<script>alert(1)</script>")],
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("X-Forwarded-For"), "{message}");
    assert!(message.contains("entry 0"), "{message}");
    assert!(!message.contains("script"), "{message}");
    let err = resolve(
        &trusted10_forwarded(),
        "10.0.0.5",
        &[("forwarded", "for=_evil_marker")],
    )
    .unwrap_err();
    assert!(!err.to_string().contains("evil_marker"), "{err}");
    assert!(!format!("{err:?}").contains("evil_marker"), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// IPv6 grouping.
// ---------------------------------------------------------------------------------------

#[test]
fn ipv6_grouping_by_64() {
    let g = Ipv6Grouping::default();
    assert_eq!(g.prefix_len(), 64);
    let a = ip("2001:db8:1:2::1");
    let b = ip("2001:db8:1:2:ffff:ffff:ffff:ffff");
    let c = ip("2001:db8:1:3::1");
    assert_eq!(g.group(a), g.group(b));
    assert_eq!(g.key(a), g.key(b));
    assert_ne!(g.group(a), g.group(c));
    assert_ne!(g.key(a), g.key(c));
    assert_eq!(g.group(a), ip("2001:db8:1:2::"));
    // IPv4 keeps every bit.
    assert_ne!(g.key(ip("203.0.113.7")), g.key(ip("203.0.113.8")));
    assert_eq!(g.group(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
    // /48 groups what /64 keeps apart; /128 keeps every address.
    let g48 = Ipv6Grouping::new(48).unwrap();
    assert_eq!(g48.group(a), g48.group(c));
    let g128 = Ipv6Grouping::new(128).unwrap();
    assert_ne!(g128.group(a), g128.group(b));
}

// ---------------------------------------------------------------------------------------
// Configuration errors.
// ---------------------------------------------------------------------------------------

#[test]
fn empty_trusted_list_points_to_peer() {
    let err = config_error(ClientIpStrategy::trusted_proxies(Vec::new()));
    assert_eq!(err.problems().len(), 1);
    assert_eq!(err.problems()[0].setting(), "client_ip.trusted_proxies");
    assert!(
        err.to_string().contains("ClientIpStrategy::peer()"),
        "{err}"
    );
}

#[test]
fn trusting_everyone_is_refused() {
    for everyone in ["0.0.0.0/0", "::/0", "::ffff:0:0/96", "::/64"] {
        let err = config_error(ClientIpStrategy::trusted_proxies([net(everyone)]));
        assert_eq!(err.problems().len(), 1, "{everyone}: {err}");
        assert!(err.to_string().contains("spoofable"), "{everyone}: {err}");
        assert!(err.to_string().contains(everyone), "{everyone}: {err}");
    }
}

#[test]
fn every_bad_network_is_reported_at_once() {
    let err = config_error(ClientIpStrategy::trusted_proxies([
        net("0.0.0.0/0"),
        net("10.0.0.0/8"),
        net("::/0"),
    ]));
    assert_eq!(err.problems().len(), 2, "{err}");
}

#[test]
fn narrow_networks_are_accepted() {
    for ok in [
        "0.0.0.0/1",
        "::ffff:10.0.0.0/104",
        "::ffff:0:0/97",
        "2001:db8::/32",
        "::1/128",
    ] {
        assert!(ClientIpStrategy::trusted_proxies([net(ok)]).is_ok(), "{ok}");
    }
}

#[test]
fn hop_count_bounds() {
    let err = config_error(ClientIpStrategy::hops(0));
    assert_eq!(err.problems()[0].setting(), "client_ip.hops");
    assert!(
        err.to_string().contains("ClientIpStrategy::peer()"),
        "{err}"
    );
    assert!(ClientIpStrategy::hops(1).is_ok());
    assert!(ClientIpStrategy::hops(32).is_ok());
    let err = config_error(ClientIpStrategy::hops(33));
    assert!(err.to_string().contains("32"), "{err}");
}

#[test]
fn ipv6_prefix_bounds() {
    for bad in [0, 31, 129, 255] {
        let err = Ipv6Grouping::new(bad).unwrap_err();
        assert_eq!(err.problems()[0].setting(), "client_ip.ipv6_prefix");
    }
    for good in [32, 48, 56, 64, 128] {
        assert_eq!(Ipv6Grouping::new(good).unwrap().prefix_len(), good);
    }
}

#[test]
fn strategy_from_config() {
    let none = config(&[]);
    let strategy = none.client_ip_strategy().unwrap();
    assert_eq!(strategy.forwarding_header(), None);

    let config = config(&[("TRUSTED_PROXIES", "10.0.0.0/8")]);
    let strategy = config.client_ip_strategy().unwrap();
    let got = resolve(
        &strategy,
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
    );
    assert_eq!(got, Ok(ip("203.0.113.7")));

    // Refused either when the configuration is read or when the strategy is built.
    let err = match try_config(&[("TRUSTED_PROXIES", "0.0.0.0/0")]) {
        Ok(config) => config.client_ip_strategy().unwrap_err(),
        Err(e) => e,
    };
    assert!(
        err.problems()[0].setting().contains("TRUSTED_PROXIES"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Allocation: the hot path allocates nothing.
// ---------------------------------------------------------------------------------------

#[global_allocator]
static ALLOCATOR: common::alloc::Counting = common::alloc::Counting;

/// The heap allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> usize {
    common::alloc::allocations_during(f).1
}

#[test]
fn resolving_allocates_nothing() {
    let peer = ClientIpStrategy::peer();
    let xff = trusted10();
    let fwd = trusted10_forwarded();
    let hops = ClientIpStrategy::hops(4).unwrap();
    let xff_map = headers(&[
        ("x-forwarded-for", "6.6.6.6, 203.0.113.7:4711, 10.0.0.9"),
        ("x-forwarded-for", "10.0.0.8,, 10.0.0.7"),
    ]);
    let fwd_map = headers(&[(
        "forwarded",
        "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.7;by=_lb",
    )]);
    let bad_map = headers(&[("x-forwarded-for", "6.6.6.6, garbage")]);
    let request = Request::builder()
        .extension(PeerAddr("10.0.0.5:80".parse().unwrap()))
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.7")
        .body(())
        .unwrap();
    let (parts, ()) = Request::builder()
        .extension("198.51.100.9:80".parse::<SocketAddr>().unwrap())
        .body(())
        .unwrap()
        .into_parts();
    let trusted_peer = Some(ip("10.0.0.5"));

    type Resolve<'a> = Box<dyn Fn() -> Result<IpAddr, ClientIpError> + 'a>;
    let cases: [(&str, Resolve); 7] = [
        ("peer", Box::new(|| peer.resolve(&parts))),
        ("xff", Box::new(|| xff.resolve_from(trusted_peer, &xff_map))),
        (
            "forwarded",
            Box::new(|| fwd.resolve_from(trusted_peer, &fwd_map)),
        ),
        (
            "hops",
            Box::new(|| hops.resolve_from(trusted_peer, &xff_map)),
        ),
        (
            "malformed",
            Box::new(|| xff.resolve_from(trusted_peer, &bad_map)),
        ),
        ("request", Box::new(|| xff.resolve_request(&request))),
        (
            "missing peer",
            Box::new(|| xff.resolve_from(None, &xff_map)),
        ),
    ];
    for (name, resolve) in &cases {
        let first = resolve(); // any lazy one-time set-up happens here
        assert_eq!(allocations(resolve), 0, "{name}: {first:?}");
    }
    assert_eq!(cases[1].1(), Ok(ip("203.0.113.7")));
    assert_eq!(cases[2].1(), Ok(ip("2001:db8::7")));
    assert_eq!(cases[3].1(), Ok(ip("203.0.113.7")));
    // The counter does count: building a header map allocates.
    assert!(allocations(|| headers(&[("x-forwarded-for", "1.2.3.4")])) > 0);
}

// ---------------------------------------------------------------------------------------
// Property tests.
// ---------------------------------------------------------------------------------------

fn any_strategy() -> impl Strategy<Value = ClientIpStrategy> {
    let header = prop_oneof![Just(XFF), Just(FWD)];
    let kind = prop_oneof![
        Just(ClientIpStrategy::peer()),
        Just(trusted10()),
        Just(ClientIpStrategy::trusted_proxies([net("10.0.0.0/8"), net("fd00::/8")]).unwrap()),
        (1usize..=32).prop_map(|n| ClientIpStrategy::hops(n).unwrap()),
    ];
    (kind, header).prop_map(|(kind, header)| kind.header(header))
}

/// Header values of arbitrary bytes (those `HeaderValue` accepts), or near-misses of real
/// entries, which reach deeper into the parsers.
fn any_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120)
            .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok()),
        "[0-9a-fA-F:.\\[\\]%_,;=\" \tforunkwby]{0,80}"
            .prop_filter_map("not a header value", |s| HeaderValue::from_str(&s).ok()),
    ]
}

/// An address outside 10.0.0.0/8 and fd00::/8 (and not unspecified).
fn untrusted_ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
        .prop_map(|ip| ip.to_canonical())
        .prop_filter("trusted", |ip| !ip.is_unspecified() && !in_trusted(*ip))
}

/// An address inside 10.0.0.0/8 or fd00::/8.
fn trusted_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from((n & 0x00ff_ffff) | 0x0a00_0000))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from((n >> 8) | (0xfd << 120)))),
    ]
}

fn in_trusted(ip: IpAddr) -> bool {
    net("10.0.0.0/8").contains(&ip) || net("fd00::/8").contains(&ip)
}

/// One address as a proxy might write it in `X-Forwarded-For` (`style` picks the form).
fn xff_entry(ip: IpAddr, style: u8) -> String {
    match (ip, style % 3) {
        (_, 0) => ip.to_string(),
        (IpAddr::V4(v4), 1) => format!("{v4}:{}", 1024 + u16::from(style)),
        (IpAddr::V6(v6), 1) => format!("[{v6}]:{}", 1024 + u16::from(style)),
        (IpAddr::V4(v4), _) => format!("::ffff:{v4}"),
        (IpAddr::V6(v6), _) => format!("[{v6}]"),
    }
}

/// One `Forwarded` element for `ip`.
fn forwarded_element(ip: IpAddr, style: u8) -> String {
    let node = match (ip, style % 2) {
        (IpAddr::V4(v4), 0) => v4.to_string(),
        (IpAddr::V4(v4), _) => format!("\"{v4}:{}\"", 1024 + u16::from(style)),
        (IpAddr::V6(v6), 0) => format!("\"[{v6}]\""),
        (IpAddr::V6(v6), _) => format!("\"[{v6}]:_p{style}\""),
    };
    match style % 3 {
        0 => format!("for={node}"),
        1 => format!("for={node};proto=https"),
        _ => format!("by=\"[fd00::1]\";for={node}"),
    }
}

/// The chain `client, proxies…` as header instances: entries written with random styles
/// and split into instances at random points. Returns the header name and its instances.
fn chain_headers(
    header: ForwardingHeader,
    client: IpAddr,
    proxies: &[IpAddr],
    styles: &[u8],
    splits: &[bool],
) -> Vec<String> {
    let mut instances = vec![String::new()];
    for (i, addr) in std::iter::once(client)
        .chain(proxies.iter().copied())
        .enumerate()
    {
        let style = styles.get(i).copied().unwrap_or(0);
        let entry = match header {
            ForwardingHeader::Forwarded => forwarded_element(addr, style),
            _ => xff_entry(addr, style),
        };
        let current = instances.last_mut().unwrap();
        if !current.is_empty() {
            current.push_str(if style % 2 == 0 { ", " } else { "," });
        }
        current.push_str(&entry);
        if splits.get(i).copied().unwrap_or(false) {
            instances.push(String::new());
        }
    }
    instances.retain(|s| !s.is_empty());
    instances
}

fn map_of(header: ForwardingHeader, instances: &[String], prefix: &[HeaderValue]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in prefix {
        map.append(header.header_name(), value.clone());
    }
    for value in instances {
        map.append(header.header_name(), HeaderValue::from_str(value).unwrap());
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Nothing panics on any header bytes, with any strategy and any peer.
    #[test]
    fn resolve_never_panics(
        strategy in any_strategy(),
        peer in proptest::option::of(prop_oneof![trusted_ip(), any::<IpAddr>()]),
        values in proptest::collection::vec(any_value(), 0..4),
        other in any_value(),
    ) {
        let mut map = HeaderMap::new();
        for value in &values {
            map.append("x-forwarded-for", value.clone());
            map.append("forwarded", value.clone());
        }
        map.append("x-real-ip", other);
        if let Ok(client) = strategy.resolve_from(peer, &map) {
            prop_assert_eq!(client, client.to_canonical());
            // Headers never yield an unspecified address; only the peer itself can be one.
            prop_assert!(!client.is_unspecified() || peer.map(|p| p.to_canonical()) == Some(client));
        }
    }

    /// For a chain (untrusted client, trusted proxies…) behind a trusted peer, the client is
    /// the rightmost untrusted address, in either header syntax.
    #[test]
    fn rightmost_untrusted_is_the_client(
        header in prop_oneof![Just(XFF), Just(FWD)],
        client in untrusted_ip(),
        proxies in proptest::collection::vec(trusted_ip(), 0..6),
        peer in trusted_ip(),
        styles in proptest::collection::vec(any::<u8>(), 7),
        splits in proptest::collection::vec(any::<bool>(), 7),
    ) {
        let strategy = ClientIpStrategy::trusted_proxies([net("10.0.0.0/8"), net("fd00::/8")])
            .unwrap()
            .header(header);
        let instances = chain_headers(header, client, &proxies, &styles, &splits);
        let map = map_of(header, &instances, &[]);
        prop_assert_eq!(strategy.resolve_from(Some(peer), &map), Ok(client));

        // The same chain counted in hops: the client is hop `proxies.len() + 1`.
        let hops = ClientIpStrategy::hops(proxies.len() + 1).unwrap().header(header);
        prop_assert_eq!(hops.resolve_from(Some(peer), &map), Ok(client));
    }

    /// Whatever the client writes on the left — extra header instances before the proxies'
    /// or text before the first proxy's entry — the result does not change.
    #[test]
    fn attacker_prefixes_change_nothing(
        header in prop_oneof![Just(XFF), Just(FWD)],
        client in untrusted_ip(),
        proxies in proptest::collection::vec(trusted_ip(), 0..6),
        peer in trusted_ip(),
        styles in proptest::collection::vec(any::<u8>(), 7),
        splits in proptest::collection::vec(any::<bool>(), 7),
        extra_instances in proptest::collection::vec(any_value(), 0..3),
        inline_prefix in any_value(),
    ) {
        let strategy = ClientIpStrategy::trusted_proxies([net("10.0.0.0/8"), net("fd00::/8")])
            .unwrap()
            .header(header);
        let mut instances = chain_headers(header, client, &proxies, &styles, &splits);
        let honest = strategy.resolve_from(Some(peer), &map_of(header, &instances, &[]));
        prop_assert_eq!(&honest, &Ok(client));

        let spoofed = map_of(header, &instances, &extra_instances);
        prop_assert_eq!(&strategy.resolve_from(Some(peer), &spoofed), &honest);

        // The first proxy appends ", <client>" to whatever the client sent.
        let prefix = String::from_utf8_lossy(inline_prefix.as_bytes()).into_owned();
        instances[0] = format!("{prefix}, {}", instances[0]);
        if HeaderValue::from_str(&instances[0]).is_ok() {
            let spoofed = map_of(header, &instances, &extra_instances);
            prop_assert_eq!(&strategy.resolve_from(Some(peer), &spoofed), &honest);
        }
    }

    /// A direct (untrusted) peer is the client whatever the headers say.
    #[test]
    fn untrusted_peer_is_always_the_client(
        strategy_header in prop_oneof![Just(XFF), Just(FWD)],
        peer in untrusted_ip(),
        values in proptest::collection::vec(any_value(), 0..4),
    ) {
        let strategy = trusted10().header(strategy_header);
        let mut map = HeaderMap::new();
        for value in values {
            map.append(strategy_header.header_name(), value);
        }
        prop_assert_eq!(strategy.resolve_from(Some(peer), &map), Ok(peer));
    }

    /// Grouping keeps IPv4 whole and puts exactly the addresses of one /64 together.
    #[test]
    fn grouping_by_64(a in any::<u128>(), b in any::<u128>(), v4 in any::<u32>()) {
        let g = Ipv6Grouping::default();
        let (a6, b6) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
        prop_assume!(a6.to_ipv4_mapped().is_none() && b6.to_ipv4_mapped().is_none());
        let same = a >> 64 == b >> 64;
        prop_assert_eq!(g.key(IpAddr::V6(a6)) == g.key(IpAddr::V6(b6)), same);
        let v4 = IpAddr::V4(Ipv4Addr::from(v4));
        prop_assert_eq!(g.group(v4), v4);
    }
}
