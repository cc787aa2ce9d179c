//! The one error type of the auth API: every failure becomes problem+json with safe text.

use axum::response::{IntoResponse, Response};
use rampart_identity::{IdentityError, InputError};
use rampart_kernel::{Problem, ProblemType};
use rampart_store::StoreError;
use rampart_tokens::SignerError;

use crate::sessions::RefreshError;
use crate::throttle::ThrottleError;
use rampart_keyring::KeyError;

/// A handler failure. `?` converts the backends' errors; internals are logged here and never
/// sent.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

/// Sent for a wrong email or password, a disabled account and one not yet confirmed, so none
/// can be told apart.
pub const INVALID_CREDENTIALS: &str = "Incorrect email or password.";

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        let problem = match error {
            IdentityError::Input(input) => Problem::new(ProblemType::Validation, input.to_string()),
            IdentityError::PasswordRefused => Problem::invalid_field("/password", error.to_string()),
            IdentityError::InvalidCredentials | IdentityError::Disabled | IdentityError::NotConfirmed => {
                Problem::new(ProblemType::Unauthorized, INVALID_CREDENTIALS)
            }
            IdentityError::InvalidCode => Problem::invalid_field("/code", "The code is invalid or has expired."),
            IdentityError::ChallengeExpired | IdentityError::SessionInvalid => Problem::new(
                ProblemType::Unauthorized,
                format!("{}.", capitalise(&error.to_string())),
            ),
            IdentityError::RateLimited => {
                Problem::new(ProblemType::TooManyRequests, "Too many attempts; try again later.").with_retry_after(60)
            }
            // Shed load: a fast answer with a short retry hint. The proxy does not count a 503
            // with Retry-After against the upstream's breaker, so shedding cannot open it.
            IdentityError::Overloaded => Problem::new(
                ProblemType::ServiceUnavailable,
                "Too many sign-ins and sign-ups at once; try again in a moment.",
            )
            .with_retry_after(1),
            IdentityError::Unavailable(detail) => {
                tracing::error!(%detail, "identity provider unavailable");
                Problem::of(ProblemType::ServiceUnavailable)
            }
        };
        Self(problem)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failed");
        Self(match error {
            StoreError::Unavailable(_) => Problem::of(ProblemType::ServiceUnavailable),
            StoreError::ConditionFailed => Problem::of(ProblemType::Conflict),
            StoreError::Corrupt(_) | StoreError::Invalid(_) => Problem::internal(),
        })
    }
}

impl From<SignerError> for ApiError {
    fn from(error: SignerError) -> Self {
        tracing::error!(%error, "signing failed");
        Self(Problem::of(ProblemType::ServiceUnavailable))
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(error) => error.into(),
            KeyError::Signer(error) => error.into(),
            KeyError::NoActiveKey => {
                tracing::error!("the key ring has no active signing key");
                Self(Problem::of(ProblemType::ServiceUnavailable))
            }
        }
    }
}

impl From<ThrottleError> for ApiError {
    fn from(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Throttled { retry_after_secs } => Self(
                Problem::new(ProblemType::TooManyRequests, "Too many attempts; try again later.")
                    .with_retry_after(retry_after_secs.max(1)),
            ),
            ThrottleError::Store(error) => error.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid | RefreshError::Reused { .. } => invalid_refresh_token(),
            RefreshError::Store(error) => error.into(),
        }
    }
}

pub fn invalid_refresh_token() -> ApiError {
    ApiError(Problem::new(
        ProblemType::Unauthorized,
        "The refresh token is invalid, expired or revoked; sign in again.",
    ))
}

/// A 422 for an input that failed its policy, located at `pointer`.
pub fn invalid_input(pointer: &str, error: InputError) -> ApiError {
    let detail = capitalise(&error.to_string());
    ApiError(Problem::invalid_field(pointer, format!("{detail}.")))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
