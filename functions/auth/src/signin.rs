//! Signing in and out: password login, the TOTP step, refresh-token rotation, logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_identity::{Email, IdentityError, LoginOutcome, ProviderSession, UserStatus};
use rampart_kernel::extract::Json;
use rampart_kernel::{ProblemType, now_unix, now_unix_ms};
use rampart_tokens::jwt::{self, AccessClaims};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::App;
use crate::audit::{Event, EventKind, Outcome};
use crate::codes::CodePurpose;
use crate::devices::Device;
use crate::error::{ApiError, invalid_refresh_token};
use crate::extract::{AuthUser, ClientInfo};
use crate::input::{code, current_password, email, opaque};
use crate::random::random_bytes;
use crate::respond::{AnswerFloor, USER_SCOPE, no_store};
use crate::sessions::{NewSession, RefreshError, RefreshToken, Session};
use crate::throttle::Counter;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 128)]
    pub password: SecretString,
    /// The `device_token` an earlier sign-in to this account returned: the client keeps its
    /// own sign-in budget while others' failures back the account off.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub device_token: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// The `challenge` the login answered with.
    #[schema(value_type = String, min_length = 1, max_length = 4096)]
    pub challenge: SecretString,
    /// The current six-digit TOTP code.
    #[schema(value_type = String, min_length = 4, max_length = 64)]
    pub code: SecretString,
    /// As for the login.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub device_token: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// A new access token and its session's next refresh token (RFC 6749 §5.1 names).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single-use: each refresh returns its successor.
    pub refresh_token: String,
    pub session_id: String,
    pub scope: &'static str,
    /// After a sign-in: send it with the next sign-in to this account (see `LoginRequest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// What a correct password led to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginResponse {
    Authenticated(TokenResponse),
    /// Answer at `/v1/auth/login/mfa` with a TOTP code within five minutes.
    MfaRequired {
        challenge: String,
    },
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "Incorrect email or password (also for an account not yet confirmed, which is sent a new code)", content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts; see Retry-After", content_type = "application/problem+json")))]
pub async fn login(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let floor = AnswerFloor::start(app.mail_answer_floor);
    let email = email(&request.email)?;
    let password = current_password("/password", request.password.expose_secret())?;
    let (mut event, charged) = begin_sign_in(&app, &client, &email, request.device_token.as_ref()).await?;
    let result = app.backends.identity.authenticate(&email, &password).await;
    if let Err(IdentityError::NotConfirmed) = result {
        // Answered like a wrong password, so sign-in cannot tell a fresh sign-up from a taken
        // address; the owner, who knows the password, gets a new code instead.
        resend_confirmation(&app, &email).await;
    }
    let outcome = match audited(&app, &event, result).await {
        Ok(outcome) => outcome,
        // Every refused sign-in waits out the floor, so the one that mailed a code does not
        // stand out by its timing (on Lambda the mail cannot be left to a background task: the
        // environment freezes once the answer leaves).
        Err(refused) if refused.0.kind == ProblemType::Unauthorized => return Err(floor.hold(refused).await),
        Err(error) => return Err(error),
    };
    match outcome {
        LoginOutcome::Authenticated(provider) => {
            let response = start_session(&app, &client, &charged, provider, &["pwd"]).await?;
            event.user_id = Some(response.1.user_id.clone());
            event.session_id = Some(response.1.id.clone());
            app.record(event).await;
            Ok(no_store(LoginResponse::Authenticated(response.0)))
        }
        LoginOutcome::MfaRequired { challenge } => {
            event.kind = EventKind::MfaChallenge;
            app.record(event).await;
            Ok(no_store(LoginResponse::MfaRequired {
                challenge: challenge.expose_secret().to_string(),
            }))
        }
    }
}

