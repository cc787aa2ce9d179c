//! Any request headers: the bearer-token parser yields only one bounded RFC 6750 `b64token`
//! from exactly one `Authorization` header, identity headers are recognised in every spelling,
//! and the client address is the peer or one named in `X-Forwarded-For`, never made up.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use rampart_auth_proxy::{ProxyConfig, is_identity_header};
use rampart_verifier::bearer_token;

const MAX_TOKEN: usize = 64;

static CONFIG: LazyLock<ProxyConfig> = LazyLock::new(|| {
    ProxyConfig::parse(
        r#"
[issuer]
issuer = "https://issuer.example"
audience = "rampart"
jwks_url = "http://127.0.0.1:1/jwks.json"
revocations_url = "http://127.0.0.1:1/revocations"

[forwarded]
trusted_proxies = ["10.0.0.0/8", "::1"]

[[route]]
prefix = "/"
upstream = "http://127.0.0.1:2"
"#,
    )
    .expect("config")
});

fuzz_target!(|pairs: Vec<(Vec<u8>, Vec<u8>)>| {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&name), HeaderValue::from_bytes(&value)) {
            headers.append(name, value);
        }
    }

    if let Ok(token) = bearer_token(&headers, MAX_TOKEN) {
        assert!(!token.is_empty() && token.len() <= MAX_TOKEN);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        );
        assert_eq!(headers.get_all(header::AUTHORIZATION).iter().count(), 1);
    }

    for name in headers.keys() {
        let spelled = name.as_str().replace('_', "-");
        let claims_identity = spelled.starts_with("x-auth-") || spelled.starts_with("x-rampart-");
        assert_eq!(is_identity_header(name), claims_identity, "{name}");
    }

    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let peer: IpAddr = [10, 1, 2, 3].into();
    let client = CONFIG.client_ip(peer, &forwarded);
    let named = forwarded
        .iter()
        .flat_map(|v| v.split(','))
        .any(|hop| hop.trim().parse::<IpAddr>() == Ok(client));
    assert!(client == peer || named, "{client} came from nowhere in {forwarded:?}");
});
