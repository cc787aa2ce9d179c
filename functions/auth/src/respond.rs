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

/// Holds back an answer until a floor after the request began (`mail.answer_floor_ms`):
/// answers that may have mailed someone, every refused sign-in and every refused code take at
/// least that long, so how long one took does not tell whether mail was sent, or a code's
/// wrong answers counted, and so whether an account exists.
pub(crate) struct AnswerFloor(tokio::time::Instant);

impl AnswerFloor {
    pub(crate) fn start(floor: std::time::Duration) -> Self {
        Self(tokio::time::Instant::now() + floor)
    }

    pub(crate) async fn hold<T>(self, answer: T) -> T {
        let late = tokio::time::Instant::now().saturating_duration_since(self.0);
        if late.is_zero() {
            tokio::time::sleep_until(self.0).await;
        } else {
            tracing::warn!(
                late_ms = late.as_millis(),
                "answer later than mail.answer_floor_ms: its timing may tell whether mail was sent"
            );
        }
        answer
    }
}

/// A JSON body shared caches may keep for `max_age_secs`.
pub(crate) fn cacheable(body: impl Serialize, max_age_secs: u32) -> Response {
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age_secs}"))
        .unwrap_or(HeaderValue::from_static("no-store"));
    ([(header::CACHE_CONTROL, cache)], axum::Json(body)).into_response()
}
