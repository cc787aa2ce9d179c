//! Self-service for a signed-in user: who am I, my sessions, my password, my TOTP.
//! Every credential change revokes the user's other sessions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rampart_identity::ProviderSession;
use rampart_kernel::extract::Json;
use rampart_kernel::{BearerRefusal, Problem, ProblemType, now_unix, now_unix_ms};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use rampart_mailer::Notice;

use crate::App;
use crate::audit::{EventKind, Outcome};
use crate::error::ApiError;
use crate::extract::{AuthUser, ClientInfo};
use crate::input::{code, current_password, new_password};
use crate::respond::no_store;
use crate::throttle::Counter;

/// Changing the second factor needs a sign-in at most this old, so a stolen refresh token
/// alone cannot.
pub const RECENT_SIGN_IN_SECS: i64 = 15 * 60;

/// Enrolling or turning off TOTP needs a sign-in within [`RECENT_SIGN_IN_SECS`], and, while TOTP
/// is on, one that answered a code from it: a stolen access token can neither rebind the
/// factor to the thief's authenticator nor remove it.
async fn step_up(
    app: &App,
    client: &ClientInfo,
    user: &AuthUser,
    session: &ProviderSession,
    kind: EventKind,
) -> Result<(), ApiError> {
    let recent = now_unix() - user.session.auth_time <= RECENT_SIGN_IN_SECS;
    let answered_totp = user.session.amr.iter().any(|method| method == "otp");
    if recent && (answered_totp || !app.backends.identity.totp_enabled(session).await?) {
        return Ok(());
    }
    let reason = if recent { "totp_not_answered" } else { "sign_in_too_old" };
    app.record(client.user_event(user, kind).failed(Outcome::Failure, reason))
        .await;
    Err(ApiError(Problem::new(
        ProblemType::Forbidden,
        "Sign in again, with your authenticator code if you use one, to change two-factor authentication.",
    )))
}

/// The signed-in user, with the OpenID Connect standard claims a userinfo client reads
/// (`sub`, `email`, `email_verified`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user's id: the `sub` of their access tokens.
    pub sub: String,
    /// The same as `sub`.
    pub id: String,
    pub email: String,
    /// Always true: only a confirmed address can sign in.
    pub email_verified: bool,
    pub session_id: String,
    /// How this session's sign-in was proven (RFC 8176).
    pub amr: Vec<String>,
    pub auth_time: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of the token making this request.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 128)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 128)]
    pub new_password: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolmentView {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://` URI for a QR code.
    pub otpauth_uri: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    #[schema(value_type = String, min_length = 4, max_length = 64)]
    pub code: SecretString,
}

/// The signed-in user and session; the discovery document's `userinfo_endpoint`.
#[utoipa::path(get, path = "/v1/auth/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, description = "No valid access token", content_type = "application/problem+json")))]
pub async fn me(State(app): State<App>, user: AuthUser) -> Result<Response, ApiError> {
    let current = app
        .backends
        .identity
        .current_user(&user.session.user_id)
        .await?
        .ok_or_else(|| ApiError(BearerRefusal::Invalid.into()))?;
    Ok(no_store(Me {
        sub: current.id.clone(),
        id: current.id,
        email: current.email.as_str().to_string(),
        email_verified: true,
        session_id: user.session.id.clone(),
        amr: user.session.amr.clone(),
        auth_time: user.session.auth_time,
    }))
}

/// The user's active sessions, newest first.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = 401, description = "No valid access token", content_type = "application/problem+json")))]
pub async fn list_sessions(State(app): State<App>, user: AuthUser) -> Result<Response, ApiError> {
    let sessions = app.sessions.list(&user.session.user_id, now_unix()).await?;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id == user.session.id,
            expires_at: s.expires_at(),
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            client_ip: s.client_ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(no_store(SessionList { sessions }))
}

