//! The proxy's configuration file (TOML): where the token issuer publishes its keys and
//! revocations, and which upstream serves each path prefix, for whom.
//!
//! ```toml
//! [issuer]
//! issuer = "http://127.0.0.1:8080"
//! audience = "rampart"
//! jwks_url = "http://127.0.0.1:8081/.well-known/jwks.json"
//! revocations_url = "http://127.0.0.1:8081/v1/auth/revocations"
//!
//! [[route]]
//! prefix = "/v1/auth/"
//! upstream = "http://127.0.0.1:8081"
//! public = true
//!
//! [rate_limits.api]
//! requests = 600     # refilled per `per_secs`
//! per_secs = 60
//! burst = 50         # at once
//!
//! [forwarded]
//! trusted_proxies = ["10.0.0.0/8"]   # whose X-Forwarded-For is believed
//! client_address_header = "cloudfront-viewer-address"  # believed from those peers instead
//!
//! [breaker]                # per upstream; these are the defaults
//! failure_ratio = 0.5
//! min_requests = 10
//! window_secs = 10
//! open_ms = 5000
//!
//! [[route]]
//! prefix = "/v1/"
//! upstream = "http://127.0.0.1:8082"
//! scopes = ["core:read"]
//! rate_limit = "api"
//! timeout_ms = 10000
//! retries = true           # GET, HEAD and OPTIONS only, within a budget
//! ```
//!
//! Everything is checked when the file is read: a file that fails any check is refused whole,
//! with an error naming the key (`route[1].upstream`), so a bad reload never replaces a good
//! configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
pub use rampart_kernel::ConfigError;
use rampart_kernel::forwarded::{ClientAddressHeader, TrustedProxies};
use rampart_verifier::IssuerConfig;
use serde::Deserialize;

use crate::breaker::BreakerConfig;
use crate::ratelimit::Limit;

/// A configuration the proxy can run with: parsed and checked.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub issuer: IssuerConfig,
    /// Longest prefix first, so the first match is the most specific.
    pub routes: Vec<Route>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// The header an edge behind `trusted_proxies` names the client in, believed from those
    /// peers instead of their `X-Forwarded-For`; read with them so a reload changes both.
    pub client_address_header: Option<ClientAddressHeader>,
    pub breaker: BreakerConfig,
}

mod defaults {
    pub fn timeout_ms() -> u64 {
        30_000
    }
    pub fn failure_ratio() -> f64 {
        0.5
    }
    pub fn min_requests() -> u32 {
        10
    }
    pub fn window_secs() -> u64 {
        10
    }
    pub fn open_ms() -> u64 {
        5000
    }
}

