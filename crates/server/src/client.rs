//! Who the client is: the address a request came from, for rate limits and the metrics
//! endpoint's access rule.
//!
//! Behind a load balancer every request arrives from the balancer's address, so per-address
//! limits would put every client in one bucket. A proxy says who its client was in `Forwarded`
//! (RFC 7239) or `X-Forwarded-For`, but anyone can send those headers, so they are read only
//! when the peer itself is a configured trusted proxy (`--trusted-proxy CIDR`). The client is
//! then the right-most address of the chain (the headers' addresses, then the peer) that is not
//! itself a trusted proxy: every hop to its right was added by a proxy we trust, every entry to
//! its left could have been written by the client. An entry that is not an address (`unknown`,
//! an obfuscated name) ends the walk: the client is the trusted hop that wrote it.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether none is configured (forwarding headers are then never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `address` is one of the trusted proxies (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(address) => {
                    client = address.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // The trusted proxy to the right could not name its client.
                None => return client,
            }
        }
        client
    }

    /// The client's address of an actix request (`None` when actix knows no peer, as in some
    /// in-process tests).
    pub fn of(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        Some(self.client_address(peer, request.headers()))
    }
}

/// Parses a `--trusted-proxy` value: a network (`10.0.0.0/8`, `fd00::/8`) or one address.
pub fn parse_network(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{value}` is neither an address nor a network (CIDR)"))
}

/// Whether the request says it passed through a proxy (`Forwarded`, `X-Forwarded-For` or
/// `X-Real-IP`), whoever sent it.
pub fn says_forwarded(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The forwarded-for chain, left (the original client) to right (the last proxy's client):
/// from `Forwarded` when present, else from `X-Forwarded-For`; `None` for an entry that is not
/// an address. Every header line counts, in order.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value))
                })
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|line| line.split(','))
        .map(parse_node)
        .collect()
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"').trim();
    if let Ok(address) = value.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = value.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let bracketed = value.strip_prefix('[')?.split(']').next()?;
    bracketed.parse::<IpAddr>().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(vec![parse_network("10.0.0.0/8").unwrap()]);
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), &spoofed),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &spoofed),
            ip("203.0.113.9")
        );
        // The client wrote the left-most entry; the right-most untrusted one is the client.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &chain),
            ip("203.0.113.9")
        );
        // `Forwarded` wins over X-Forwarded-For, with ports, quotes and brackets.
        let both = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.1.1.1"#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &both),
            ip("2001:db8:cafe::17")
        );
        // A proxy that could not name its client: the proxy is the client.
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            proxies.client_address(ip("10.0.0.5"), &unknown),
            ip("10.0.0.5")
        );
        // No proxies configured: headers never read. A mapped address is its IPv4 address.
        assert_eq!(
            TrustedProxies::default().client_address(ip("::ffff:10.0.0.5"), &spoofed),
            ip("10.0.0.5")
        );
        assert!(parse_network("nonsense").is_err());
        assert_eq!(
            parse_network("192.0.2.1").unwrap(),
            "192.0.2.1/32".parse::<IpNet>().unwrap()
        );
    }
}