/// Revokes one of the user's sessions. Another user's session is answered as not found.
#[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "session", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such session of this user", content_type = "application/problem+json")))]
pub async fn revoke_session(
    State(app): State<App>,
    client: ClientInfo,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = now_unix();
    let owned = app
        .sessions
        .get(&id)
        .await?
        .filter(|s| s.user_id == user.session.user_id && s.is_active(now));
    if owned.is_none() {
        return Err(ApiError(Problem::new(ProblemType::NotFound, "No such session.")));
    }
    app.sessions.revoke(&id, now).await?;
    let mut event = client.user_event(&user, EventKind::SessionRevoke);
    event.revoked_session_id = Some(id);
    app.record(event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password and signs out every other session.
#[utoipa::path(post, path = "/v1/auth/password/change", tag = "account", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; other sessions revoked"), (status = 401, description = "Wrong current password", content_type = "application/problem+json"),
        (status = 422, description = "New password refused by policy", content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords in this session; see Retry-After", content_type = "application/problem+json")))]
pub async fn change_password(
    State(app): State<App>,
    client: ClientInfo,
    user: AuthUser,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let old = current_password("/current_password", request.current_password.expose_secret())?;
    let new = new_password("/new_password", request.new_password.expose_secret())?;
    // A stolen access token must not become a password oracle; its guesses count against its
    // own session, never the owner's other sign-ins.
    let counter = [Counter::session(&user.session.id)];
    let now = now_unix();
    app.throttle.begin_attempt(&counter, now_unix_ms()).await?;
    let result = app
        .backends
        .identity
        .change_password(&user.provider_session(&app).await?, &old, &new)
        .await;
    app.record(client.user_event(&user, EventKind::PasswordChange).with_result(&result))
        .await;
    result?;
    app.throttle.forget(&counter).await?;
    app.sessions
        .revoke_all(&user.session.user_id, Some(&user.session.id), now)
        .await?;
    app.notify(&user.session.email, Notice::PasswordChanged).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts TOTP enrolment: returns a new secret, effective once a code from it is verified.
/// Needs a sign-in within the last 15 minutes, one that answered a TOTP code if TOTP is on.
#[utoipa::path(post, path = "/v1/auth/mfa/totp", tag = "mfa", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrolmentView), (status = 401, description = "No valid access token", content_type = "application/problem+json"),
        (status = 403, description = "Sign in again first (with a TOTP code if TOTP is on)", content_type = "application/problem+json")))]
pub async fn begin_totp(State(app): State<App>, client: ClientInfo, user: AuthUser) -> Result<Response, ApiError> {
    let session = user.provider_session(&app).await?;
    step_up(&app, &client, &user, &session, EventKind::MfaEnrol).await?;
    let enrolment = app.backends.identity.begin_totp_enrolment(&session).await?;
    Ok(no_store(TotpEnrolmentView {
        secret: enrolment.secret.expose_secret().to_string(),
        otpauth_uri: enrolment.otpauth_uri.expose_secret().to_string(),
    }))
}

/// Confirms TOTP enrolment with a code; from then on sign-in asks for one. Other sessions end.
#[utoipa::path(post, path = "/v1/auth/mfa/totp/verify", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204, description = "TOTP enabled; other sessions revoked"), (status = 422, description = "Wrong code", content_type = "application/problem+json")))]
pub async fn verify_totp(
    State(app): State<App>,
    client: ClientInfo,
    user: AuthUser,
    Json(request): Json<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    let code = code(request.code.expose_secret())?;
    let result = app
        .backends
        .identity
        .confirm_totp_enrolment(&user.provider_session(&app).await?, code)
        .await;
    app.record(client.user_event(&user, EventKind::MfaEnrol).with_result(&result))
        .await;
    result?;
    app.sessions
        .revoke_all(&user.session.user_id, Some(&user.session.id), now_unix())
        .await?;
    app.notify(&user.session.email, Notice::TotpEnabled).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns TOTP off. Needs a sign-in within the last 15 minutes that answered a TOTP code; other
/// sessions end.
#[utoipa::path(delete, path = "/v1/auth/mfa/totp", tag = "mfa", security(("bearer" = [])),
    responses((status = 204, description = "TOTP disabled; other sessions revoked"), (status = 403, description = "Sign in again first", content_type = "application/problem+json")))]
pub async fn disable_totp(State(app): State<App>, client: ClientInfo, user: AuthUser) -> Result<StatusCode, ApiError> {
    let now = now_unix();
    let session = user.provider_session(&app).await?;
    step_up(&app, &client, &user, &session, EventKind::MfaDisable).await?;
    let result = app.backends.identity.disable_totp(&session).await;
    app.record(client.user_event(&user, EventKind::MfaDisable).with_result(&result))
        .await;
    result?;
    app.sessions
        .revoke_all(&user.session.user_id, Some(&user.session.id), now)
        .await?;
    app.notify(&user.session.email, Notice::TotpDisabled).await;
    Ok(StatusCode::NO_CONTENT)
}
