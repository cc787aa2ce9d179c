//! The authentication API. The same router runs on Lambda (behind API Gateway) and inside the
//! local platform.

pub mod account;
pub mod audit;
pub mod codes;
pub mod devices;
pub mod discovery;
pub mod error;
pub mod extract;
mod input;
pub mod keys;
pub mod oauth;
pub mod sessions;
pub mod signin;
pub mod signup;
pub mod throttle;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use rampart_identity::IdentityProvider;
use rampart_kernel::Settings;
use rampart_kernel::config::TokenSettings;
use rampart_kernel::health::{self, ReadinessProbe};
use rampart_kernel::openapi::EdgeResponses;
use rampart_mailer::{Mailer, Notice};
use rampart_seal::Sealer;
use rampart_secrets::SecretSource;
use rampart_store::{ItemStore, StoreError};
use rampart_tokens::KeySource;
use rampart_tokens::jwt::Validation;

/// The ports the auth API depends on.
#[derive(Debug, Clone)]
pub struct Backends {
    pub identity: Arc<dyn IdentityProvider>,
    /// Where signing keys live; the ring in the store says which one signs.
    pub keys: Arc<dyn KeySource>,
    pub store: Arc<dyn ItemStore>,
    pub secrets: Arc<dyn SecretSource>,
    /// Seals the provider credentials sessions keep.
    pub sealer: Arc<dyn Sealer>,
    /// Tells account owners of security changes.
    pub mailer: Arc<dyn Mailer>,
}

/// A start-up or administrative failure, naming the setting or backend that caused it.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

impl Backends {
    /// Connects the adapters the settings select. `aws` is the SDK configuration when
    /// `backend = "aws"`.
    pub async fn connect(settings: &Settings, aws: Option<&aws_types::SdkConfig>) -> Result<Self, StartupError> {
        let secrets = rampart_secrets::connect(settings, aws)?;
        let store = rampart_store::connect(settings, aws)?;
        let keys = rampart_tokens::key_source(settings, aws)?;
        let identity = rampart_identity::connect(settings, aws, &*secrets).await?;
        let sealer = rampart_seal::connect(settings, aws).await?;
        let mailer = rampart_mailer::connect(settings, aws)?;
        Ok(Self {
            identity,
            keys,
            store,
            secrets,
            sealer,
            mailer,
        })
    }
}

/// Largest access token the API accepts as a bearer credential.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Everything a handler needs, shared by all requests.
#[derive(Debug, Clone)]
pub struct App(Arc<AppState>);

#[derive(Debug)]
pub struct AppState {
    pub backends: Backends,
    pub sessions: sessions::Sessions,
    pub throttle: throttle::Throttle,
    pub codes: codes::OneTimeCodes,
    pub devices: devices::Devices,
    pub audit: audit::AuditLog,
    pub tokens: TokenSettings,
    pub validation: Validation,
    pub keys: keys::KeyRing,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: rampart_kernel::forwarded::TrustedProxies,
    /// The least time an answer that may have mailed someone takes (`mail.answer_floor_ms`).
    pub mail_answer_floor: std::time::Duration,
}

impl Deref for App {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl App {
    pub fn new(backends: Backends, settings: &Settings) -> Self {
        let store = Arc::clone(&backends.store);
        Self(Arc::new(AppState {
            sessions: sessions::Sessions::new(Arc::clone(&store), Arc::clone(&backends.sealer), settings),
            throttle: throttle::Throttle::new(Arc::clone(&store)),
            codes: codes::OneTimeCodes::new(Arc::clone(&store)),
            devices: devices::Devices::new(Arc::clone(&store)),
            audit: audit::AuditLog::new(store, settings.audit.retention_days),
            tokens: settings.tokens.clone(),
            validation: Validation {
                issuer: settings.tokens.issuer.clone(),
                audience: settings.tokens.audience.clone(),
                leeway_secs: i64::try_from(settings.tokens.leeway_secs).unwrap_or(0),
                max_token_bytes: MAX_TOKEN_BYTES,
            },
            keys: keys::KeyRing::new(Arc::clone(&backends.store), Arc::clone(&backends.keys), settings),
            trusted_proxies: settings.http.trusted_proxies.clone(),
            mail_answer_floor: std::time::Duration::from_millis(settings.mail.answer_floor_ms),
            backends,
        }))
    }

    /// Revokes every session of the user, then every credential the identity provider issued
    /// them. A failure at the provider is logged, not returned: the sessions, the only holders
    /// of those credentials, are already revoked and no longer keep them.
    pub async fn sign_out_everywhere(&self, user_id: &str, now: i64) -> Result<usize, StoreError> {
        let revoked = self.sessions.revoke_all(user_id, None, now).await?;
        if let Err(error) = self.backends.identity.sign_out_everywhere(user_id).await {
            tracing::warn!(%error, "the identity provider could not sign the user out everywhere");
        }
        Ok(revoked)
    }

    /// Disables the account with this email, an administrator's act, and ends every session it
    /// holds with one user-wide cutoff in the revocation feed: this API refuses its access
    /// tokens at once, verifiers within their feed refresh, not at the tokens' expiry. Returns
    /// the user's id, `None` if there is no such account.
    pub async fn disable_user(&self, email: &rampart_identity::Email) -> Result<Option<String>, StartupError> {
        // The provider first: from here on the account cannot sign in again, so no session
        // can begin after the cutoff.
        let Some(user) = self.backends.identity.disable_user(email).await? else {
            return Ok(None);
        };
        let now_ms = now_unix_ms();
        self.sign_out_everywhere(&user.id, now_ms / 1000).await?;
        let mut event = audit::Event::new(audit::EventKind::UserDisable, audit::Outcome::Success, now_ms);
        event.user_id = Some(user.id.clone());
        self.record(event).await;
        Ok(Some(user.id))
    }

