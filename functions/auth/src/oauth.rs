//! The OAuth 2.0 token endpoint (RFC 6749 §3.2) for standard client libraries: the refresh-token
//! grant (§6), form-encoded, answered with §5.1 tokens or §5.2 error bodies. It redeems refresh
//! tokens exactly as Rampart's own JSON `/v1/auth/refresh` does; only the wire format differs.
//!
//! Sign-in itself stays at `/v1/auth/login`: Rampart has no authorization endpoint yet, so the
//! refresh token is the only grant this endpoint accepts, and discovery says so.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rampart_kernel::ProblemType;
use rampart_kernel::http::KeepErrorBody;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::App;
use crate::extract::ClientInfo;
use crate::respond::USER_SCOPE;
use crate::signin::{TokenResponse, rotate_refresh_token};

const FORM: &str = "application/x-www-form-urlencoded";

/// A token request (RFC 6749 §6). Parameters this endpoint does not know are ignored, as §3.2
/// requires; `client_id` is accepted and ignored, since public clients (`none`) send it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Only `refresh_token`.
    pub grant_type: Option<String>,
    #[schema(value_type = Option<String>)]
    pub refresh_token: Option<SecretString>,
    /// At most the scopes first granted (`core:read core:write`); the tokens keep those.
    pub scope: Option<String>,
    pub client_id: Option<String>,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope`.
    pub error: &'static str,
    pub error_description: &'static str,
}

fn oauth_error(error: &'static str, error_description: &'static str) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        axum::Json(OAuthError {
            error,
            error_description,
        }),
    )
        .into_response();
    response.extensions_mut().insert(KeepErrorBody);
    tokens_uncached(response)
}

/// RFC 6749 §5.1: token responses, errors included, carry `Cache-Control: no-store` and
/// `Pragma: no-cache`.
fn tokens_uncached(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Exchanges a refresh token for a new access token and the refresh token's successor, as an
/// OAuth 2.0 client sends it (`grant_type=refresh_token`, form-encoded).
#[utoipa::path(post, path = "/v1/auth/token", tag = "session",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse),
        (status = 400, body = OAuthError, description = "RFC 6749 §5.2: malformed request, invalid or revoked refresh token, unsupported grant or scope")))]
pub async fn token(State(app): State<App>, client: ClientInfo, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM));
    if !is_form {
        return oauth_error("invalid_request", "The body must be application/x-www-form-urlencoded.");
    }
    // Repeated parameters are refused (§3.2), and empty ones count as absent.
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return oauth_error(
            "invalid_request",
            "The body is not a form with one grant_type and no parameter twice.",
        );
    };
    match request.grant_type.as_deref() {
        None | Some("") => return oauth_error("invalid_request", "grant_type is required."),
        Some("refresh_token") => {}
        Some(_) => return oauth_error("unsupported_grant_type", "Only the refresh_token grant is supported."),
    }
    let Some(refresh_token) = request.refresh_token.filter(|t| !t.expose_secret().is_empty()) else {
        return oauth_error("invalid_request", "refresh_token is required.");
    };
    let granted: Vec<&str> = USER_SCOPE.split(' ').collect();
    if let Some(scope) = request.scope.as_deref().filter(|s| !s.is_empty())
        && !scope.split(' ').all(|s| granted.contains(&s))
    {
        return oauth_error("invalid_scope", "The scope asks for more than was granted.");
    }
    match rotate_refresh_token(&app, &client, refresh_token.expose_secret()).await {
        Ok(tokens) => tokens_uncached(axum::Json(tokens).into_response()),
        Err(error) if error.0.kind == ProblemType::Unauthorized => oauth_error(
            "invalid_grant",
            "The refresh token is invalid, expired or revoked; sign in again.",
        ),
        // Faults and load shedding are not the client's: problem+json, as on every route.
        Err(error) => error.into_response(),
    }
}
