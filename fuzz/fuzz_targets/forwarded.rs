//! Client-IP resolution from `X-Forwarded-For` / `Forwarded`, through `ClientIpStrategy` on an
//! `http::Request` with a peer address, compared with a plain model of the documented walk.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue, Request};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use tower_shield::client_ip::{ClientIpError, ClientIpStrategy, ForwardingHeader, PeerAddr};

/// Networks to trust, picked by a bit mask; addresses are drawn inside them often.
const NETS: &[&str] = &[
    "10.0.0.0/8",
    "192.168.1.0/24",
    "2001:db8::/32",
    "::ffff:172.16.0.0/108",
    "fd00::/8",
    "203.0.113.7/32",
];

const MAX_ELEMENTS: usize = 32;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    /// An address inside `NETS[net]`.
    InNet(u8, u32, u64),
    V4([u8; 4]),
    V6([u16; 8]),
}

impl Addr {
    fn ip(self) -> IpAddr {
        match self {
            Addr::InNet(net, lo, lo6) => {
                let net: IpNet = NETS[usize::from(net) % NETS.len()].parse().unwrap();
                match net {
                    IpNet::V4(n) => {
                        let host = lo & !u32::from(n.netmask());
                        IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
                    }
                    IpNet::V6(n) => {
                        let host =
                            (u128::from(lo6) | (u128::from(lo) << 64)) & !u128::from(n.netmask());
                        IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
                    }
                }
            }
            Addr::V4(b) => IpAddr::V4(b.into()),
            Addr::V6(s) => IpAddr::V6(s.into()),
        }
    }
}

/// How one list element is written.
#[derive(Arbitrary, Debug)]
enum Element {
    Bare(Addr),
    WithPort(Addr, u16),
    Mapped(Addr),
    Zone(Addr, u8),
    ForParam(Addr, u16, bool),
    Unknown,
    Obfuscated(u8),
    Raw(Vec<u8>),
}

impl Element {
    fn render(&self, out: &mut Vec<u8>) {
        let text = match self {
            Element::Bare(a) => a.ip().to_string(),
            Element::WithPort(a, p) => SocketAddr::new(a.ip(), *p).to_string(),
            Element::Mapped(a) => match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().to_string(),
                IpAddr::V6(v6) => v6.to_string(),
            },
            Element::Zone(a, z) => format!("{}%eth{z}", a.ip()),
            Element::ForParam(a, p, quoted) => {
                let node = SocketAddr::new(a.ip(), *p).to_string();
                if *quoted {
                    format!("proto=https;for=\"{node}\"")
                } else {
                    format!("for={node};by=10.0.0.1")
                }
            }
            Element::Unknown => "unknown".to_owned(),
            Element::Obfuscated(n) => format!("for=_hidden{n}"),
            Element::Raw(bytes) => {
                out.extend_from_slice(bytes);
                return;
            }
        };
        out.extend_from_slice(text.as_bytes());
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    trusted: u8,
    hops: u8,
    forwarded: bool,
    peer: Option<(Addr, bool)>,
    /// Header instances, each a list of elements joined by a separator.
    instances: Vec<(Vec<Element>, u8)>,
}

const SEPARATORS: &[&[u8]] = &[b",", b", ", b" ,\t", b",,", b"\t, "];

fn header_values(input: &Input) -> Vec<HeaderValue> {
    let mut values = Vec::new();
    for (elements, sep) in &input.instances {
        let mut bytes = Vec::new();
        for (i, e) in elements.iter().enumerate() {
            if i > 0 {
                bytes.extend_from_slice(SEPARATORS[usize::from(*sep) % SEPARATORS.len()]);
            }
            e.render(&mut bytes);
        }
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            values.push(v);
        }
    }
    values
}

/// One element's address, through the public API: a one-element header read with `hops(1)`.
fn parse_element(header: ForwardingHeader, element: &[u8]) -> Result<IpAddr, ClientIpError> {
    let strategy = ClientIpStrategy::hops(1).unwrap().header(header);
    let mut headers = HeaderMap::new();
    headers.insert(
        header.header_name(),
        HeaderValue::from_bytes(element).expect("a piece of a header value"),
    );
    strategy.resolve_from(None, &headers)
}

/// Every maximal run of address characters, and each of its prefixes, parsed as an address.
fn addresses_in(element: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for run in element.split(|b| !(b.is_ascii_hexdigit() || *b == b':' || *b == b'.')) {
        for end in 1..=run.len() {
            if let Ok(ip) = std::str::from_utf8(&run[..end]).unwrap().parse::<IpAddr>() {
                out.push(ip.to_canonical());
            }
        }
    }
    out
}

/// The header's non-empty elements, right to left, with their index among all elements;
/// `None` when more than `MAX_ELEMENTS` would have to be looked at to get them all.
fn elements(values: &[HeaderValue]) -> Vec<Result<(usize, Vec<u8>), ()>> {
    let mut out = Vec::new();
    let mut index = 0;
    for value in values.iter().rev() {
        for raw in value.as_bytes().rsplit(|b| *b == b',') {
            if index == MAX_ELEMENTS {
                out.push(Err(()));
                return out;
            }
            index += 1;
            let trimmed = raw
                .iter()
                .position(|b| *b != b' ' && *b != b'\t')
                .map(|s| {
                    let e = raw.iter().rposition(|b| *b != b' ' && *b != b'\t').unwrap();
                    raw[s..=e].to_vec()
                })
                .unwrap_or_default();
            if !trimmed.is_empty() {
                out.push(Ok((index - 1, trimmed)));
            }
        }
    }
    out
}

