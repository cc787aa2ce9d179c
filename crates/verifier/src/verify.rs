//! Who may pass: a bearer access token that verifies against the issuer's keys
//! ([`rampart_tokens::jwt::verify`] makes every check), whose session is not revoked, carrying
//! every scope required.
//!
//! Verified tokens are remembered by their SHA-256 until they expire, so repeat requests skip
//! the signature check. A remembered token still passes only while its key is published and its
//! session is not revoked: both are checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aws_lc_rs::digest;
use http::HeaderMap;
use rampart_tokens::jwt::{self, AccessClaims, Rejection, Validation};

use crate::config::IssuerConfig;
use crate::fetch;
use crate::jwks::Jwks;
use crate::revocations::{Revocations, Status};

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No bearer token.
    Missing,
    Invalid(Rejection),
    Revoked,
    InsufficientScope,
    /// No keys have been loaded from the issuer yet.
    KeysUnavailable,
    /// The revocation feed is stale.
    RevocationUnknown,
}

impl Denial {
    /// A stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing_token",
            Self::Invalid(rejection) => rejection.reason(),
            Self::Revoked => "revoked_session",
            Self::InsufficientScope => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
            Self::RevocationUnknown => "revocation_status_unknown",
        }
    }
}

/// The answer to a refused token, the same from every surface that checks one (the proxy,
/// core): the kernel's [`BearerRefusal`](rampart_kernel::BearerRefusal) for the caller's
/// failures, 503 with a retry when the issuer's keys or feed cannot be read.
impl From<Denial> for rampart_kernel::Problem {
    fn from(denial: Denial) -> Self {
        use rampart_kernel::{BearerRefusal, Problem, ProblemType};
        match denial {
            Denial::Missing => BearerRefusal::Missing.into(),
            Denial::Invalid(_) | Denial::Revoked => BearerRefusal::Invalid.into(),
            Denial::InsufficientScope => BearerRefusal::InsufficientScope.into(),
            Denial::KeysUnavailable | Denial::RevocationUnknown => Problem::new(
                ProblemType::ServiceUnavailable,
                "Tokens cannot be checked right now; try again shortly.",
            )
            .with_retry_after(1),
        }
    }
}

/// Checks bearer access tokens against one issuer: its published keys, its revocation feed,
/// and the scopes a caller needs.
#[derive(Debug)]
pub struct Verifier {
    jwks: Arc<Jwks>,
    revocations: Arc<Revocations>,
    validation: Validation,
    verified: VerifiedTokens,
}

impl Verifier {
    /// A verifier with nothing loaded yet: call [`Verifier::spawn_refreshers`] in a long-running
    /// server, or [`Verifier::refresh_if_due`] before each check where nothing runs in between.
    /// Fails only if an HTTPS client cannot be built (no trusted roots on the system).
    pub fn new(issuer: &IssuerConfig) -> std::io::Result<Self> {
        let client = fetch::client()?;
        Ok(Self {
            jwks: Arc::new(Jwks::new(
                client.clone(),
                issuer.jwks_url.clone(),
                Duration::from_secs(issuer.unknown_kid_refetch_secs),
            )),
            revocations: Arc::new(Revocations::new(
                client,
                issuer.revocations_url.clone(),
                Duration::from_millis(issuer.revocation_poll_ms),
                Duration::from_secs(issuer.revocation_bound_secs),
                Duration::from_secs(issuer.revocation_retention_secs),
            )),
            validation: Validation {
                issuer: issuer.issuer.clone(),
                audience: issuer.audience.clone(),
                leeway_secs: i64::try_from(issuer.leeway_secs).unwrap_or(0),
                max_token_bytes: issuer.max_token_bytes,
            },
            verified: VerifiedTokens::new(issuer.verified_cache_entries),
        })
    }