/// Completes a login that asked for a TOTP code.
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "session", request_body = MfaRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "The challenge expired; sign in again", content_type = "application/problem+json"),
        (status = 422, description = "Wrong code", content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", content_type = "application/problem+json")))]
pub async fn login_mfa(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<MfaRequest>,
) -> Result<Response, ApiError> {
    let email = email(&request.email)?;
    let challenge = opaque("/challenge", request.challenge.expose_secret())?;
    let code = code(request.code.expose_secret())?;
    let (mut event, charged) = begin_sign_in(&app, &client, &email, request.device_token.as_ref()).await?;
    let provider = audited(
        &app,
        &event,
        app.backends.identity.answer_mfa(&email, challenge, code).await,
    )
    .await?;
    let (tokens, session) = start_session(&app, &client, &charged, provider, &["pwd", "otp", "mfa"]).await?;
    event.user_id = Some(session.user_id.clone());
    event.session_id = Some(session.id);
    app.record(event).await;
    Ok(no_store(tokens))
}

/// Exchanges a refresh token for a new access token and the refresh token's successor.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "session", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Invalid, expired, revoked or reused refresh token", content_type = "application/problem+json")))]
pub async fn refresh(
    State(app): State<App>,
    client: ClientInfo,
    Json(request): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    Ok(no_store(
        rotate_refresh_token(&app, &client, request.refresh_token.expose_secret()).await?,
    ))
}

/// Redeems a refresh token for new tokens, for `/v1/auth/refresh` and the OAuth token endpoint
/// alike: a reused token revokes its session, and a user the provider has deleted or disabled
/// loses every session.
pub(crate) async fn rotate_refresh_token(
    app: &App,
    client: &ClientInfo,
    refresh_token: &str,
) -> Result<TokenResponse, ApiError> {
    let now = now_unix();
    let mut event = client.event(EventKind::Refresh, Outcome::Success);
    let session = match app.sessions.redeem(refresh_token, now).await {
        Ok(session) => session,
        Err(RefreshError::Reused { session }) => {
            tracing::warn!(session_id = %session.id, "rotated refresh token reused; session revoked");
            let mut event = client.event(EventKind::RefreshTokenReuse, Outcome::Failure);
            event.user_id = Some(session.user_id.clone());
            event.session_id = Some(session.id.clone());
            app.record(event).await;
            return Err(invalid_refresh_token());
        }
        Err(error) => {
            app.record(event.failed(Outcome::Failure, "invalid_token")).await;
            return Err(error.into());
        }
    };
    event.user_id = Some(session.user_id.clone());
    event.session_id = Some(session.id.clone());
    // The provider has the last word: a user deleted or disabled there loses every session.
    let user = app.backends.identity.current_user(&session.user_id).await;
    match user {
        Ok(Some(user)) if user.status != UserStatus::Disabled => {}
        Ok(_) | Err(IdentityError::SessionInvalid) => {
            app.sign_out_everywhere(&session.user_id, now).await?;
            app.record(event.failed(Outcome::Failure, "user_disabled_or_deleted"))
                .await;
            return Err(invalid_refresh_token());
        }
        Err(error) => return Err(error.into()),
    }
    let (session, refresh_token) = match app.sessions.rotate(session, now).await {
        Ok(rotated) => rotated,
        Err(error) => {
            app.record(event.failed(Outcome::Failure, "lost_concurrent_refresh"))
                .await;
            return Err(error.into());
        }
    };
    let tokens = issue_tokens(app, &session, refresh_token).await?;
    app.record(event).await;
    Ok(tokens)
}

/// Ends the session the access token belongs to.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "session", security(("bearer" = [])),
    responses((status = 204, description = "Session revoked"), (status = 401, description = "No valid access token", content_type = "application/problem+json")))]