fn with_index(err: ClientIpError, index: usize) -> ClientIpError {
    match err {
        ClientIpError::Malformed { header, .. } => ClientIpError::Malformed {
            header,
            entry_index: index,
        },
        ClientIpError::Obfuscated { header, .. } => ClientIpError::Obfuscated {
            header,
            entry_index: index,
        },
        other => panic!("one element gave {other:?}"),
    }
}

fuzz_target!(|input: Input| {
    let header = if input.forwarded {
        ForwardingHeader::Forwarded
    } else {
        ForwardingHeader::XForwardedFor
    };
    let values = header_values(&input);
    let peer = input.peer.map(|(a, mapped)| match (a.ip(), mapped) {
        (IpAddr::V4(v4), true) => IpAddr::V6(v4.to_ipv6_mapped()),
        (ip, _) => ip,
    });
    let mut builder = Request::builder();
    for v in &values {
        builder = builder.header(header.header_name(), v.clone());
        // The header not chosen is never read: the client may set it to anything.
        let other = match header {
            ForwardingHeader::XForwardedFor => ForwardingHeader::Forwarded,
            _ => ForwardingHeader::XForwardedFor,
        };
        builder = builder.header(other.header_name(), "for=6.6.6.6, 6.6.6.6");
    }
    if let Some(ip) = peer {
        builder = builder.extension(PeerAddr(SocketAddr::new(ip, 4711)));
    }
    let request = builder.body(()).unwrap();
    let peer = peer.map(|ip| ip.to_canonical());
    let elements = elements(&values);

    // Each element on its own: an address that is really in it, canonical and specified.
    for (_, element) in elements.iter().flatten() {
        if let Ok(ip) = parse_element(header, element) {
            assert_eq!(ip, ip.to_canonical());
            assert!(!ip.is_unspecified());
            assert!(
                addresses_in(element).contains(&ip),
                "{ip} is not in {:?}",
                String::from_utf8_lossy(element)
            );
        }
    }

    // `peer()`: the peer, whatever the headers say.
    let got = ClientIpStrategy::peer().resolve_request(&request);
    assert_eq!(got, peer.ok_or(ClientIpError::MissingPeer));

    // `trusted_proxies`: the rightmost untrusted address, never one left of it.
    let nets: Vec<IpNet> = NETS
        .iter()
        .enumerate()
        .filter(|(i, _)| input.trusted & (1 << i) != 0)
        .map(|(_, n)| n.parse().unwrap())
        .collect();
    if let Ok(strategy) = ClientIpStrategy::trusted_proxies(nets.iter().copied()) {
        let strategy = strategy.header(header);
        let trusted = |ip: IpAddr| {
            nets.iter().any(|n| n.contains(&ip))
                || match ip {
                    IpAddr::V4(v4) => nets
                        .iter()
                        .any(|n| n.contains(&IpAddr::V6(v4.to_ipv6_mapped()))),
                    IpAddr::V6(_) => false,
                }
        };
        let expected = match peer {
            None => Err(ClientIpError::MissingPeer),
            Some(peer) if !trusted(peer) => Ok(peer),
            Some(peer) => {
                let mut client = Ok(peer);
                for element in &elements {
                    let Ok((index, element)) = element else {
                        client = Err(ClientIpError::TooManyEntries {
                            header,
                            limit: MAX_ELEMENTS,
                        });
                        break;
                    };
                    match parse_element(header, element) {
                        Err(e) => {
                            client = Err(with_index(e, *index));
                            break;
                        }
                        Ok(ip) if !trusted(ip) => {
                            client = Ok(ip);
                            break;
                        }
                        Ok(ip) => client = Ok(ip),
                    }
                }
                client
            }
        };
        let got = strategy.resolve_request(&request);
        assert_eq!(
            got, expected,
            "trusted {nets:?}, peer {peer:?}, header {values:?}"
        );
        if let Ok(ip) = got {
            assert!(
                Some(ip) == peer
                    || elements
                        .iter()
                        .flatten()
                        .any(|(_, e)| addresses_in(e).contains(&ip)),
                "{ip} is neither the peer nor in the header"
            );
        }
    }

    // `hops(n)`: the n-th non-empty element from the right.
    let n = usize::from(input.hops % 34);
    match ClientIpStrategy::hops(n) {
        Err(_) => assert!(n == 0 || n > MAX_ELEMENTS),
        Ok(strategy) => {
            let strategy = strategy.header(header);
            let mut found = 0;
            let mut expected = None;
            for element in &elements {
                let Ok((index, element)) = element else {
                    expected = Some(Err(ClientIpError::TooManyEntries {
                        header,
                        limit: MAX_ELEMENTS,
                    }));
                    break;
                };
                found += 1;
                if found == n {
                    expected =
                        Some(parse_element(header, element).map_err(|e| with_index(e, *index)));
                    break;
                }
            }
            let expected = expected.unwrap_or(Err(ClientIpError::MissingHops {
                header,
                expected: n,
                found,
            }));
            assert_eq!(strategy.resolve_request(&request), expected);
        }
    }
});