    /// Keeps the keys and the revocation feed fresh in the background for as long as the
    /// runtime runs.
    pub fn spawn_refreshers(&self) {
        self.jwks.spawn_refresher();
        self.revocations.spawn_poller();
    }

    /// Brings the keys and the revocation feed up to date if they are due, waiting for it: for
    /// a Lambda sandbox, which is frozen between invocations so nothing can poll in between.
    pub async fn refresh_if_due(&self) {
        tokio::join!(self.jwks.refresh_if_due(), self.revocations.poll_if_due());
    }

    /// Whether any keys have been loaded.
    pub fn keys_loaded(&self) -> bool {
        self.jwks.current().is_some()
    }

    /// Whether the revocation feed was read within its bound.
    pub fn revocations_fresh(&self) -> bool {
        self.revocations.is_fresh()
    }

    /// The claims of the request's bearer token, if it may pass where `scopes` are all
    /// required, at `now` (Unix seconds).
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        scopes: &[String],
        now: i64,
    ) -> Result<Arc<AccessClaims>, Denial> {
        let token = bearer_token(headers, self.validation.max_token_bytes)?;
        self.authorize_token(token, scopes, now).await
    }

    /// As [`Verifier::authorize`], for one `Authorization` header value.
    pub async fn authorize_header(
        &self,
        authorization: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<Arc<AccessClaims>, Denial> {
        let token = parse_bearer(authorization, self.validation.max_token_bytes)?;
        self.authorize_token(token, scopes, now).await
    }

    async fn authorize_token(&self, token: &str, scopes: &[String], now: i64) -> Result<Arc<AccessClaims>, Denial> {
        let claims = match self.remembered(token, now) {
            Some(claims) => claims,
            None => self.verify(token, now).await?,
        };
        match self.revocations.status(&claims.sid, &claims.sub, claims.iat) {
            Status::Active => {}
            Status::Revoked => return Err(Denial::Revoked),
            Status::Unknown => return Err(Denial::RevocationUnknown),
        }
        if !scopes
            .iter()
            .all(|needed| claims.scope.split(' ').any(|granted| granted == needed))
        {
            return Err(Denial::InsufficientScope);
        }
        Ok(claims)
    }

    fn remembered(&self, token: &str, now: i64) -> Option<Arc<AccessClaims>> {
        let keys = self.jwks.current()?;
        self.verified.get(token, now, |kid| keys.get(kid).is_some())
    }

    async fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, Denial> {
        let keys = self.jwks.current().ok_or(Denial::KeysUnavailable)?;
        let verified = match jwt::verify_with_kid(token, &keys, &self.validation, now) {
            // Perhaps the issuer has published a new key since the last fetch.
            Err(Rejection::UnknownKey) => {
                let keys = self
                    .jwks
                    .refresh_for_unknown_kid()
                    .await
                    .ok_or(Denial::KeysUnavailable)?;
                jwt::verify_with_kid(token, &keys, &self.validation, now)
            }
            result => result,
        }
        .map_err(Denial::Invalid)?;
        let claims = Arc::new(verified.claims);
        let valid_until = claims.exp.saturating_add(self.validation.leeway_secs);
        self.verified
            .insert(token, Arc::clone(&claims), verified.kid, valid_until, now);
        Ok(claims)
    }
}

/// The token of the one `Authorization: Bearer` header ([`rampart_tokens::bearer`]).
pub fn bearer_token(headers: &HeaderMap, max_bytes: usize) -> Result<&str, Denial> {
    rampart_tokens::bearer::from_headers(headers, max_bytes)
        .map_err(Denial::Invalid)?
        .ok_or(Denial::Missing)
}

/// The token of one `Authorization` value ([`rampart_tokens::bearer`]).
fn parse_bearer(value: &str, max_bytes: usize) -> Result<&str, Denial> {
    rampart_tokens::bearer::from_value(value, max_bytes)
        .map_err(Denial::Invalid)?
        .ok_or(Denial::Missing)
}

