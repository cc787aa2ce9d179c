//! The Vault adapter: KV v2 secrets at `<mount>/data/<resource_prefix>/<name>`, each a JSON
//! object whose `value` field is the secret, read with a token from one of three logins.

mod cache;
mod session;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use cache::{Lookup, Timings, Values};
use secrecy::{ExposeSecret, SecretString};
use session::Session;
use tracing::instrument;
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;

use rampart_kernel::ConfigError;
use rampart_kernel::config::VaultLoginMethod;

use crate::{Rotated, SecretError, SecretSink, SecretSource, SourceStatus};

/// A secret a login presents: given as is, or read from its file at each login, so one that
/// is rewritten (a Vault Agent's token sink, a secret id replaced before it expires) is
/// picked up without a restart.
#[derive(Debug, Clone)] // SecretString's Debug shows no value.
pub enum Credential {
    Value(SecretString),
    File(PathBuf),
}

impl From<SecretString> for Credential {
    fn from(value: SecretString) -> Self {
        Self::Value(value)
    }
}

impl Credential {
    /// The value now: the one given, or the file's content, trimmed.
    pub(super) fn read(&self) -> Result<SecretString, SecretError> {
        match self {
            Self::Value(value) => Ok(value.clone()),
            Self::File(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    SecretError::Unavailable(format!("cannot read the credential in {}: {e}", path.display()))
                })?);
                Ok(SecretString::from(text.trim()))
            }
        }
    }
}

/// How a service proves who it is to Vault.
#[derive(Clone)]
pub enum VaultLogin {
    /// A token used as given, or read from its file at each login (a Vault Agent's sink).
    /// Logging in again mends a revoked or expired token only if the file has a new one.
    Token(Credential),
    /// AppRole: a role id and a secret id, under the `approle` auth method mounted at `mount`.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Credential,
    },
    /// JWT: the token in `token_file`, read anew at each login (on EKS, the projected
    /// service-account token the kubelet keeps fresh), for `role` of the `jwt` auth method
    /// mounted at `mount`, which checks it against the cluster's OIDC keys.
    Jwt {
        mount: String,
        role: String,
        token_file: PathBuf,
    },
}

impl std::fmt::Debug for VaultLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::AppRole { mount, role_id, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
            Self::Jwt {
                mount,
                role,
                token_file,
            } => f
                .debug_struct("Jwt")
                .field("mount", mount)
                .field("role", role)
                .field("token_file", token_file)
                .finish(),
        }
    }
}

/// Where the secrets are and how to reach them.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// `https://vault.example:8200`; `http://` only on loopback.
    pub address: String,
    /// The CA bundle (PEM) that signed Vault's certificate, when it is not one the system
    /// trusts. Nothing is taken from `VAULT_CACERT` or the other `VAULT_*` variables.
    pub ca_file: Option<PathBuf>,
    pub login: VaultLogin,
    /// The KV v2 secrets engine's mount (`secret`).
    pub kv_mount: String,
    /// Each secret lives at `<resource_prefix>/<name>` under the mount.
    pub resource_prefix: String,
    /// How long one call to Vault may take.
    pub timeout: Duration,
    /// How long a value read is served before it is read again.
    pub refresh: Duration,
    /// While Vault cannot be reached, how long after it was read a value is still served
    /// (stale-if-error). KV v2 values carry no lease, so this is the bound.
    pub max_stale: Duration,
    /// While Vault cannot be reached, each secret is asked for at most once per this window, so
    /// an outage never becomes a storm of retries.
    pub retry_every: Duration,
}

impl VaultSettings {
    /// Settings with the timings a service uses unless told otherwise: 5 s per call, a value
    /// read again after a minute, served stale for at most an hour, retried every 5 s.
    pub fn new(address: String, login: VaultLogin, kv_mount: String, resource_prefix: String) -> Self {
        Self {
            address,
            ca_file: None,
            login,
            kv_mount,
            resource_prefix,
            timeout: Duration::from_secs(5),
            refresh: Duration::from_secs(60),
            max_stale: Duration::from_secs(3600),
            retry_every: Duration::from_secs(5),
        }
    }
}

