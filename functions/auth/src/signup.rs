//! Account lifecycle before sign-in: register, confirm, resend, forgot and reset password.
//! Each answers the same whether or not the email is registered. The codes are the auth API's
//! own (`codes`), mailed through the mailer port; the identity provider only learns that a
//! sign-up was confirmed or a password set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_identity::{Email, IdentityError, SignUpOutcome, User, UserStatus};
use rampart_kernel::extract::Json;
use rampart_kernel::{now_unix, now_unix_ms};
use rampart_mailer::Notice;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::App;
use crate::audit::{Event, EventKind, Outcome};
use crate::codes::CodePurpose;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::input::{code, email, new_password};
use crate::respond::AnswerFloor;
use crate::throttle::Counter;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 12 to 128 characters, not on the common-password list.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 128)]
    pub password: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, min_length = 4, max_length = 64)]
    pub code: SecretString,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, min_length = 4, max_length = 64)]
    pub code: SecretString,
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 128)]
    pub new_password: SecretString,
}

/// The answer to requests whose outcome must not reveal whether an account exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub detail: &'static str,
}

fn accepted(detail: &'static str) -> Response {
    (StatusCode::ACCEPTED, axum::Json(Accepted { detail })).into_response()
}

/// Charges an unauthenticated request to its client address's counter first (so a throttled
/// address spends nothing of an account's budget), then to `account`'s; a refusal is audited.
async fn admit(app: &App, client: &ClientInfo, event: &Event, account: Option<Counter>) -> Result<(), ApiError> {
    let mut counters = vec![Counter::requests(&client.rate_key())];
    counters.extend(account);
    if let Err(error) = app.throttle.begin_attempt(&counters, now_unix_ms()).await {
        app.record(event.clone().failed(Outcome::Throttled, "throttled")).await;
        return Err(error.into());
    }
    Ok(())
}

/// An audit event about `email` from this client.
fn email_event(client: &ClientInfo, kind: EventKind, email: &Email) -> Event {
    let mut event = client.event(kind, Outcome::Success);
    event.email = Some(email.as_str().to_string());
    event
}

/// Registers an account and sends a confirmation code.
#[utoipa::path(post, path = "/v1/auth/register", tag = "account", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 422, description = "Invalid email or password policy", content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address; see Retry-After", content_type = "application/problem+json")))]
pub async fn register(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let floor = AnswerFloor::start(app.mail_answer_floor);
    let email = email(&request.email)?;
    let password = new_password("/password", request.password.expose_secret())?;
    let mut event = email_event(&client, EventKind::Register, &email);
    // Every registration may mail the address, so it spends the address's mail budget, new
    // or taken alike.
    admit(&app, &client, &event, Some(Counter::mail(email.as_str()))).await?;
    let outcome = app.backends.identity.sign_up(&email, &password).await?;
    match outcome {
        SignUpOutcome::Created { user_id } => {
            app.send_code(&user_id, email.as_str(), CodePurpose::ConfirmSignUp)
                .await;
            event.user_id = Some(user_id);
        }
        SignUpOutcome::AwaitingConfirmation { user_id } => {
            app.send_code(&user_id, email.as_str(), CodePurpose::ConfirmSignUp)
                .await;
            event.outcome = Outcome::Failure;
            event.reason = Some("awaiting_confirmation".into());
        }
        SignUpOutcome::AlreadyRegistered => {
            event.outcome = Outcome::Failure;
            event.reason = Some("already_registered".into());
            app.notify(email.as_str(), Notice::AlreadyRegistered).await;
        }
    }
    app.record(event).await;
    Ok(floor
        .hold(accepted(
            "If the address can be registered, a confirmation code has been sent to it.",
        ))
        .await)
}

/// Confirms a registration with the emailed code.
#[utoipa::path(post, path = "/v1/auth/confirm", tag = "account", request_body = ConfirmRequest,
    responses((status = 204, description = "Confirmed"), (status = 422, description = "Invalid or expired code", content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account, or requests from this address; see Retry-After", content_type = "application/problem+json")))]
pub async fn confirm(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    let floor = AnswerFloor::start(app.mail_answer_floor);
    let email = email(&request.email)?;
    let code = code(request.code.expose_secret())?;
    let mut event = email_event(&client, EventKind::Confirm, &email);
    let budget = Counter::code(email.as_str(), CodePurpose::ConfirmSignUp);
    admit(&app, &client, &event, Some(budget.clone())).await?;
    let user = account_in(&app, &email, UserStatus::Unconfirmed).await?;
    let result = match redeem(&app, user.as_ref(), CodePurpose::ConfirmSignUp, code).await? {
        Some(user) => {
            event.user_id = Some(user.id.clone());
            app.backends.identity.confirm_user(&user.id).await
        }
        None => Err(IdentityError::InvalidCode),
    };
    app.record(event.with_result(&result)).await;
    if let Err(refused) = result {
        // A wrong answer for an account writes its count; for no account it writes nothing.
        return Err(floor.hold(ApiError::from(refused)).await);
    }
    app.throttle.forget(&[budget]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a new confirmation code to an unconfirmed account.
#[utoipa::path(post, path = "/v1/auth/confirm/resend", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted),
        (status = 429, description = "Too many codes sent to this account, or requests from this address; see Retry-After", content_type = "application/problem+json")))]
pub async fn resend_confirmation(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<EmailRequest>,
) -> Result<Response, ApiError> {
    let code = (CodePurpose::ConfirmSignUp, UserStatus::Unconfirmed);
    let sent = "If the account awaits confirmation, a new code has been sent.";
    mail_code(&app, &client, &request, EventKind::ConfirmResend, code, sent).await
}

/// Sends a password-reset code.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted),
        (status = 429, description = "Too many codes sent to this account, or requests from this address; see Retry-After", content_type = "application/problem+json")))]
