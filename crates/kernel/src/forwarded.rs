//! Which hops may tell us the client's address: `X-Forwarded-For` is believed only from peers
//! listed as trusted proxies, walked from the right past each trusted hop; a header an edge
//! writes itself (`http.client_address_header`, CloudFront's `CloudFront-Viewer-Address`) only
//! from those peers too, and then before `X-Forwarded-For`.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Networks whose `X-Forwarded-For` is believed. Empty (the default) believes none: the peer
/// is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`192.0.2.7`) and CIDRs (`10.0.0.0/8`); an error names the entry's index.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, String)> {
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let entry = entry.as_ref();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| (index, format!("{entry:?} is not an address or CIDR")))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The loopback networks: for a proxy on the same host (`rampart up`).
    pub fn loopback() -> Self {
        Self(vec![
            IpNet::from(IpAddr::from([127, 0, 0, 1])),
            IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
        ])
    }

    /// These networks and `other`'s.
    pub fn with(mut self, other: &Self) -> Self {
        for net in &other.0 {
            if !self.0.contains(net) {
                self.0.push(*net);
            }
        }
        self
    }

    /// Whether a network covering every address is listed: then any client names its own address.
    pub fn trusts_everyone(&self) -> bool {
        self.0.iter().any(|net| net.prefix_len() == 0)
    }

    pub fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address: the peer, unless the peer is trusted, in which case the
    /// `X-Forwarded-For` values are walked from the right past every trusted hop. Hops left of
    /// the first untrusted one are the client's to forge, so they are never believed.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        let mut client = peer;
        if !self.trusts(&client) {
            return client;
        }
        for hop in forwarded_for.rev().flat_map(|v| v.rsplit(',')) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(&ip) {
                        break;
                    }
                }
                // Garbage in the chain: the last hop we could read is as far as we go.
                Err(_) => break,
            }
        }
        client
    }

    /// The client's address from a request served directly: the peer, unless the peer is
    /// trusted; then, with `header` configured, the address in it (an edge behind the trusted
    /// hops wrote it), or [`Client::Unattributed`] when it is not one readable value: falling
    /// back to `X-Forwarded-For` would land on the edge's origin-facing addresses, which rotate
    /// per connection. Without `header`, `X-Forwarded-For` as in [`Self::client_ip`].
    pub fn client_from(&self, peer: IpAddr, headers: &HeaderMap, header: Option<&ClientAddressHeader>) -> Client {
        if !self.trusts(&peer) {
            return Client::Address(peer);
        }
        if let Some(header) = header {
            return header.client(headers);
        }
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Client::Address(self.client_ip(peer, forwarded_for))
    }
}

/// The rate-limit key of a request whose client address cannot be told (the configured client
/// address header absent, repeated or unreadable): all such requests share one budget.
pub const UNATTRIBUTED: &str = "unattributed";

/// Who a request came from, as far as can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Address(IpAddr),
    /// The configured client address header was not one readable value.
    Unattributed(HeaderProblem),
}

impl Client {
    /// The full address, for audit and session records; none when unattributed.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Address(ip) => Some(*ip),
            Self::Unattributed(_) => None,
        }
    }

    /// The key rate limits and throttles count this client by: see [`rate_limit_key`].
    pub fn rate_key(&self) -> String {
        match self {
            Self::Address(ip) => rate_limit_key(*ip),
            Self::Unattributed(_) => UNATTRIBUTED.to_string(),
        }
    }
}

/// Why a configured client address header was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    Absent,
    /// More than one value: someone besides the edge wrote one.
    Repeated,
    /// Not `address:port`.
    Unreadable,
}

impl HeaderProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Repeated => "repeated",
            Self::Unreadable => "unreadable",
        }
    }
}

/// The key rate limits and throttles count `ip` by. One IPv6 subscriber holds a whole /64
/// (2^64 addresses), so an IPv6 address counts as its /64 prefix (`2001:db8:1:2::/64`); an
/// IPv4-mapped IPv6 address as the IPv4 address it carries; IPv4 as is. Audit and session
/// records keep the full address.
pub fn rate_limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// A header in which an edge we trust names the client as `address:port`
/// (`http.client_address_header`): CloudFront's `CloudFront-Viewer-Address`, which writes IPv6
/// without brackets (`2001:db8::1:443`), so the port is what follows the last colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressHeader(HeaderName);

impl ClientAddressHeader {
    /// Any case is taken; a forwarding or hop-by-hop header is refused (see [`Self::is_refused`]).
    pub fn parse(name: &str) -> Result<Self, String> {
        if Self::is_refused(name) {
            return Err(format!("{name:?} cannot carry an edge's client address"));
        }
        HeaderName::from_bytes(name.as_bytes())
            .map(Self)
            .map_err(|_| format!("{name:?} is not an HTTP header name"))
    }

