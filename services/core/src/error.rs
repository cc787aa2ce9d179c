//! Every way a core request can fail, answered as problem+json. What a caller may not see is
//! 404, exactly as if it did not exist; internal failures are logged and never described.

use axum::response::{IntoResponse, Response};
use rampart_envelope::EnvelopeError;
use rampart_kernel::{Problem, ProblemType};
use rampart_store::StoreError;

#[derive(Debug)]
pub enum CoreError {
    /// No such resource, or one the caller may not see (another tenant's).
    NotFound,
    /// A member whose role does not allow the action.
    Forbidden,
    /// Bad input or a refused token: the problem says which field or why.
    Refused(Problem),
    /// The change would break a rule of the organisation (the last owner).
    Conflict(&'static str),
    Store(StoreError),
    Keys(EnvelopeError),
}

impl From<Problem> for CoreError {
    fn from(problem: Problem) -> Self {
        Self::Refused(problem)
    }
}

impl From<StoreError> for CoreError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<EnvelopeError> for CoreError {
    fn from(error: EnvelopeError) -> Self {
        match error {
            EnvelopeError::Store(error) => Self::Store(error),
            // A shredded organisation's keys are gone: so, for callers, is the organisation.
            EnvelopeError::NoKey => Self::NotFound,
            other => Self::Keys(other),
        }
    }
}

impl IntoResponse for CoreError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::NotFound => Problem::of(ProblemType::NotFound),
            Self::Forbidden => Problem::new(
                ProblemType::Forbidden,
                "Your role in this organisation does not allow this.",
            ),
            Self::Refused(problem) => problem,
            Self::Conflict(detail) => Problem::new(ProblemType::Conflict, detail),
            Self::Store(StoreError::ConditionFailed) => Problem::new(
                ProblemType::Conflict,
                "Another request changed this at the same moment; read it again and retry.",
            ),
            Self::Store(StoreError::Unavailable(error)) => {
                tracing::error!(%error, "store unavailable");
                Problem::of(ProblemType::ServiceUnavailable).with_retry_after(1)
            }
            Self::Store(error) => {
                tracing::error!(%error, "store failed");
                Problem::internal()
            }
            Self::Keys(EnvelopeError::Unavailable(error)) => {
                tracing::error!(%error, "key keeper unavailable");
                Problem::of(ProblemType::ServiceUnavailable).with_retry_after(1)
            }
            Self::Keys(error) => {
                tracing::error!(%error, "a sealed value did not open");
                Problem::internal()
            }
        };
        problem.into_response()
    }
}
