//! The state every handler shares: the ports ([`Backends`]) and the repositories built on them
//! ([`App`]), with the few operations that span several of them.

use std::ops::Deref;
use std::sync::Arc;

use rampart_identity::IdentityProvider;
use rampart_kernel::config::TokenSettings;
use rampart_kernel::metrics::Registry;
use rampart_kernel::{Settings, now_unix_ms};
use rampart_mailer::{Mailer, Notice};
use rampart_seal::Sealer;
use rampart_secrets::SecretSource;
use rampart_store::{ItemStore, StoreError};
use rampart_tokens::KeySource;
use rampart_tokens::jwt::Validation;

use rampart_keyring::KeyRing;

use crate::metrics::SecurityMetrics;
use crate::{audit, codes, devices, sessions, throttle};

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
        let secrets = rampart_secrets::connect(settings, aws).await?;
        let store = rampart_store::connect(settings, aws)?;
        let keys = rampart_tokens::key_source(settings, aws).await?;
        let identity = rampart_identity::connect(settings, aws, &*secrets).await?;
        let sealer = rampart_seal::connect(settings, aws, &*secrets).await?;
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

/// What [`Backends::provision`] created or found under a resource prefix.
#[derive(Debug)]
pub struct Provisioned {
    /// DynamoDB table names.
    pub tables: Vec<String>,
    /// KMS aliases with their key ids.
    pub keys: Vec<(String, String)>,
    /// The Cognito pool and app client; the client secret is in Secrets Manager.
    pub pool: rampart_identity::cognito::ProvisionedPool,
    /// The secrets Rampart generates, made if missing (their names in Secrets Manager).
    pub generated_secrets: Vec<String>,
}

impl Backends {
    /// Creates, or finds, every AWS resource the ports use under `prefix`: tables, keys, the
    /// user pool and its client secret, and the secrets Rampart generates. What `rampart bootstrap` runs, and what a test on moto
    /// runs for a prefix of its own; safe to run again.
    pub async fn provision(aws: &aws_types::SdkConfig, prefix: &str) -> Result<Provisioned, StartupError> {
        let tables = rampart_store::provision(aws, prefix).await?;
        let keys = rampart_tokens::provision(aws, prefix).await?;
        let secrets = rampart_secrets::SecretsManagerSource::from_sdk_config(aws, prefix);
        let pool = rampart_identity::provision(aws, prefix, &secrets).await?;
        let generated_secrets = rampart_secrets::provision(aws, prefix).await?;
        Ok(Provisioned {
            tables,
            keys,
            pool,
            generated_secrets,
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
    pub metrics: SecurityMetrics,
    pub tokens: TokenSettings,
    pub validation: Validation,
    pub keys: KeyRing,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: rampart_kernel::forwarded::TrustedProxies,
    /// The header an edge we trust names the client in (`http.client_address_header`).
    pub client_address_header: Option<rampart_kernel::forwarded::ClientAddressHeader>,
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
    /// The state of one API; its security counters go into `metrics`.
    pub fn new(backends: Backends, settings: &Settings, metrics: &Registry) -> Self {
        let store = Arc::clone(&backends.store);
        let audit = audit::AuditLog::new(Arc::clone(&store), settings.audit.retention_days);
        Self(Arc::new(AppState {
            metrics: SecurityMetrics::new(metrics, audit.failure_counter()),
            audit,
            sessions: sessions::Sessions::new(Arc::clone(&store), Arc::clone(&backends.sealer), settings),
            throttle: throttle::Throttle::new(Arc::clone(&store)),
            codes: codes::OneTimeCodes::new(Arc::clone(&store)),
            devices: devices::Devices::new(store),
            tokens: settings.tokens.clone(),
            validation: Validation {
                issuer: settings.tokens.issuer.clone(),
                audience: settings.tokens.audience.clone(),
                leeway_secs: i64::try_from(settings.tokens.leeway_secs).unwrap_or(0),
                max_token_bytes: MAX_TOKEN_BYTES,
            },
            keys: KeyRing::new(Arc::clone(&backends.store), Arc::clone(&backends.keys), settings),
            trusted_proxies: settings.http.trusted_proxies.clone(),
            client_address_header: settings.http.client_address_header.clone(),
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

    /// Issues a new one-time code for the user and mails it. A code that cannot be stored or
    /// mailed is logged, not returned: the caller's answer must stay the one an address without
    /// an account gets, or a failure would tell that the account exists. The owner asks again.
    pub async fn send_code(&self, user: &str, email: &str, purpose: codes::CodePurpose) {
        let mail = match self.codes.issue(user, purpose).await {
            Ok(mail) => mail,
            Err(error) => {
                tracing::error!(%error, purpose = purpose.label(), "a code could not be issued");
                return;
            }
        };
        match self.backends.mailer.send_code(email, &mail).await {
            Ok(()) => {
                tracing::info!(email, purpose = purpose.label(), "code mailed");
                self.metrics.code_sent(purpose, now_unix_ms());
            }
            Err(error) => tracing::error!(%error, purpose = purpose.label(), "code could not be mailed"),
        }
    }

    /// Writes an audit event and counts it. A failed write is logged loudly and counted as a
    /// metric, but does not fail the request: the event has already happened, and refusing the
    /// user would not undo it.
    pub async fn record(&self, event: audit::Event) {
        self.metrics.event(&event);
        if let Err(error) = self.audit.record(&event).await {
            tracing::error!(%error, kind = ?event.kind, "audit event could not be written");
            self.metrics.audit_write_failed(event.at_ms);
        }
    }
}