/// Requests whose path starts with `prefix` go to `upstream` (scheme and authority only).
#[derive(Debug, Clone)]
pub struct Route {
    /// Shared, so each request's metric labels take a count rather than a copy.
    pub prefix: Arc<String>,
    pub upstream: Uri,
    /// No token needed (the upstream authenticates for itself, or the content is public).
    pub public: bool,
    /// Scopes a token must all carry.
    pub scopes: Vec<String>,
    /// How long the upstream may keep a request waiting: for the start of its answer (then
    /// 504), and again between any two parts of the answer (then the answer is cut off).
    pub timeout: Duration,
    /// The rate-limit class and its limit, if the route has one.
    pub rate_limit: Option<(String, Limit)>,
    /// Whether a failed GET, HEAD or OPTIONS may be tried once more.
    pub retries: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuer: IssuerConfig,
    #[serde(default)]
    rate_limits: BTreeMap<String, LimitFile>,
    #[serde(default)]
    forwarded: ForwardedFile,
    #[serde(default)]
    breaker: BreakerFile,
    #[serde(default, rename = "route")]
    routes: Vec<RouteFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitFile {
    requests: u32,
    per_secs: u32,
    burst: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerFile {
    #[serde(default = "defaults::failure_ratio")]
    failure_ratio: f64,
    #[serde(default = "defaults::min_requests")]
    min_requests: u32,
    #[serde(default = "defaults::window_secs")]
    window_secs: u64,
    #[serde(default = "defaults::open_ms")]
    open_ms: u64,
}

impl Default for BreakerFile {
    fn default() -> Self {
        Self {
            failure_ratio: defaults::failure_ratio(),
            min_requests: defaults::min_requests(),
            window_secs: defaults::window_secs(),
            open_ms: defaults::open_ms(),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardedFile {
    #[serde(default)]
    trusted_proxies: Vec<String>,
    client_address_header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    upstream: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "defaults::timeout_ms")]
    timeout_ms: u64,
    rate_limit: Option<String>,
    #[serde(default)]
    retries: bool,
}

fn error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(key, message)
}

impl ProxyConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| error(path.display().to_string(), e.to_string()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let key = e.span().map_or_else(String::new, |span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("line {line}")
            });
            error(key, e.message().to_owned())
        })?;
        let issuer = check_issuer(file.issuer)?;
        let limits = check_limits(file.rate_limits)?;
        let breaker = check_breaker(&file.breaker)?;
        let trusted_proxies = TrustedProxies::parse(&file.forwarded.trusted_proxies)
            .map_err(|(index, message)| error(format!("forwarded.trusted_proxies[{index}]"), message))?;
        let client_address_header = file
            .forwarded
            .client_address_header
            .as_deref()
            .map(ClientAddressHeader::parse)
            .transpose()
            .map_err(|message| error("forwarded.client_address_header", message))?;
        if client_address_header.is_some() && trusted_proxies == TrustedProxies::default() {
            // Believed only from trusted peers: without any, the setting would do nothing.
            return Err(error(
                "forwarded.client_address_header",
                "needs forwarded.trusted_proxies: the header is believed only from them",
            ));
        }
        if file.routes.is_empty() {
            return Err(error("route", "at least one [[route]] is needed"));
        }
        let mut routes = Vec::with_capacity(file.routes.len());
        for (index, route) in file.routes.into_iter().enumerate() {
            let route = check_route(index, route, &limits)?;
            if routes.iter().any(|r: &Route| r.prefix == route.prefix) {
                return Err(error(
                    format!("route[{index}].prefix"),
                    "the same prefix is routed twice",
                ));
            }
            routes.push(route);
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(Self {
            issuer,
            routes,
            trusted_proxies,
            client_address_header,
            breaker,
        })
    }

    /// The most specific route for `path`. A prefix ends at a segment boundary: `/v1/version`
    /// serves `/v1/version` and `/v1/version/…`, never `/v1/versions`, which may belong to a
    /// route that needs a token.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| {
            path.strip_prefix(r.prefix.as_str())
                .is_some_and(|rest| r.prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
        })
    }
}

fn check_issuer(issuer: IssuerConfig) -> Result<IssuerConfig, ConfigError> {
    issuer.check()?;
    Ok(issuer)
}

fn check_breaker(breaker: &BreakerFile) -> Result<BreakerConfig, ConfigError> {
    if !(0.05..=1.0).contains(&breaker.failure_ratio) {
        return Err(error("breaker.failure_ratio", "must be between 0.05 and 1"));
    }
    if !(1..=10_000).contains(&breaker.min_requests) {
        return Err(error("breaker.min_requests", "must be between 1 and 10000"));
    }
    if !(1..=3600).contains(&breaker.window_secs) {
        return Err(error("breaker.window_secs", "must be between 1 and 3600"));
    }
    if !(10..=3_600_000).contains(&breaker.open_ms) {
        return Err(error("breaker.open_ms", "must be between 10 and 3600000"));
    }
    Ok(BreakerConfig {
        failure_ratio: breaker.failure_ratio,
        min_requests: breaker.min_requests,
        window: Duration::from_secs(breaker.window_secs),
        open_for: Duration::from_millis(breaker.open_ms),
    })
}

fn check_limits(limits: BTreeMap<String, LimitFile>) -> Result<BTreeMap<String, Limit>, ConfigError> {
    limits
        .into_iter()
        .map(|(class, limit)| {
            let key = |field: &str| format!("rate_limits.{class}.{field}");
            if limit.requests == 0 {
                return Err(error(key("requests"), "must be at least 1"));
            }
            if limit.per_secs == 0 || limit.per_secs > 86_400 {
                return Err(error(key("per_secs"), "must be between 1 and 86400"));
            }
            if limit.burst == 0 {
                return Err(error(key("burst"), "must be at least 1"));
            }
            let interval = Duration::from_secs(u64::from(limit.per_secs)) / limit.requests;
            if interval.is_zero() {
                return Err(error(key("requests"), "more than one request per nanosecond"));
            }
            Ok((
                class,
                Limit {
                    burst: limit.burst,
                    interval,
                },
            ))
        })
        .collect()
}

