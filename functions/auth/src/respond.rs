//! Response helpers every handler may use, and the scope user tokens carry.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Serialize;

/// Scopes of every user access token until per-client scopes exist.
pub const USER_SCOPE: &str = "core:read core:write";

/// A JSON body that must never be cached (RFC 6749 §5.1).
pub(crate) fn no_store<T: Serialize>(body: T) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

/// A JSON body shared caches may keep for `max_age_secs`.
pub(crate) fn cacheable(body: impl Serialize, max_age_secs: u32) -> Response {
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age_secs}"))
        .unwrap_or(HeaderValue::from_static("no-store"));
    ([(header::CACHE_CONTROL, cache)], axum::Json(body)).into_response()
}
