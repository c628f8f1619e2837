//! Host names, as the layers that look at them agree to read them.

use std::net::IpAddr;

/// Whether `host` (a URI host: a name, an IPv4 address or a bracketed IPv6 address) names this
/// machine's loopback: `localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`, `[::ffff:127.x.y.z]`,
/// in any case and with a trailing dot.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if host.len() > 10 && host.is_char_boundary(host.len() - 10) {
        let (_, tail) = host.split_at(host.len() - 10);
        if tail.eq_ignore_ascii_case(".localhost") {
            return true;
        }
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "app.localhost",
            "127.0.0.1",
            "127.9.8.7",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "localhost.example.com",
            "mylocalhost",
            "128.0.0.1",
            "[::2]",
            "",
            "é",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
