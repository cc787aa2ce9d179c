//! What crosses the proxy and what does not: hop-by-hop headers stay on their connection,
//! client-sent identity headers never reach the upstream, and the identity the proxy verified
//! is the only one it asserts.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use rampart_tokens::jwt::{AccessClaims, Rejection};
use rampart_verifier::Denial;

use crate::{SCOPES_HEADER, SESSION_HEADER, SUBJECT_HEADER};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1). A static, not a
/// const: looked up twice per request, it is not rebuilt at each use.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Whether a client-sent header claims an identity only the proxy may assert. Matches every
/// spelling: any case (header names arrive lower-cased), `_` for `-`.
pub fn is_identity_header(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    [b"x-auth-".as_slice(), b"x-rampart-"].into_iter().any(|prefix| {
        name.len() >= prefix.len()
            && name
                .iter()
                .zip(prefix)
                .all(|(&got, &want)| got == want || (want == b'-' && got == b'_'))
    })
}

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: look before removing anything (each removal hashes the name).
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// This hop's `Via` entry: the protocol the client spoke, and a pseudonym rather than a host
/// name or version.
pub(crate) fn via(version: http::Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        http::Version::HTTP_09 => "0.9 rampart",
        http::Version::HTTP_10 => "1.0 rampart",
        http::Version::HTTP_2 => "2 rampart",
        http::Version::HTTP_3 => "3 rampart",
        _ => "1.1 rampart",
    })
}

/// Tells the upstream who is calling. A claim that cannot be a header value is refused rather
/// than forwarded in part.
pub(crate) fn add_identity(headers: &mut HeaderMap, claims: &AccessClaims) -> Result<(), Denial> {
    for (name, value) in [
        (SUBJECT_HEADER, &claims.sub),
        (SCOPES_HEADER, &claims.scope),
        (SESSION_HEADER, &claims.sid),
    ] {
        let value = HeaderValue::from_str(value).map_err(|_| Denial::Invalid(Rejection::Malformed))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised_in_every_spelling() {
        for name in [
            "x-auth-subject",
            "X-Auth-Subject",
            "x_auth_subject",
            "X-RAMPART-SESSION",
            "x_rampart_scopes",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
            assert!(is_identity_header(&name), "{name}");
        }
        assert!(!is_identity_header(&HeaderName::from_static("authorization")));
        assert!(!is_identity_header(&HeaderName::from_static("x-authored-by")));
    }

    proptest::proptest! {
        /// Every spelling of an identity header is caught: any case, `_` or `-` anywhere.
        #[test]
        fn identity_headers_are_caught_in_any_spelling(
            prefix in proptest::sample::select(vec!["x-auth-", "x-rampart-"]),
            suffix in "[a-z0-9-]{1,20}",
            upper in proptest::collection::vec(proptest::bool::ANY, 40),
            underscores in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let spelled: String = format!("{prefix}{suffix}")
                .chars()
                .enumerate()
                .map(|(i, c)| match c {
                    '-' if underscores[i % 40] => '_',
                    c if upper[i % 40] => c.to_ascii_uppercase(),
                    c => c,
                })
                .collect();
            let name = HeaderName::from_bytes(spelled.as_bytes()).expect("a valid header name");
            proptest::prop_assert!(is_identity_header(&name), "{}", spelled);
        }
    }

    #[test]
    fn connection_listed_and_standard_hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