fn check_route(index: usize, route: RouteFile, limits: &BTreeMap<String, Limit>) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("route[{index}].{field}");
    if !route.prefix.starts_with('/') || route.prefix.contains(['?', '#']) || route.prefix.contains("..") {
        return Err(error(
            key("prefix"),
            "must be a path starting with '/', without '..', '?' or '#'",
        ));
    }
    let upstream = http_url(&key("upstream"), &route.upstream)?;
    if !matches!(upstream.path(), "" | "/") || upstream.query().is_some() {
        return Err(error(
            key("upstream"),
            "must be scheme://host[:port] only; the request path is kept",
        ));
    }
    for scope in &route.scopes {
        if scope.is_empty() || !scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            return Err(error(
                key("scopes"),
                format!("{scope:?} is not a scope token (RFC 6749 §3.3)"),
            ));
        }
    }
    if route.public && !route.scopes.is_empty() {
        return Err(error(key("scopes"), "a public route cannot require scopes"));
    }
    if !(1..=300_000).contains(&route.timeout_ms) {
        return Err(error(key("timeout_ms"), "must be between 1 and 300000"));
    }
    let rate_limit = match route.rate_limit {
        Some(class) => {
            let limit = *limits
                .get(&class)
                .ok_or_else(|| error(key("rate_limit"), format!("{class:?} is not a [rate_limits] class")))?;
            Some((class, limit))
        }
        None => None,
    };
    Ok(Route {
        prefix: Arc::new(route.prefix),
        upstream,
        public: route.public,
        scopes: route.scopes,
        timeout: Duration::from_millis(route.timeout_ms),
        rate_limit,
        retries: route.retries,
    })
}

