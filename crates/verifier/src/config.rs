//! The token issuer a verifier trusts, and how strictly it checks its tokens: the `[issuer]`
//! section of the proxy's routes file, and the authorizer's `RAMPART_AUTHORIZER_ISSUER__*`
//! environment.

use http::Uri;
use rampart_kernel::{ConfigError, Settings};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    #[serde(deserialize_with = "http_url")]
    pub jwks_url: Uri,
    #[serde(deserialize_with = "http_url")]
    pub revocations_url: Uri,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "defaults::leeway_secs")]
    pub leeway_secs: u64,
    /// Longer bearer tokens are refused before any parsing.
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    /// A token naming an unknown `kid` makes the verifier fetch the JWKS again at most this often.
    #[serde(default = "defaults::unknown_kid_refetch_secs")]
    pub unknown_kid_refetch_secs: u64,
    /// How often the revocation feed is polled.
    #[serde(default = "defaults::revocation_poll_ms")]
    pub revocation_poll_ms: u64,
    /// If the feed has not been read successfully for this long, protected routes are refused
    /// (503) rather than risk admitting a revoked session.
    #[serde(default = "defaults::revocation_bound_secs")]
    pub revocation_bound_secs: u64,
    /// How long a revocation is remembered: at least the longest access-token lifetime.
    #[serde(default = "defaults::revocation_retention_secs")]
    pub revocation_retention_secs: u64,
    /// Verified tokens remembered so repeat requests skip the signature check.
    #[serde(default = "defaults::verified_cache_entries")]
    pub verified_cache_entries: usize,
}

impl IssuerConfig {
    /// An issuer with every optional setting at its default.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks_url: Uri, revocations_url: Uri) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url,
            revocations_url,
            leeway_secs: defaults::leeway_secs(),
            max_token_bytes: defaults::max_token_bytes(),
            unknown_kid_refetch_secs: defaults::unknown_kid_refetch_secs(),
            revocation_poll_ms: defaults::revocation_poll_ms(),
            revocation_bound_secs: defaults::revocation_bound_secs(),
            revocation_retention_secs: defaults::revocation_retention_secs(),
            verified_cache_entries: defaults::verified_cache_entries(),
        }
    }

    /// The issuer of the Rampart platform `settings` configure, whose auth API is served at
    /// `auth_base`: its discovery document publishes the keys and the feed under that base.
    pub fn for_platform(settings: &Settings, auth_base: &str) -> Result<Self, ConfigError> {
        let base = auth_base.trim_end_matches('/');
        let url = |field: &str, path: &str| {
            http_uri(&format!("{base}{path}")).map_err(|message| ConfigError::new(format!("issuer.{field}"), message))
        };
        let tokens = &settings.tokens;
        Ok(Self {
            leeway_secs: tokens.leeway_secs,
            revocation_retention_secs: rampart_kernel::config::MAX_ACCESS_TOKEN_TTL_SECS + tokens.leeway_secs + 60,
            ..Self::new(
                tokens.issuer.clone(),
                tokens.audience.clone(),
                url("jwks_url", "/.well-known/jwks.json")?,
                url("revocations_url", "/v1/auth/revocations")?,
            )
        })
    }

    /// Checks every setting is in a range the verifier can keep its promises with. Errors name
    /// the setting as `issuer.<field>`.
    pub fn check(&self) -> Result<(), ConfigError> {
        let error = |field: &str, message: String| Err(ConfigError::new(format!("issuer.{field}"), message));
        for (field, value) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            if value.trim().is_empty() {
                return error(field, "must not be empty".into());
            }
        }
        let ranges: [(&str, u64, u64, u64); 7] = [
            ("leeway_secs", self.leeway_secs, 0, 300),
            ("unknown_kid_refetch_secs", self.unknown_kid_refetch_secs, 1, 3600),
            ("revocation_poll_ms", self.revocation_poll_ms, 100, 60_000),
            ("revocation_bound_secs", self.revocation_bound_secs, 1, 3600),
            ("revocation_retention_secs", self.revocation_retention_secs, 60, 86_400),
            ("max_token_bytes", self.max_token_bytes as u64, 256, 64 * 1024),
            (
                "verified_cache_entries",
                self.verified_cache_entries as u64,
                0,
                10_000_000,
            ),
        ];
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return error(field, format!("must be between {min} and {max}"));
            }
        }
        // A revocation forgotten while the revoked session's tokens still pass lets them pass
        // again: keep each as long as the longest-lived token is accepted.
        let longest = rampart_kernel::config::MAX_ACCESS_TOKEN_TTL_SECS + self.leeway_secs;
        if self.revocation_retention_secs < longest {
            return error(
                "revocation_retention_secs",
                format!("must be at least {longest} (the longest access-token lifetime and the leeway)"),
            );
        }
        if self.revocation_poll_ms >= self.revocation_bound_secs * 1000 {
            return error(
                "revocation_poll_ms",
                "must be shorter than revocation_bound_secs, or every poll would be late".into(),
            );
        }
        Ok(())
    }
}

