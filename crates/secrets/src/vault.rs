//! The Vault adapter: KV v2 secrets at `<mount>/data/<resource_prefix>/<name>`, each a JSON
//! object whose `value` field is the secret, read with a token from one of three logins.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::{Rotated, SecretError, SecretSink, SecretSource};

/// How a service proves who it is to Vault.
#[derive(Clone)]
pub enum VaultLogin {
    /// A token used as given (a Vault Agent's sink, an operator's token). Logging in again
    /// cannot mend it once it is revoked or expired.
    Token(SecretString),
    /// AppRole: a role id and a secret id, under the `approle` auth method mounted at `mount`.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretString,
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
    /// `https://vault.example:8200`.
    pub address: String,
    pub login: VaultLogin,
    /// The KV v2 secrets engine's mount (`secret`).
    pub kv_mount: String,
    /// Each secret lives at `<resource_prefix>/<name>` under the mount.
    pub resource_prefix: String,
    /// How long one call to Vault may take.
    pub timeout: Duration,
}

/// Secrets in Vault's KV v2 engine.
pub struct VaultSource {
    settings: VaultSettings,
    /// The client with the current token; replaced, not mutated, by a new login, so a read
    /// never holds the lock across a call to Vault.
    client: RwLock<Arc<VaultClient>>,
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
fn status(error: &ClientError) -> Option<u16> {
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
        None => SecretError::Unavailable(format!("Vault could not be reached for secret {name}: {error}")),
    }
}

impl VaultSource {
    /// Logs in and returns a source using that login; fails if Vault refuses it or cannot be
    /// reached, so a misconfigured service stops at startup rather than at its first request.
    pub async fn connect(settings: VaultSettings) -> Result<Self, SecretError> {
        let client = login(&settings).await?;
        Ok(Self {
            settings,
            client: RwLock::new(Arc::new(client)),
        })
    }

    fn path(&self, name: &str) -> String {
        rampart_kernel::schema::secret_name(&self.settings.resource_prefix, name)
    }

    fn current(&self) -> Arc<VaultClient> {
        Arc::clone(&self.client.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Runs `call` with the current token; on 403, which Vault also answers for a token it has
    /// revoked or let expire, logs in once more and tries again. A 403 after that is the
    /// policy's.
    async fn with_login<T, F, Fut>(&self, name: &str, call: F) -> Result<T, SecretError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        match call(self.current()).await {
            Err(error) if status(&error) == Some(403) => {
                let fresh = Arc::new(login(&self.settings).await?);
                *self.client.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&fresh);
                call(fresh).await.map_err(|error| classify(name, &error))
            }
            answered => answered.map_err(|error| classify(name, &error)),
        }
    }

    async fn read_value(&self, name: &str, version: Option<u64>) -> Result<SecretString, SecretError> {
        let mount = self.settings.kv_mount.as_str();
        let path = self.path(name);
        let data: serde_json::Map<String, serde_json::Value> = self
            .with_login(name, |client| {
                let path = path.clone();
                async move {
                    match version {
                        Some(version) => vaultrs::kv2::read_version(&*client, mount, &path, version).await,
                        None => vaultrs::kv2::read(&*client, mount, &path).await,
                    }
                }
            })
            .await?;
        value_of(name, data)
    }
}

/// The `value` field of a secret's data; the other fields are not looked at, and nothing of the
/// data goes into an error.
fn value_of(name: &str, mut data: serde_json::Map<String, serde_json::Value>) -> Result<SecretString, SecretError> {
    let value = match data.remove("value") {
        Some(serde_json::Value::String(value)) => Ok(SecretString::from(value)),
        _ => Err(SecretError::Unavailable(format!(
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

/// A client holding a fresh token from `settings.login`.
async fn login(settings: &VaultSettings) -> Result<VaultClient, SecretError> {
    let refused = |error: ClientError| match error {
        ClientError::APIError { code, errors } if (400..500).contains(&code) => {
            SecretError::Denied(format!("Vault refused the login ({code}): {}", errors.join("; ")))
        }
        other => SecretError::Unavailable(format!("Vault could not be reached to log in: {other}")),
    };
    let client_with = |token: &str| {
        let built = VaultClientSettingsBuilder::default()
            .address(&settings.address)
            .token(token)
            .timeout(Some(settings.timeout))
            .build()
            .map_err(|e| SecretError::Unavailable(format!("Vault settings: {e}")))?;
        VaultClient::new(built).map_err(|e| SecretError::Unavailable(format!("Vault client: {e}")))
    };
    let mut client = client_with("")?;
    let token = match &settings.login {
        VaultLogin::Token(token) => return client_with(token.expose_secret()),
        VaultLogin::AppRole {
            mount,
            role_id,
            secret_id,
        } => vaultrs::auth::approle::login(&client, mount, role_id, secret_id.expose_secret())
            .await
            .map_err(refused)?,
        VaultLogin::Jwt {
            mount,
            role,
            token_file,
        } => {
            let jwt = zeroize::Zeroizing::new(std::fs::read_to_string(token_file).map_err(|e| {
                SecretError::Unavailable(format!("cannot read the JWT in {}: {e}", token_file.display()))
            })?);
            vaultrs::auth::oidc::login(&client, mount, jwt.trim(), Some(role.clone()))
                .await
                .map_err(refused)?
        }
    };
    client.set_token(&token.client_token);
    Ok(client)
}

#[async_trait::async_trait]
impl SecretSource for VaultSource {
    #[instrument(name = "secrets.get", skip(self))]
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.read_value(name, None).await
    }

    /// The latest version and the one before it, unless that one is deleted or destroyed.
    #[instrument(name = "secrets.get_with_previous", skip(self))]
    async fn get_with_previous(&self, name: &str) -> Result<Rotated, SecretError> {
        let mount = self.settings.kv_mount.as_str();
        let path = self.path(name);
        let metadata = self
            .with_login(name, |client| {
                let path = path.clone();
                async move { vaultrs::kv2::read_metadata(&*client, mount, &path).await }
            })
            .await?;
        let current = self.read_value(name, Some(metadata.current_version)).await?;
        let previous = match metadata.current_version.checked_sub(1).filter(|v| *v > 0) {
            Some(version) => match self.read_value(name, Some(version)).await {
                Ok(value) => Some(value),
                Err(SecretError::NotFound(_)) => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        Ok(Rotated { current, previous })
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
        .await
        .map(|_| ())
    }
}