    pub fn name(&self) -> &HeaderName {
        &self.0
    }

    /// The address in `headers`, if the header appears exactly once and reads as
    /// `address:port` (IPv6 bare or in brackets). Two values mean someone besides the edge
    /// wrote one and which is the edge's cannot be told, so neither is believed; a value
    /// API Gateway joined from two (`a:1, b:2`) does not read, so it is not believed either.
    pub fn address(&self, headers: &HeaderMap) -> Result<IpAddr, HeaderProblem> {
        let mut values = headers.get_all(&self.0).iter();
        let value = match (values.next(), values.next()) {
            (Some(value), None) => value,
            (None, _) => return Err(HeaderProblem::Absent),
            (Some(_), Some(_)) => return Err(HeaderProblem::Repeated),
        };
        let unreadable = HeaderProblem::Unreadable;
        let (ip, port) = value
            .to_str()
            .map_err(|_| unreadable)?
            .trim()
            .rsplit_once(':')
            .ok_or(unreadable)?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err(unreadable);
        }
        let ip = ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']')).unwrap_or(ip);
        ip.parse().map_err(|_| unreadable)
    }

    /// The client named in `headers`, or [`Client::Unattributed`], logged at warn: behind the
    /// edge the header is always written, so its absence means a misconfigured edge or a
    /// request that did not come through it.
    pub fn client(&self, headers: &HeaderMap) -> Client {
        match self.address(headers) {
            Ok(ip) => Client::Address(ip),
            Err(problem) => {
                tracing::warn!(
                    header = %self.0,
                    problem = problem.as_str(),
                    "client address header not one readable value; rate-limited as {UNATTRIBUTED}"
                );
                Client::Unattributed(problem)
            }
        }
    }

    /// Names no edge would write a client address in: forwarding and hop-by-hop headers the
    /// client or any hop controls.
    pub fn is_refused(name: &str) -> bool {
        const REFUSED: &[&str] = &[
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-real-ip",
            "forwarded",
            "host",
            "connection",
            "keep-alive",
            "proxy-connection",
            "proxy-authenticate",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "content-length",
            "authorization",
            "cookie",
        ];
        REFUSED.contains(&name.to_ascii_lowercase().as_str())
    }
}

