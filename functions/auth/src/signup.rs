//! Account lifecycle before sign-in: register, confirm, resend, forgot and reset password.
//! Each answers the same whether or not the email is registered.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_identity::SignUpOutcome;
use rampart_kernel::extract::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{EventKind, Outcome};
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::input::{code, email, new_password};
use crate::{App, now_unix};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 12 to 128 characters, not on the common-password list.
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub email: String,
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub email: String,
    pub code: String,
    #[schema(format = Password)]
    pub new_password: String,
}

/// The answer to requests whose outcome must not reveal whether an account exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub detail: &'static str,
}

fn accepted(detail: &'static str) -> Response {
    (StatusCode::ACCEPTED, axum::Json(Accepted { detail })).into_response()
}

/// Registers an account and sends a confirmation code.
#[utoipa::path(post, path = "/v1/auth/register", tag = "account", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 422, description = "Invalid email or password policy", content_type = "application/problem+json")))]
pub async fn register(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let email = email(&request.email)?;
    let password = new_password("/password", &request.password)?;
    let outcome = app.backends.identity.sign_up(&email, &password).await?;
    let mut event = client.event(EventKind::Register, Outcome::Success);
    event.email = Some(email.as_str().to_string());
    match outcome {
        SignUpOutcome::Created { user_id } => event.user_id = Some(user_id),
        SignUpOutcome::AlreadyExists => {
            event.outcome = Outcome::Failure;
            event.reason = Some("already_exists".into());
        }
    }
    app.record(event).await;
    Ok(accepted(
        "If the address can be registered, a confirmation code has been sent to it.",
    ))
}

/// Confirms a registration with the emailed code.
#[utoipa::path(post, path = "/v1/auth/confirm", tag = "account", request_body = ConfirmRequest,
    responses((status = 204, description = "Confirmed"), (status = 422, description = "Invalid or expired code", content_type = "application/problem+json")))]
pub async fn confirm(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    let email = email(&request.email)?;
    let code = code(&request.code)?;
    let result = app.backends.identity.confirm_sign_up(&email, code).await;
    let mut event = client.event(EventKind::Confirm, Outcome::Success).with_result(&result);
    event.email = Some(email.as_str().to_string());
    app.record(event).await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a new confirmation code to an unconfirmed account.
#[utoipa::path(post, path = "/v1/auth/confirm/resend", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted)))]
pub async fn resend_confirmation(
    State(app): State<App>,
    Json(request): Json<EmailRequest>,
) -> Result<Response, ApiError> {
    let email = email(&request.email)?;
    app.backends.identity.resend_confirmation(&email).await?;
    Ok(accepted(
        "If the account awaits confirmation, a new code has been sent.",
    ))
}

/// Sends a password-reset code.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted)))]
pub async fn forgot_password(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<EmailRequest>,
) -> Result<Response, ApiError> {
    let email = email(&request.email)?;
    app.backends.identity.forgot_password(&email).await?;
    let mut event = client.event(EventKind::PasswordForgot, Outcome::Success);
    event.email = Some(email.as_str().to_string());
    app.record(event).await;
    Ok(accepted("If the account exists, a password-reset code has been sent."))
}

/// Sets a new password with a reset code and signs the user out everywhere.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "account", request_body = ResetPasswordRequest,
    responses((status = 204, description = "Password changed; every session revoked"), (status = 422, description = "Invalid code or password", content_type = "application/problem+json")))]
pub async fn reset_password(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let email = email(&request.email)?;
    let code = code(&request.code)?;
    let password = new_password("/new_password", &request.new_password)?;
    let result = app.backends.identity.reset_password(&email, code, &password).await;
    let mut event = client
        .event(EventKind::PasswordReset, Outcome::Success)
        .with_result(&result);
    event.email = Some(email.as_str().to_string());
    if result.is_ok()
        && let Some(user) = app.backends.identity.find_user(&email).await?
    {
        app.sign_out_everywhere(&user.id, now_unix()).await?;
        event.user_id = Some(user.id);
    }
    app.record(event).await;
    result?;
    Ok(StatusCode::NO_CONTENT)
}