pub async fn forgot_password(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<EmailRequest>,
) -> Result<Response, ApiError> {
    let code = (CodePurpose::ResetPassword, UserStatus::Confirmed);
    let sent = "If the account exists, a password-reset code has been sent.";
    mail_code(&app, &client, &request, EventKind::PasswordForgot, code, sent).await
}

/// Mails a code for `purpose` if the address has an account in `status`, and answers `sent`
/// either way, no sooner than the mail floor: the answer never tells whether it did.
async fn mail_code(
    app: &App,
    client: &ClientInfo,
    request: &EmailRequest,
    kind: EventKind,
    (purpose, status): (CodePurpose, UserStatus),
    sent: &'static str,
) -> Result<Response, ApiError> {
    let floor = AnswerFloor::start(app.mail_answer_floor);
    let email = email(&request.email)?;
    let event = email_event(client, kind, &email);
    admit(app, client, &event, Some(Counter::mail(email.as_str()))).await?;
    if let Some(user) = account_in(app, &email, status).await? {
        app.send_code(&user.id, email.as_str(), purpose).await;
    }
    app.record(event).await;
    Ok(floor.hold(accepted(sent)).await)
}

/// Sets a new password with a reset code and signs the user out everywhere. The code proves
/// the mailbox, so the account's sign-in back-off starts afresh.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "account", request_body = ResetPasswordRequest,
    responses((status = 204, description = "Password changed; every session revoked"), (status = 422, description = "Invalid code or password", content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account, or requests from this address; see Retry-After", content_type = "application/problem+json")))]
pub async fn reset_password(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let floor = AnswerFloor::start(app.mail_answer_floor);
    let email = email(&request.email)?;
    let code = code(request.code.expose_secret())?;
    let password = new_password("/new_password", request.new_password.expose_secret())?;
    let mut event = email_event(&client, EventKind::PasswordReset, &email);
    let budget = Counter::code(email.as_str(), CodePurpose::ResetPassword);
    admit(&app, &client, &event, Some(budget.clone())).await?;
    let user = account_in(&app, &email, UserStatus::Confirmed).await?;
    // The code is used up before the (slow) password hash, so two requests racing with one
    // code cannot both set a password.
    let result = match redeem(&app, user.as_ref(), CodePurpose::ResetPassword, code).await? {
        Some(user) => app
            .backends
            .identity
            .set_password(&user.id, &password)
            .await
            .map(|()| user),
        None => Err(IdentityError::InvalidCode),
    };
    event = event.with_result(&result);
    if let Ok(user) = &result {
        app.throttle.forget(&[budget, Counter::account(email.as_str())]).await?;
        app.sign_out_everywhere(&user.id, now_unix()).await?;
        event.user_id = Some(user.id.clone());
        app.notify(email.as_str(), Notice::PasswordReset).await;
    }
    app.record(event).await;
    if let Err(refused) = result {
        // As for a wrong confirmation code: no faster for an address without an account.
        return Err(floor.hold(ApiError::from(refused)).await);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The account with this email, if it is in `status`: the only accounts a code is sent to or
/// checked for.
async fn account_in(app: &App, email: &Email, status: UserStatus) -> Result<Option<User>, ApiError> {
    Ok(app
        .backends
        .identity
        .find_user(email)
        .await?
        .filter(|user| user.status == status))
}

/// Checks `code` against the user's pending code, using it up if right. Without a user it
/// reads a key no code has, so an address without an account costs the same store read.
async fn redeem(app: &App, user: Option<&User>, purpose: CodePurpose, code: &str) -> Result<Option<User>, ApiError> {
    let id = user.map_or("-", |user| user.id.as_str());
    let right = app.codes.redeem(id, purpose, code).await?;
    Ok(user.filter(|_| right).cloned())
}