/// The client settings `secrets.vault` describes: the role id read here, every other
/// credential from its file at each login.
pub fn settings_from(settings: &rampart_kernel::Settings) -> Result<VaultSettings, ConfigError> {
    let vault = &settings.secrets.vault;
    let key = |name: &str| format!("secrets.vault.{name}");
    let read = |name: &str, path: &Option<PathBuf>| -> Result<String, ConfigError> {
        let path = path
            .as_ref()
            .ok_or_else(|| ConfigError::new(key(name), "must be set"))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(key(name), format!("{}: {e}", path.display())))?;
        Ok(text.trim().to_owned())
    };
    let file =
        |name: &str, path: &Option<PathBuf>| path.clone().ok_or_else(|| ConfigError::new(key(name), "must be set"));
    let mount = |default: &str| vault.auth_mount.clone().unwrap_or_else(|| default.to_owned());
    let login = match vault.login {
        VaultLoginMethod::Token => VaultLogin::Token(Credential::File(file("token_file", &vault.token_file)?)),
        VaultLoginMethod::AppRole => VaultLogin::AppRole {
            mount: mount("approle"),
            role_id: read("role_id_file", &vault.role_id_file)?,
            secret_id: Credential::File(file("secret_id_file", &vault.secret_id_file)?),
        },
        VaultLoginMethod::Jwt => VaultLogin::Jwt {
            mount: mount("jwt"),
            role: vault
                .role
                .clone()
                .ok_or_else(|| ConfigError::new(key("role"), "must be set"))?,
            token_file: vault
                .token_file
                .clone()
                .ok_or_else(|| ConfigError::new(key("token_file"), "must be set"))?,
        },
    };
    let address = vault
        .address
        .clone()
        .ok_or_else(|| ConfigError::new(key("address"), "must be set"))?;
    let mut client = VaultSettings::new(address, login, vault.kv_mount.clone(), settings.resource_prefix.clone());
    client.ca_file.clone_from(&vault.ca_file);
    client.refresh = Duration::from_secs(settings.secrets.refresh_secs);
    client.max_stale = Duration::from_secs(vault.max_stale_secs);
    Ok(client)
}

/// Secrets in Vault's KV v2 engine, and the logged-in client through which the rest of Rampart
/// reaches Vault (Transit signing, [`VaultSource::call`]), so login and renewal live here once.
pub struct VaultSource {
    settings: VaultSettings,
    /// The current token's session; replaced, not mutated, by a renewal or a new login, so a
    /// read never holds the lock across a call to Vault.
    session: RwLock<Arc<Session>>,
    /// The last good value of each secret read, with when it was read.
    values: Values<Rotated>,
    /// Held while the token is renewed or got anew: requests refused together wait for one
    /// login rather than each making their own.
    login_lock: tokio::sync::Mutex<()>,
    logins: AtomicU64,
    renewals: AtomicU64,
}

impl std::fmt::Debug for VaultSource {
    // The client's settings hold the token in the clear; only the settings are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The HTTP status Vault answered with, if it answered: vaultrs reports an answer with an
/// `errors` list as `APIError`, and one without (a deleted KV version: 404 with `data: null`)
/// as rustify's `ServerResponseError`.
pub fn status(error: &ClientError) -> Option<u16> {
    match error {
        ClientError::APIError { code, .. }
        | ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code, .. },
        } => Some(*code),
        _ => None,
    }
}

