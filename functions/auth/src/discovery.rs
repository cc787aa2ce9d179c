//! What relying parties fetch: signing keys, discovery metadata and the revocation feed.

use axum::extract::{Query, State};
use axum::response::Response;
use rampart_kernel::{Problem, now_unix};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::App;
use crate::error::ApiError;
use crate::respond::{USER_SCOPE, cacheable, no_store};
use crate::sessions::{FeedCursor, Revocation};
use rampart_keyring::JWKS_MAX_AGE_SECS;

/// The public keys that verify Rampart access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "JWK Set", content_type = "application/json")))]
pub async fn jwks(State(app): State<App>) -> Result<Response, ApiError> {
    let keys = app.keys.published(now_unix()).await?;
    Ok(cacheable(serde_json::json!({ "keys": keys }), JWKS_MAX_AGE_SECS))
}

/// Authorization-server metadata (RFC 8414), also served where OpenID Connect Discovery and API
/// Gateway's JWT authorizers look for it. Only what is true: no authorization endpoint yet,
/// hence no response types, and no ID tokens, hence no ID-token algorithms.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Discovery document", content_type = "application/json")))]
pub async fn openid_configuration(State(app): State<App>) -> Result<Response, ApiError> {
    authorization_server_metadata(State(app)).await
}

/// The same document at its RFC 8414 location.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "Discovery document", content_type = "application/json")))]
pub async fn authorization_server_metadata(State(app): State<App>) -> Result<Response, ApiError> {
    let issuer = app.tokens.issuer.trim_end_matches('/');
    let mut algorithms: Vec<&str> = app
        .keys
        .published(now_unix())
        .await?
        .iter()
        .map(|k| k.alg.name())
        .collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    Ok(cacheable(
        serde_json::json!({
            "issuer": app.tokens.issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/v1/auth/token"),
            "revocation_feed_endpoint": format!("{issuer}/v1/auth/revocations"),
            "userinfo_endpoint": format!("{issuer}/v1/auth/me"),
            // The token endpoint's grants; sign-in is Rampart's own `/v1/auth/login`.
            "grant_types_supported": ["refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "scopes_supported": USER_SCOPE.split(' ').collect::<Vec<_>>(),
            "access_token_signing_alg_values_supported": algorithms,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope", "amr", "auth_time", "email", "email_verified"],
            "service_documentation": format!("{issuer}/v1/auth/openapi.json"),
        }),
        JWKS_MAX_AGE_SECS,
    ))
}

/// The most entries one page of the revocation feed holds.
pub const FEED_PAGE_SIZE: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Unix milliseconds; omit for everything still retained (one access-token lifetime).
    pub since: Option<i64>,
    /// The `next` of the previous page, to read on from where it ended.
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationFeed {
    /// Oldest first, at most 1,000 per page.
    pub revocations: Vec<Revocation>,
    /// Poll next with `since` a few seconds before this (that of the first page read).
    pub as_of_ms: i64,
    /// Present while more entries follow: ask again with the same `since` and `after` set to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Sessions and users revoked since `since`, for verifiers that must stop them before their
/// access tokens expire; read page by page until no `next` is given, so nothing is ever left
/// out. Session and user ids are not credentials.
#[utoipa::path(get, path = "/v1/auth/revocations", tag = "discovery", params(FeedQuery),
    responses((status = 200, body = RevocationFeed),
        (status = 422, description = "`after` is not a cursor this feed gave", content_type = "application/problem+json")))]
pub async fn revocations(State(app): State<App>, Query(query): Query<FeedQuery>) -> Result<Response, ApiError> {
    let now = now_unix();
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(FeedCursor::parse(text).ok_or_else(|| {
            ApiError(Problem::invalid_field(
                "after",
                "Not a cursor this feed gave; start again without it.",
            ))
        })?),
    };
    let page = app
        .sessions
        .revoked_since(query.since.unwrap_or(0), after.as_ref(), FEED_PAGE_SIZE, now)
        .await?;
    Ok(no_store(RevocationFeed {
        revocations: page.revocations,
        as_of_ms: now * 1000,
        next: page.next.map(|cursor| cursor.encode()),
    }))
}