pub async fn logout(State(app): State<App>, client: ClientInfo, user: AuthUser) -> Result<StatusCode, ApiError> {
    app.sessions.revoke(&user.session.id, now_unix()).await?;
    app.record(client.user_event(&user, EventKind::Logout)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the signed-in user.
#[utoipa::path(post, path = "/v1/auth/logout/all", tag = "session", security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked"), (status = 401, description = "No valid access token", content_type = "application/problem+json")))]
pub async fn logout_all(State(app): State<App>, client: ClientInfo, user: AuthUser) -> Result<StatusCode, ApiError> {
    app.sign_out_everywhere(&user.session.user_id, now_unix()).await?;
    app.record(client.user_event(&user, EventKind::LogoutAll)).await;
    app.notify(&user.session.email, rampart_mailer::Notice::SignedOutEverywhere)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// What a sign-in attempt was charged to, and so what its success redeems.
pub(crate) struct Charged {
    /// The device the client proved, whose counter alone was charged.
    device: Option<Device>,
    counters: Vec<Counter>,
}

/// Charges a sign-in step (password or TOTP) to the throttle; a refused attempt is audited.
/// A client with a device token for this account is charged on the device's own counter;
/// any other on the account-and-address, account-wide and address counters.
async fn begin_sign_in(
    app: &App,
    client: &ClientInfo,
    email: &Email,
    device_token: Option<&SecretString>,
) -> Result<(Event, Charged), ApiError> {
    let mut event = client.event(EventKind::Login, Outcome::Success);
    event.email = Some(email.as_str().to_string());
    let device = match device_token {
        Some(token) => app.devices.recognise(token.expose_secret(), email.as_str()).await?,
        None => None,
    };
    let counters = match &device {
        Some(device) => vec![Counter::device(&device.id)],
        None => {
            let ip = &client.rate_key();
            vec![
                Counter::account_client(email.as_str(), ip),
                Counter::account(email.as_str()),
                Counter::client_ip(ip),
            ]
        }
    };
    if let Err(error) = app.throttle.begin_attempt(&counters, now_unix_ms()).await {
        app.record(event.failed(Outcome::Throttled, "throttled")).await;
        return Err(error.into());
    }
    Ok((event, Charged { device, counters }))
}

/// Sends a new confirmation code within the account's mail budget; over budget, or failing,
/// nothing is sent, as the sign-in's answer must not change.
async fn resend_confirmation(app: &App, email: &Email) {
    if app
        .throttle
        .begin_attempt(&[Counter::mail(email.as_str())], now_unix_ms())
        .await
        .is_err()
    {
        return;
    }
    match app.backends.identity.find_user(email).await {
        Ok(Some(user)) if user.status == UserStatus::Unconfirmed => {
            app.send_code(&user.id, email.as_str(), CodePurpose::ConfirmSignUp)
                .await;
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "confirmation code could not be resent after a sign-in"),
    }
}

/// The result of a sign-in's identity step; a failure is audited before it is returned.
async fn audited<T>(app: &App, event: &Event, result: Result<T, IdentityError>) -> Result<T, ApiError> {
    if let Err(error) = &result {
        app.record(event.clone().failed(Outcome::Failure, crate::audit::reason(error)))
            .await;
    }
    Ok(result?)
}

/// Redeems the throttle's charge, opens the session and gives the client a new device token.
async fn start_session(
    app: &App,
    client: &ClientInfo,
    charged: &Charged,
    provider: ProviderSession,
    amr: &[&str],
) -> Result<(TokenResponse, Session), ApiError> {
    let now = now_unix();
    // The address counter is shared with other accounts: it loses one attempt, not its count.
    let (forget, shared): (&[Counter], &[Counter]) = match &charged.device {
        Some(_) => (&charged.counters, &[]),
        None => charged.counters.split_at(2),
    };
    app.throttle.forget(forget).await?;
    for address in shared {
        app.throttle.credit(address, now_unix_ms()).await?;
    }
    let email = provider.user.email.as_str().to_string();
    let new = NewSession {
        user_id: provider.user.id,
        email: email.clone(),
        amr: amr.iter().map(|m| (*m).to_string()).collect(),
        client_ip: client.ip(),
        user_agent: client.user_agent.clone(),
        provider_credential: provider.credential,
    };
    let (session, refresh_token) = app.sessions.create(new, now).await?;
    let mut tokens = issue_tokens(app, &session, refresh_token).await?;
    let device_token = app.devices.issue(&email, charged.device.as_ref(), now).await?;
    tokens.device_token = Some(device_token.expose_secret().to_string());
    Ok((tokens, session))
}

async fn issue_tokens(app: &App, session: &Session, refresh_token: RefreshToken) -> Result<TokenResponse, ApiError> {
    let now = now_unix();
    let ttl = app.tokens.access_token_ttl_secs;
    let claims = AccessClaims {
        iss: app.tokens.issuer.clone(),
        sub: session.user_id.clone(),
        aud: app.tokens.audience.clone(),
        exp: now + i64::try_from(ttl).unwrap_or(0),
        iat: now,
        nbf: now,
        jti: URL_SAFE_NO_PAD.encode(random_bytes::<16>()),
        sid: session.id.clone(),
        scope: USER_SCOPE.to_string(),
        amr: session.amr.clone(),
        auth_time: session.auth_time,
    };
    let signer = app.keys.signer(now).await?;
    let access_token = jwt::issue(&*signer, &claims).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh_token.expose().to_string(),
        session_id: session.id.clone(),
        scope: USER_SCOPE,
        device_token: None,
    })
}