/// What Vault's answer means for a secret `name`. Vault's own error strings name paths and
/// causes, never values or tokens; response bodies are never quoted.
fn classify(name: &str, error: &ClientError) -> SecretError {
    let errors = match error {
        ClientError::APIError { errors, .. } => errors.join("; "),
        _ => String::new(),
    };
    match status(error) {
        Some(404) => SecretError::NotFound(name.to_owned()),
        Some(403) => SecretError::Denied(format!(
            "Vault refused access to secret {name} (403): the token's policies do not allow it"
        )),
        Some(code) => SecretError::Unavailable(format!("Vault answered {code} for secret {name}: {errors}")),
        // Vault answered, but not as KV v2 answers: never served stale as an outage would be.
        None if matches!(
            error,
            ClientError::JsonParseError { .. } | ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError
        ) =>
        {
            SecretError::Invalid(format!("Vault's answer for secret {name} is not a KV v2 secret"))
        }
        None => SecretError::Unavailable(format!("Vault could not be reached for secret {name}: {error}")),
    }
}

impl VaultSource {
    /// Logs in and returns a source using that login; fails if Vault refuses it or cannot be
    /// reached, so a misconfigured service stops at startup rather than at its first request.
    /// Call [`VaultSource::keep_token_alive`] to renew the token as it ages.
    pub async fn connect(settings: VaultSettings) -> Result<Self, SecretError> {
        check_address(&settings.address)?;
        let session = Session::login(&settings).await?;
        Ok(Self {
            settings,
            session: RwLock::new(Arc::new(session)),
            values: Values::default(),
            login_lock: tokio::sync::Mutex::new(()),
            logins: AtomicU64::new(1),
            renewals: AtomicU64::new(0),
        })
    }

    fn timings(&self) -> Timings {
        Timings {
            refresh: self.settings.refresh,
            max_stale: self.settings.max_stale,
            retry_every: self.settings.retry_every,
            timeout: self.settings.timeout,
        }
    }

    fn path(&self, name: &str) -> String {
        rampart_kernel::schema::secret_name(&self.settings.resource_prefix, name)
    }