fn http_url(key: &str, value: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = value
        .parse()
        .map_err(|_| error(key, format!("{value:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(error(
            key,
            format!("{value:?} must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const ISSUER: &str = r#"
[issuer]
issuer = "http://issuer"
audience = "rampart"
jwks_url = "http://auth:8081/.well-known/jwks.json"
revocations_url = "http://auth:8081/v1/auth/revocations"
"#;

    fn with_routes(routes: &str) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::parse(&format!("{ISSUER}\n{routes}"))
    }

    #[test]
    fn a_valid_file_parses_with_defaults_and_longest_prefix_first() {
        let config = with_routes(
            r#"
[[route]]
prefix = "/v1/"
upstream = "http://core:8082"
scopes = ["core:read"]

[[route]]
prefix = "/v1/auth/"
upstream = "https://auth:8081/"
public = true
timeout_ms = 5000
"#,
        )
        .expect("valid");
        assert_eq!(config.issuer.revocation_bound_secs, 5);
        assert_eq!(config.route("/v1/auth/login").map(|r| r.public), Some(true));
        let core = config.route("/v1/things").expect("core route");
        assert_eq!(core.scopes, ["core:read"]);
        assert_eq!(core.timeout, Duration::from_secs(30));
        assert!(config.route("/elsewhere").is_none());
    }

    #[test]
    fn a_prefix_matches_whole_segments_only() {
        let config = with_routes(
            r#"
[[route]]
prefix = "/v1/version"
upstream = "http://core:8082"
public = true

[[route]]
prefix = "/v1/"
upstream = "http://core:8082"
"#,
        )
        .expect("valid");
        let public = |path| config.route(path).map(|r| r.public);
        assert_eq!(public("/v1/version"), Some(true));
        assert_eq!(public("/v1/version/detail"), Some(true));
        assert_eq!(
            public("/v1/versions"),
            Some(false),
            "a longer segment is another route's"
        );
        assert_eq!(public("/v1/version%2F..%2Fsecret"), Some(false));
        assert_eq!(public("/v1"), None);
    }

    #[test]
    fn each_mistake_is_refused_naming_its_key() {
        let cases = [
            (
                r#"[[route]]
prefix = "v1"
upstream = "http://core""#,
                "route[0].prefix",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "ftp://core""#,
                "route[0].upstream",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "http://core/base""#,
                "route[0].upstream",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "http://core"
scopes = ["a b"]"#,
                "route[0].scopes",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "http://core"
public = true
scopes = ["core:read"]"#,
                "route[0].scopes",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "http://core"
timeout_ms = 0"#,
                "route[0].timeout_ms",
            ),
            (
                r#"[[route]]
prefix = "/v1/"
upstream = "http://a"
[[route]]
prefix = "/v1/"
upstream = "http://b""#,
                "route[1].prefix",
            ),
            ("", "route"),
        ];
        for (routes, key) in cases {
            let error = with_routes(routes).expect_err(routes);
            assert_eq!(error.key, key, "{routes}: {error}");
        }
    }

    #[test]
    fn rate_limit_classes_are_defined_before_routes_use_them() {
        let config = with_routes(
            r#"[rate_limits.api]
requests = 120
per_secs = 60
burst = 10

[[route]]
prefix = "/v1/"
upstream = "http://core"
rate_limit = "api""#,
        )
        .expect("valid");
        let (class, limit) = config
            .route("/v1/x")
            .and_then(|r| r.rate_limit.clone())
            .expect("limited");
        assert_eq!(class, "api");
        assert_eq!(limit.burst, 10);
        assert_eq!(limit.interval, Duration::from_millis(500));

        let undefined = with_routes("[[route]]\nprefix = \"/v1/\"\nupstream = \"http://core\"\nrate_limit = \"nope\"")
            .expect_err("undefined class");
        assert_eq!(undefined.key, "route[0].rate_limit");
        let zero = with_routes(
            "[rate_limits.api]\nrequests = 0\nper_secs = 1\nburst = 1\n[[route]]\nprefix = \"/\"\nupstream = \"http://core\"",
        )
        .expect_err("zero rate");
        assert_eq!(zero.key, "rate_limits.api.requests");
    }

    #[test]
    fn a_bad_trusted_proxy_is_named_by_its_key() {
        let bad = with_routes(
            "[forwarded]\ntrusted_proxies = [\"10.0.0.0/33\"]\n[[route]]\nprefix = \"/\"\nupstream = \"http://core\"",
        )
        .expect_err("bad CIDR");
        assert_eq!(bad.key, "forwarded.trusted_proxies[0]");
    }

    #[test]
    fn the_client_address_header_is_read_with_the_trusted_proxies() {
        let route = "[[route]]\nprefix = \"/\"\nupstream = \"http://core\"";
        let config = with_routes(&format!(
            "[forwarded]\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_address_header = \"CloudFront-Viewer-Address\"\n{route}"
        ))
        .expect("valid");
        assert_eq!(
            config.client_address_header.expect("set").name().as_str(),
            "cloudfront-viewer-address"
        );
        for bad in [
            "x-forwarded-for",
            "Forwarded",
            "host",
            "connection",
            "transfer-encoding",
            "not a name",
        ] {
            let error = with_routes(&format!(
                "[forwarded]\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_address_header = {bad:?}\n{route}"
            ))
            .expect_err(bad);
            assert_eq!(error.key, "forwarded.client_address_header", "{bad}");
        }
        let untrusted = with_routes(&format!(
            "[forwarded]\nclient_address_header = \"cloudfront-viewer-address\"\n{route}"
        ))
        .expect_err("no trusted proxies");
        assert_eq!(untrusted.key, "forwarded.client_address_header");
    }

    proptest::proptest! {
        /// Whatever X-Forwarded-For says, the client address is the peer or an address the
        /// header named, and never one the client could have written past an untrusted hop.
        #[test]
        fn forwarded_for_never_yields_an_address_left_of_an_untrusted_hop(
            hops in proptest::collection::vec((0u8..4, 0u8..255), 0..6),
            garbage in proptest::option::of("[ -~]{0,12}"),
        ) {
            let config = with_routes(
                "[forwarded]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[[route]]\nprefix = \"/\"\nupstream = \"http://core\"",
            )
            .expect("valid");
            // Even first octets are trusted (10.x), odd ones are not (203.x).
            let ips: Vec<IpAddr> = hops
                .iter()
                .map(|(kind, n)| if kind % 2 == 0 { IpAddr::from([10, 0, 0, *n]) } else { IpAddr::from([203, 0, 113, *n]) })
                .collect();
            let mut header: Vec<String> = ips.iter().map(ToString::to_string).collect();
            if let Some(garbage) = garbage {
                header.insert(0, garbage);
            }
            let header = header.join(", ");
            let peer = IpAddr::from([10, 9, 9, 9]);
            let client = config.trusted_proxies.client_ip(peer, [header.as_str()].into_iter());
            let rightmost_untrusted = ips.iter().rev().find(|ip| !config.trusted_proxies.trusts(ip));
            match rightmost_untrusted {
                Some(expected) => proptest::prop_assert_eq!(client, *expected),
                None => proptest::prop_assert!(client == peer || ips.contains(&client) || header.contains(&client.to_string())),
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_issuer_settings_are_refused() {
        let unknown = with_routes(
            r#"[[route]]
prefix = "/v1/"
upstream = "http://core"
retires = true"#,
        )
        .expect_err("typo");
        assert!(unknown.message.contains("retires"), "{unknown}");
        let slow = ProxyConfig::parse(&format!(
            "{ISSUER}revocation_poll_ms = 5000\n[[route]]\nprefix = \"/\"\nupstream = \"http://core\""
        ))
        .expect_err("poll slower than the bound");
        assert_eq!(slow.key, "issuer.revocation_poll_ms");
    }
}