impl Serialize for ClientAddressHeader {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ClientAddressHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&entries).map_err(|(index, message)| serde::de::Error::custom(format!("[{index}]: {message}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_hops() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7"]).expect("valid");
        // An untrusted peer's header is ignored: it could say anything.
        assert_eq!(
            trusted.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        // Through trusted hops, the first untrusted address from the right is the client...
        assert_eq!(
            trusted.client_ip(ip("10.1.1.1"), ["6.6.6.6, 198.51.100.4, 192.0.2.7"].into_iter()),
            ip("198.51.100.4")
        );
        // ...across several header lines too, and garbage stops the walk.
        assert_eq!(
            trusted.client_ip(ip("10.1.1.1"), ["198.51.100.4", "10.2.2.2"].into_iter()),
            ip("198.51.100.4")
        );
        assert_eq!(
            trusted.client_ip(ip("10.1.1.1"), ["6.6.6.6, garbage"].into_iter()),
            ip("10.1.1.1")
        );
        // With nothing trusted, the peer is always the client.
        assert_eq!(
            TrustedProxies::default().client_ip(ip("127.0.0.1"), ["6.6.6.6"].into_iter()),
            ip("127.0.0.1")
        );
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn the_client_address_header_reads_one_address_and_port() {
        let header = ClientAddressHeader::parse("CloudFront-Viewer-Address").expect("valid");
        assert_eq!(header.name().as_str(), "cloudfront-viewer-address");
        let read = |values: &[&str]| {
            let pairs: Vec<_> = values.iter().map(|v| ("cloudfront-viewer-address", *v)).collect();
            header.address(&headers(&pairs)).ok()
        };
        assert_eq!(read(&["198.51.100.23:443"]), Some(ip("198.51.100.23")));
        // CloudFront's IPv6: no brackets, the port after the last colon.
        assert_eq!(read(&["2001:db8::1:443"]), Some(ip("2001:db8::1")));
        assert_eq!(read(&["[2001:db8::7]:8443"]), Some(ip("2001:db8::7")));
        // Absent, repeated, joined, portless or garbage: not believed.
        for values in [
            &[][..],
            &["198.51.100.23:443", "203.0.113.66:1"][..],
            &["203.0.113.66:1, 198.51.100.23:443"][..],
            &["198.51.100.23"][..],
            &["198.51.100.23:"][..],
            &["198.51.100.23:+443"][..],
            &["198.51.100.23:70000"][..],
            &["2001:db8::1"][..],
            &["nonsense:443"][..],
        ] {
            assert_eq!(read(values), None, "{values:?}");
        }
        assert_eq!(header.address(&HeaderMap::new()), Err(HeaderProblem::Absent));
        assert_eq!(
            header.address(&headers(&[
                ("cloudfront-viewer-address", "198.51.100.23:443"),
                ("cloudfront-viewer-address", "198.51.100.23:443"),
            ])),
            Err(HeaderProblem::Repeated)
        );
        for bad in [
            "",
            "cloudfront viewer address",
            "x-\u{e9}",
            "a:b",
            "X-Forwarded-For",
            "forwarded",
            "Host",
            "connection",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(ClientAddressHeader::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_address_header_is_believed_from_trusted_peers_only_and_never_falls_back() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).expect("valid");
        let header = ClientAddressHeader::parse("cloudfront-viewer-address").expect("valid");
        let both = headers(&[
            ("cloudfront-viewer-address", "198.51.100.23:443"),
            ("x-forwarded-for", "6.6.6.6, 130.176.0.1"),
        ]);
        assert_eq!(
            trusted.client_from(ip("10.1.1.1"), &both, Some(&header)),
            Client::Address(ip("198.51.100.23"))
        );
        // From an untrusted peer it could say anything: the peer is the client.
        assert_eq!(
            trusted.client_from(ip("203.0.113.9"), &both, Some(&header)),
            Client::Address(ip("203.0.113.9"))
        );
        // Not configured: X-Forwarded-For as before.
        assert_eq!(
            trusted.client_from(ip("10.1.1.1"), &both, None),
            Client::Address(ip("130.176.0.1"))
        );
        // Configured but absent, repeated or unreadable: unattributed, never X-Forwarded-For
        // (behind CloudFront, its origin-facing addresses, which rotate per connection).
        for (pairs, problem) in [
            (&[("x-forwarded-for", "130.176.0.1")][..], HeaderProblem::Absent),
            (
                &[
                    ("cloudfront-viewer-address", "198.51.100.23:443"),
                    ("cloudfront-viewer-address", "203.0.113.66:1"),
                    ("x-forwarded-for", "130.176.0.1"),
                ][..],
                HeaderProblem::Repeated,
            ),
            (
                &[
                    ("cloudfront-viewer-address", "garbage"),
                    ("x-forwarded-for", "130.176.0.1"),
                ][..],
                HeaderProblem::Unreadable,
            ),
        ] {
            let client = trusted.client_from(ip("10.1.1.1"), &headers(pairs), Some(&header));
            assert_eq!(client, Client::Unattributed(problem), "{pairs:?}");
            assert_eq!(client.ip(), None);
            assert_eq!(client.rate_key(), UNATTRIBUTED);
        }
    }

    #[test]
    fn rate_limit_keys_count_an_ipv6_subscriber_by_its_64() {
        // One /64 is one subscriber: every address in it shares a key...
        assert_eq!(rate_limit_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            rate_limit_key(ip("2001:db8:1:2::1"))
        );
        // ...and another /64 has its own.
        assert_ne!(
            rate_limit_key(ip("2001:db8:1:3::1")),
            rate_limit_key(ip("2001:db8:1:2::1"))
        );
        // An IPv4-mapped address is the IPv4 address, which is counted as is.
        assert_eq!(rate_limit_key(ip("::ffff:198.51.100.23")), "198.51.100.23");
        assert_eq!(rate_limit_key(ip("198.51.100.23")), "198.51.100.23");
        assert_ne!(rate_limit_key(ip("198.51.100.24")), rate_limit_key(ip("198.51.100.23")));
        assert_eq!(rate_limit_key(ip("::1")), "::/64");
        assert_eq!(Client::Address(ip("2001:db8::7")).rate_key(), "2001:db8::/64");
        assert_eq!(Client::Address(ip("2001:db8::7")).ip(), Some(ip("2001:db8::7")));
    }

    #[test]
    fn bad_entries_are_named_by_index() {
        assert_eq!(
            TrustedProxies::parse(&["10.0.0.0/8", "10.0.0.0/33"]).map(|_| ()),
            Err((1, "\"10.0.0.0/33\" is not an address or CIDR".to_string()))
        );
        let parsed: TrustedProxies = serde_json::from_str(r#"["::1", "127.0.0.0/8"]"#).expect("json");
        assert_eq!(
            serde_json::to_string(&parsed).expect("json"),
            r#"["::1/128","127.0.0.0/8"]"#
        );
    }
}