    fn session(&self) -> Arc<Session> {
        Arc::clone(&self.session.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn replace_session(&self, session: Session) -> Arc<VaultClient> {
        let client = Arc::clone(&session.client);
        *self.session.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(session);
        client
    }

    async fn login_again(&self) -> Result<Arc<VaultClient>, SecretError> {
        let session = Session::login(&self.settings).await?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        Ok(self.replace_session(session))
    }

    /// Renews the token, or logs in again when it cannot be renewed usefully.
    async fn refresh_token(&self) -> Result<(), SecretError> {
        let _one_at_a_time = self.login_lock.lock().await;
        let current = self.session();
        match current.renew().await {
            Ok(Some(renewed)) => {
                self.renewals.fetch_add(1, Ordering::Relaxed);
                self.replace_session(renewed);
            }
            // A renewal that failed for any reason (refused, or an answer without the token's
            // details, which Vault gives near the max TTL) is followed by a login at once; only
            // if that fails too does the caller wait.
            Ok(None) | Err(_) => {
                self.login_again().await?;
            }
        }
        Ok(())
    }

    /// Renews the token at about two thirds of its TTL (with jitter), and logs in again when
    /// renewal is refused or the max TTL is near; after a failure, tries again within a
    /// quarter of the time the token has left (between 1 and 30 s), and once it has run out,
    /// after a wait that doubles from 1 s up to 5 minutes. Ends when the source is dropped, or
    /// at once for a token that never expires.
    pub fn keep_token_alive(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let source: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut retry_at = None;
            let mut failures: u32 = 0;
            loop {
                let wake = {
                    let Some(source) = source.upgrade() else { return };
                    match retry_at.take().or_else(|| source.session().renew_at()) {
                        Some(at) => at,
                        None => return,
                    }
                };
                tokio::time::sleep_until(wake.into()).await;
                let Some(source) = source.upgrade() else { return };
                match source.refresh_token().await {
                    Ok(()) => failures = 0,
                    Err(error) => {
                        let left = source
                            .session()
                            .expires_at()
                            .map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()));
                        let wait = if left.is_zero() {
                            failures = failures.saturating_add(1);
                            let doubled = 2u64.saturating_pow(failures - 1);
                            Duration::from_secs(doubled).min(Duration::from_secs(300))
                        } else {
                            (left / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
                        };
                        tracing::warn!(%error, left_s = left.as_secs(), retry_s = wait.as_secs(), "renewing the Vault token failed");
                        retry_at = Some(Instant::now() + wait);
                    }
                }
            }
        })
    }

    /// Runs `call` with the client holding the current token: how other Vault engines than
    /// KV v2 (Transit signing) use this source's login. Vault answers 403 both for what the
    /// policy denies and for a token it has revoked or let expire; in the second case only,
    /// this logs in again and tries once more. The outer error is a login that failed; the
    /// inner one is Vault's answer to `call`, for the caller to read ([`status`]).
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<Result<T, ClientError>, SecretError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let used = self.session();
        match call(Arc::clone(&used.client)).await {
            Err(error) if status(&error) == Some(403) => match self.login_after_refusal(&used).await? {
                Some(client) => Ok(call(client).await),
                None => Ok(Err(error)),
            },
            answered => Ok(answered),
        }
    }

    /// [`VaultSource::call`] for the secret `name`, Vault's refusals told as [`SecretError`]s.
    async fn with_login<T, F, Fut>(&self, name: &str, call: F) -> Result<T, SecretError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.call(call).await?.map_err(|error| classify(name, &error))
    }

    /// After a 403 answered to the session `used`: the client to try again with, or `None`
    /// when that token is still alive, so the 403 was the policy's (no login for those, which
    /// would only pile up tokens). If another caller has logged in meanwhile, its session.
    async fn login_after_refusal(&self, used: &Arc<Session>) -> Result<Option<Arc<VaultClient>>, SecretError> {
        let _one_at_a_time = self.login_lock.lock().await;
        let current = self.session();
        if !Arc::ptr_eq(&current, used) {
            return Ok(Some(Arc::clone(&current.client)));
        }
        if vaultrs::token::lookup_self(&*used.client).await.is_ok() {
            return Ok(None);
        }
        self.login_again().await.map(Some)
    }

    /// The secret from memory while fresh; else read from Vault, or, while Vault cannot be
    /// reached, the last good value until `max_stale` after it was read.
    async fn cached(&self, name: &str) -> Result<Rotated, SecretError> {
        let timings = self.timings();
        let ticket = match self.values.lookup(name, Instant::now(), timings) {
            Lookup::Serve(value) => return Ok(value),
            Lookup::Unreachable => {
                return Err(SecretError::Unavailable(format!(
                    "Vault could not be reached for secret {name} moments ago; asked again within {} s",
                    timings.retry_every.as_secs()
                )));
            }
            Lookup::Ask(ticket) => ticket,
        };
        match self.read_rotated(name).await {
            Ok(value) => {
                self.values.read(name, &value, &ticket);
                Ok(value)
            }
            Err(SecretError::Unavailable(why)) => match self.values.unreachable(name, Instant::now(), timings) {
                Some(value) => {
                    tracing::warn!(secret = name, error = %why, "Vault unreachable; serving the last good value");
                    Ok(value)
                }
                None => Err(SecretError::Unavailable(why)),
            },
            Err(refused) => {
                self.values.forget(name);
                Err(refused)
            }
        }
    }

    /// The latest version and the one before it, unless that one is deleted or destroyed.
    async fn read_rotated(&self, name: &str) -> Result<Rotated, SecretError> {
        let mount = self.settings.kv_mount.as_str();
        let path = self.path(name);
        let metadata = self
            .with_login(name, |client| {
                let path = path.clone();
                async move { vaultrs::kv2::read_metadata(&*client, mount, &path).await }
            })
            .await?;
        let current = self.read_value(name, metadata.current_version).await?;
        let previous = match metadata.current_version.checked_sub(1).filter(|v| *v > 0) {
            Some(version) => match self.read_value(name, version).await {
                Ok(value) => Some(value),
                Err(SecretError::NotFound(_)) => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        Ok(Rotated { current, previous })
    }

    async fn read_value(&self, name: &str, version: u64) -> Result<SecretString, SecretError> {
        let mount = self.settings.kv_mount.as_str();
        let path = self.path(name);
        let data: serde_json::Map<String, serde_json::Value> = self
            .with_login(name, |client| {
                let path = path.clone();
                async move { vaultrs::kv2::read_version(&*client, mount, &path, version).await }
            })
            .await?;
        value_of(name, data)
    }
}

/// The address must be a URL, and `https://` unless it is on loopback: the token and the
/// secrets cross that connection.
fn check_address(address: &str) -> Result<(), SecretError> {
    if rampart_kernel::config::is_https_or_loopback(address) {
        Ok(())
    } else {
        Err(SecretError::Invalid(format!(
            "the Vault address {address:?} must be https:// (http:// only on loopback)"
        )))
    }
}

/// The `value` field of a secret's data; the other fields are not looked at, and nothing of the
/// data goes into an error.
fn value_of(name: &str, mut data: serde_json::Map<String, serde_json::Value>) -> Result<SecretString, SecretError> {
    let value = match data.remove("value") {
        Some(serde_json::Value::String(value)) => Ok(SecretString::from(value)),
        _ => Err(SecretError::Invalid(format!(
            "secret {name} in Vault has no string field `value`"
        ))),
    };
    for (_, other) in data {
        if let serde_json::Value::String(mut text) = other {
            zeroize::Zeroize::zeroize(&mut text);
        }
    }
    value
}

#[async_trait::async_trait]
impl SecretSource for VaultSource {
    /// Served from memory for `refresh`; while Vault cannot be reached, the last good value is
    /// served for up to `max_stale` after it was read, and Vault asked at most once per
    /// `retry_every`.
    #[instrument(name = "secrets.get", skip(self))]
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        Ok(self.cached(name).await?.current)
    }

    fn status(&self) -> SourceStatus {
        let now = Instant::now();
        SourceStatus {
            credential_expires_in: self.session().expires_at().map(|at| at.saturating_duration_since(now)),
            logins: self.logins.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
            stale: self.values.stale(now, self.timings()),
        }
    }

    /// The latest version and the one before it, unless that one is deleted or destroyed;
    /// from memory, and stale while Vault cannot be reached, as [`VaultSource::get`].
    #[instrument(name = "secrets.get_with_previous", skip(self))]
    async fn get_with_previous(&self, name: &str) -> Result<Rotated, SecretError> {
        self.cached(name).await
    }
}

#[async_trait::async_trait]
impl SecretSink for VaultSource {
    /// Writes a new version; the one it replaces stays readable as the previous.
    #[instrument(name = "secrets.put", skip(self, value))]
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let mount = self.settings.kv_mount.as_str();
        let path = self.path(name);
        self.with_login(name, |client| {
            let path = path.clone();
            let data = serde_json::json!({ "value": value.expose_secret() });
            async move { vaultrs::kv2::set(&*client, mount, &path, &data).await }
        })
        .await?;
        self.values.forget(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_https_or_on_loopback() {
        for good in [
            "https://vault.example:8200",
            "http://127.0.0.1:8200",
            "http://[::1]:8200",
            "http://localhost:8200",
        ] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for bad in [
            "http://vault.example:8200",
            "vault.example:8200",
            "not a url",
            "ftp://127.0.0.1",
            "http://127.0.0.1.vault.example:8200",
            "http://localhost@vault.example:8200",
            // The url crate ends the host at the backslash: the client would dial vault.example.
            "http://vault.example\\@127.0.0.1:8200",
        ] {
            assert!(matches!(check_address(bad), Err(SecretError::Invalid(_))), "{bad}");
        }
    }
}