/// Tokens that have verified, by SHA-256, with the key that verified them and until when.
/// Bounded: when full, expired entries go first, and if none have, all do.
#[derive(Debug)]
struct VerifiedTokens {
    entries: RwLock<HashMap<[u8; 32], Remembered>>,
    capacity: usize,
}

#[derive(Debug)]
struct Remembered {
    claims: Arc<AccessClaims>,
    kid: String,
    valid_until: i64,
}

fn token_hash(token: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    hash
}

impl VerifiedTokens {
    fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, token: &str, now: i64, key_published: impl Fn(&str) -> bool) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(&token_hash(token))?;
        (now <= entry.valid_until && key_published(&entry.kid)).then(|| Arc::clone(&entry.claims))
    }

    fn insert(&self, token: &str, claims: Arc<AccessClaims>, kid: String, valid_until: i64, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.valid_until >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            token_hash(token),
            Remembered {
                claims,
                kid,
                valid_until,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;

    /// The parsing is `rampart_tokens::bearer`'s, tested there; this is what the verifier makes
    /// of its answers.
    #[test]
    fn no_token_is_missing_and_a_bad_one_is_invalid() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers, 100), Err(Denial::Missing));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
        assert_eq!(bearer_token(&headers, 100), Err(Denial::Invalid(Rejection::Malformed)));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
        assert_eq!(bearer_token(&headers, 100), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(&headers, 5), Err(Denial::Invalid(Rejection::Oversized)));
    }

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            sid: "sid".into(),
            scope: String::new(),
            amr: vec![],
            auth_time: 0,
        })
    }

    proptest::proptest! {
        /// Whatever the Authorization headers say, the parser answers without panicking, and
        /// what it accepts is one bounded run of RFC 6750 `b64token` characters.
        #[test]
        fn any_authorization_header_is_parsed_safely(
            values in proptest::collection::vec(
                (proptest::bool::ANY, proptest::collection::vec(32u8..127, 0..120)),
                0..3,
            ),
        ) {
            let mut headers = HeaderMap::new();
            for (bearer, value) in &values {
                // Half of them look like bearer credentials, so acceptance is exercised too.
                let value = if *bearer { [b"Bearer ".as_slice(), value].concat() } else { value.clone() };
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    headers.append(header::AUTHORIZATION, value);
                }
            }
            if let Ok(token) = bearer_token(&headers, 64) {
                proptest::prop_assert!(!token.is_empty() && token.len() <= 64);
                proptest::prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)));
                proptest::prop_assert_eq!(headers.get_all(header::AUTHORIZATION).iter().count(), 1);
            }
        }
    }

    #[test]
    fn remembered_tokens_expire_and_need_their_key_still_published() {
        let cache = VerifiedTokens::new(10);
        cache.insert("t1", claims(100), "k1".into(), 100, 0);
        assert!(cache.get("t1", 100, |_| true).is_some());
        assert!(cache.get("t1", 101, |_| true).is_none(), "expired");
        assert!(cache.get("t1", 50, |kid| kid != "k1").is_none(), "key withdrawn");
        assert!(cache.get("t2", 50, |_| true).is_none(), "never verified");
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = VerifiedTokens::new(3);
        cache.insert("old", claims(10), "k".into(), 10, 0);
        for token in ["a", "b"] {
            cache.insert(token, claims(100), "k".into(), 100, 0);
        }
        // Full: the expired entry makes room.
        cache.insert("c", claims(100), "k".into(), 100, 50);
        assert!(cache.get("a", 50, |_| true).is_some());
        assert!(cache.get("old", 5, |_| true).is_none());
        // Full of live entries: they all go rather than grow past the bound.
        cache.insert("d", claims(100), "k".into(), 100, 50);
        assert!(cache.entries.read().expect("lock").len() <= 3);
        assert!(cache.get("d", 50, |_| true).is_some());
    }
}