    /// Tells the owner of `email` what changed. A failure is logged, not returned: the change
    /// has happened, and refusing the user would not undo it.
    pub async fn notify(&self, email: &str, notice: Notice) {
        if let Err(error) = self.backends.mailer.send(email, notice).await {
            tracing::error!(%error, notice = notice.label(), "security notice could not be sent");
        }
    }

    /// Issues a new one-time code for the user and mails it. A mail that cannot be sent is
    /// logged, not returned, so the caller's answer stays the one an address without an account
    /// gets; the owner asks for a new code.
    pub async fn send_code(&self, user: &str, email: &str, purpose: codes::CodePurpose) -> Result<(), StoreError> {
        let mail = self.codes.issue(user, purpose).await?;
        match self.backends.mailer.send_code(email, &mail).await {
            Ok(()) => tracing::info!(email, purpose = purpose.label(), "code mailed"),
            Err(error) => tracing::error!(%error, purpose = purpose.label(), "code could not be mailed"),
        }
        Ok(())
    }

    /// Writes an audit event. A failed write is logged loudly and counted as a metric, but does
    /// not fail the request: the event has already happened, and refusing the user would not
    /// undo it.
    pub async fn record(&self, event: audit::Event) {
        if let Err(error) = self.audit.record(&event).await {
            tracing::error!(%error, kind = ?event.kind, "audit event could not be written");
        }
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rampart authentication API", description = "Sign-up, sign-in with TOTP MFA, sessions and token discovery. Errors are RFC 9457 problem+json."),
    paths(
        signup::register, signup::confirm, signup::resend_confirmation, signup::forgot_password, signup::reset_password,
        signin::login, signin::login_mfa, signin::refresh, oauth::token, signin::logout, signin::logout_all,
        account::me, account::list_sessions, account::revoke_session, account::change_password,
        account::begin_totp, account::verify_totp, account::disable_totp,
        discovery::jwks, discovery::openid_configuration, discovery::authorization_server_metadata, discovery::revocations,
    ),
    modifiers(&BearerScheme, &EdgeResponses),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The auth API's routes inside the shared edge layers.
pub fn router(backends: Backends, settings: &Settings) -> Router {
    let probes: Vec<Arc<dyn ReadinessProbe>> = vec![Arc::clone(&backends.store) as Arc<dyn ReadinessProbe>];
    let app = App::new(backends, settings);
    let api = Router::new()
        .route(
            "/v1/auth/version",
            get(|| async { axum::Json(health::version("auth")) }),
        )
        .route("/v1/auth/openapi.json", get(discovery::openapi))
        .route("/v1/auth/register", post(signup::register))
        .route("/v1/auth/confirm", post(signup::confirm))
        .route("/v1/auth/confirm/resend", post(signup::resend_confirmation))
        .route("/v1/auth/password/forgot", post(signup::forgot_password))
        .route("/v1/auth/password/reset", post(signup::reset_password))
        .route("/v1/auth/login", post(signin::login))
        .route("/v1/auth/login/mfa", post(signin::login_mfa))
        .route("/v1/auth/refresh", post(signin::refresh))
        .route("/v1/auth/token", post(oauth::token))
        .route("/v1/auth/logout", post(signin::logout))
        .route("/v1/auth/logout/all", post(signin::logout_all))
        .route("/v1/auth/me", get(account::me))
        .route("/v1/auth/sessions", get(account::list_sessions))
        .route("/v1/auth/sessions/{id}", delete(account::revoke_session))
        .route("/v1/auth/password/change", post(account::change_password))
        .route(
            "/v1/auth/mfa/totp",
            post(account::begin_totp).delete(account::disable_totp),
        )
        .route("/v1/auth/mfa/totp/verify", post(account::verify_totp))
        .route("/v1/auth/revocations", get(discovery::revocations))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server_metadata),
        )
        .with_state(app)
        .merge(health::router("auth", probes));
    rampart_kernel::http::with_edge_layers(api, &settings.http)
}

/// Prepares a request from API Gateway for the router; wrap the router with it:
/// `tower::ServiceExt::map_request(router, from_api_gateway)`.
///
/// - The invocation's X-Ray trace header (from the Lambda context) replaces the one API
///   Gateway forwarded, so the handler's spans join the trace Lambda started. The AWS SDK
///   carries the same trace to Cognito, KMS and DynamoDB (lambda_runtime sets
///   `_X_AMZN_TRACE_ID` for each invocation).
/// - The request is routed by its path without the stage: lambda_http prefixes a REST API's
///   stage (`/prod/v1/auth/login`), and the routes are stage-independent.
pub fn from_api_gateway<B>(mut request: http::Request<B>) -> http::Request<B> {
    use lambda_http::RequestExt;
    let trace = request
        .extensions()
        .lambda_context_ref()
        .and_then(|context| context.xray_trace_id.as_deref())
        .and_then(|id| http::HeaderValue::from_str(id).ok());
    if let Some(trace) = trace {
        request.headers_mut().insert("x-amzn-trace-id", trace);
    }
    let raw = request.extensions().raw_http_path();
    if raw.is_empty() || raw == request.uri().path() {
        return request;
    }
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{raw}?{query}"),
        None => raw.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = http::uri::PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// `N` bytes from the system CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG only fails if the OS cannot supply entropy, where nothing is safe to do.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator failed");
    bytes
}

pub(crate) use rampart_kernel::{now_unix, now_unix_ms};