fn http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uri, D::Error> {
    http_uri(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

/// An absolute `http://` or `https://` URL with a host.
fn http_uri(value: &str) -> Result<Uri, String> {
    match value.parse::<Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() => Ok(uri),
        _ => Err(format!("{value:?} is not an http:// or https:// URL with a host")),
    }
}

mod defaults {
    pub fn leeway_secs() -> u64 {
        30
    }
    pub fn max_token_bytes() -> usize {
        8 * 1024
    }
    pub fn unknown_kid_refetch_secs() -> u64 {
        30
    }
    pub fn revocation_poll_ms() -> u64 {
        1000
    }
    pub fn revocation_bound_secs() -> u64 {
        5
    }
    pub fn revocation_retention_secs() -> u64 {
        // Rampart's access tokens live 15 minutes, plus leeway and a minute's margin.
        15 * 60 + 30 + 60
    }
    pub fn verified_cache_entries() -> usize {
        100_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<IssuerConfig, String> {
        let text = format!(
            r#"
issuer = "https://auth.example"
audience = "rampart"
jwks_url = "https://auth.example/.well-known/jwks.json"
revocations_url = "https://auth.example/v1/auth/revocations"
{extra}"#
        );
        toml::from_str(&text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn defaults_fill_what_is_left_out_and_pass_the_checks() {
        let config = parse("").expect("config");
        assert_eq!(config.revocation_bound_secs, 5);
        assert_eq!(config.jwks_url.host(), Some("auth.example"));
        assert_eq!(config.check(), Ok(()));
    }

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        for url in ["/jwks.json", "ftp://auth.example/jwks.json", "not a url"] {
            let text = format!(
                r#"
issuer = "i"
audience = "a"
jwks_url = "{url}"
revocations_url = "https://auth.example/r"
"#
            );
            let error = toml::from_str::<IssuerConfig>(&text).expect_err(url);
            assert!(error.message().contains("http:// or https://"), "{url}: {error}");
        }
    }

    #[test]
    fn the_platform_issuer_is_found_under_its_auth_base() {
        let settings = Settings::default();
        let config = IssuerConfig::for_platform(&settings, "https://api.example/").expect("config");
        assert_eq!(config.jwks_url, "https://api.example/.well-known/jwks.json");
        assert_eq!(config.revocations_url, "https://api.example/v1/auth/revocations");
        assert_eq!(config.issuer, settings.tokens.issuer);
        assert!(config.revocation_retention_secs > settings.tokens.access_token_ttl_secs);
        assert_eq!(config.check(), Ok(()));
        let error = IssuerConfig::for_platform(&settings, "api.example").expect_err("no scheme");
        assert_eq!(error.key, "issuer.jwks_url");
    }

    #[test]
    fn out_of_range_settings_are_named() {
        for (extra, field) in [
            ("leeway_secs = 301", "leeway_secs"),
            ("revocation_poll_ms = 5000", "revocation_poll_ms"),
            ("max_token_bytes = 10", "max_token_bytes"),
            ("verified_cache_entries = 20000000", "verified_cache_entries"),
            // Shorter than a token lives: a revoked session's tokens would pass once forgotten.
            ("revocation_retention_secs = 600", "revocation_retention_secs"),
        ] {
            let error = parse(extra).expect("parses").check().expect_err(extra);
            assert_eq!(error.key, format!("issuer.{field}"), "{extra}");
        }
        let mut blank = parse("").expect("config");
        blank.audience = " ".into();
        assert_eq!(blank.check().map_err(|e| e.key), Err("issuer.audience".to_string()));
    }
}
