//! The identity-aware reverse proxy in front of the auth API and core.
//!
//! Routes come from a [`ProxyConfig`] (a TOML file, reloaded on SIGHUP). A protected route
//! admits a request only with a bearer access token that verifies against the issuer's JWKS,
//! whose session has not been revoked (the issuer's revocation feed, polled), and that carries
//! the route's scopes. The upstream then sees who the caller is in `X-Auth-*` headers that only
//! the proxy can set: every client-sent spelling of them is removed first.
//!
//! The parts: `lifecycle` (start, serve, reload, readiness), `phases` (one request's way
//! through, in the phases Pingora names), `hygiene` (what crosses the proxy and what does not),
//! `upstream` (calling the upstream: breaker, retry, timeouts, bodies) and `error` (every way a
//! request can end at the proxy, answered in one place).

pub mod breaker;
pub mod config;
mod error;
mod hygiene;
mod lifecycle;
pub mod metrics;
mod phases;
pub mod ratelimit;
mod upstream;

use std::time::Duration;

pub use config::{ConfigError, ProxyConfig, Route};
pub use error::ProxyError;
use http::Uri;
pub use hygiene::is_identity_header;
pub use lifecycle::AuthProxy;
use rampart_kernel::Settings;
pub use rampart_verifier::IssuerConfig;

/// The headers through which the upstream learns who is calling.
pub const SUBJECT_HEADER: &str = "x-auth-subject";
pub const SCOPES_HEADER: &str = "x-auth-scopes";
pub const SESSION_HEADER: &str = "x-auth-session-id";

/// The local platform's configuration: auth owns `/v1/auth/` and `/.well-known/` (public: it
/// authenticates for itself), core the rest of `/v1/` (protected), except its `/v1/version`.
pub fn platform_config(auth: &Uri, core: &Uri, settings: &Settings) -> Result<ProxyConfig, ConfigError> {
    let route = |prefix: &str, upstream: &Uri, public: bool| Route {
        prefix: std::sync::Arc::new(prefix.to_owned()),
        upstream: upstream.clone(),
        public,
        scopes: Vec::new(),
        timeout: Duration::from_secs(settings.http.request_timeout_secs),
        rate_limit: None,
        retries: false,
    };
    let issuer = IssuerConfig::for_platform(settings, &auth.to_string())?;
    Ok(ProxyConfig {
        issuer,
        // Longest prefix first, as `ProxyConfig::route` expects.
        routes: vec![
            route("/.well-known/", auth, true),
            route("/v1/version", core, true),
            route("/v1/auth/", auth, true),
            route("/v1/", core, false),
        ],
        trusted_proxies: Default::default(),
        client_address_header: None,
        breaker: breaker::BreakerConfig::default(),
    })
}
