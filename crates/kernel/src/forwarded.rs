//! Which hops may tell us the client's address: `X-Forwarded-For` is believed only from peers
//! listed as trusted proxies, walked from the right past each trusted hop.

use std::net::IpAddr;

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
