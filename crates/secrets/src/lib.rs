//! Secrets by name: the [`SecretSource`] port, with Secrets Manager and Vault adapters and a
//! local owner-only file for the embedded platform. Values are [`SecretString`]s: redacted in `Debug`,
//! zeroized on drop, and never logged.

pub mod aws;
pub mod local;
mod report;
pub mod vault;

pub use aws::SecretsManagerSource;
pub use local::LocalSecretsFile;
pub use report::{SecretsProbe, register_metrics};
pub use secrecy::{ExposeSecret, SecretString};
pub use vault::{Credential, VaultLogin, VaultSettings, VaultSource};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} does not exist")]
    NotFound(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// The store refused this service's identity or what it asked for: a configuration error
    /// (a policy, a role, a revoked credential) that waiting does not mend.
    #[error("secret store refused access: {0}")]
    Denied(String),
    /// A setting, or what the store answered, is not what it must be (a secret without its
    /// value field): not an outage, so no last good value stands in for it.
    #[error("invalid secret store setting or answer: {0}")]
    Invalid(String),
}

/// A secret's current value and, if the source keeps it, the value it replaced: while a
/// rotation settles, what was made with either (a MAC, a cursor) must still be accepted.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

/// What a source says of itself for `/readyz` and the metrics: a source with no credential
/// of its own to keep alive and no cache says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Until the credential the source reads with (a Vault token) runs out; `None` if it has
    /// none or it never does.
    pub credential_expires_in: Option<std::time::Duration>,
    pub logins: u64,
    pub renewals: u64,
    /// Each secret served stale because its store could not be reached, with how long it may
    /// still be served.
    pub stale: Vec<(String, std::time::Duration)>,
}

/// Reads secrets by their logical name (e.g. `auth/cognito-client-secret`).
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError>;

    /// The secret `name`, made with `generate` and kept first if this source keeps its own
    /// secrets and has none by that name (the local file: a fresh machine's keys). A source
    /// whose secrets another system provisions (Secrets Manager) never creates one: there a
    /// missing secret is `NotFound`, as from [`SecretSource::get`].
    async fn get_or_create(
        &self,
        name: &str,
        generate: &(dyn Fn() -> Result<SecretString, SecretError> + Sync),
    ) -> Result<SecretString, SecretError> {
        let _ = generate;
        self.get(name).await
    }

    /// The current value and the previous one, where the source keeps versions; a source that
    /// keeps none answers with no previous value.
    async fn get_with_previous(&self, name: &str) -> Result<Rotated, SecretError> {
        Ok(Rotated {
            current: self.get(name).await?,
            previous: None,
        })
    }

    /// What `/readyz` and the metrics say of this source.
    fn status(&self) -> SourceStatus {
        SourceStatus::default()
    }
}

/// A new value for a secret Rampart makes itself (`"generated": true` in the schema): 48 random
/// bytes as base64, 64 characters.
pub fn generate() -> Result<SecretString, SecretError> {
    use base64::Engine as _;
    let mut bytes = zeroize::Zeroizing::new([0u8; 48]);
    aws_lc_rs::rand::fill(bytes.as_mut_slice())
        .map_err(|_| SecretError::Unavailable("the random source failed".into()))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
    ))
}

/// Creates in Secrets Manager, under `prefix`, each secret of the schema Rampart generates that
/// does not exist yet, keeping those that do: what `rampart bootstrap` runs. Returns their names.
pub async fn provision(aws: &aws_types::SdkConfig, prefix: &str) -> Result<Vec<String>, SecretError> {
    let source = SecretsManagerSource::from_sdk_config(aws, prefix);
    let mut made = Vec::new();
    for (name, _) in rampart_kernel::schema::schema()
        .secrets
        .iter()
        .filter(|(_, secret)| secret.generated)
    {
        match source.get(name).await {
            Ok(_) => {}
            Err(SecretError::NotFound(_)) => source.put(name, &generate()?).await?,
            Err(error) => return Err(error),
        }
        made.push(rampart_kernel::schema::secret_name(prefix, name));
    }
    Ok(made)
}

/// Stores secrets; used by `rampart bootstrap`, not by request handlers.
#[async_trait::async_trait]
pub trait SecretSink: Send + Sync {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
}

/// Vault as `secrets.vault` describes it: logged in, its token kept alive in the background
/// (until the source is dropped). A Vault that refuses the login or cannot be reached is a
/// configuration error naming `secrets.vault`.
pub async fn connect_vault(
    settings: &rampart_kernel::Settings,
) -> Result<std::sync::Arc<VaultSource>, rampart_kernel::ConfigError> {
    let vault = std::sync::Arc::new(
        VaultSource::connect(vault::settings_from(settings)?)
            .await
            .map_err(|e| rampart_kernel::ConfigError::new("secrets.vault", e.to_string()))?,
    );
    // The task ends when the source is dropped.
    drop(vault.keep_token_alive());
    Ok(vault)
}

/// The secret source the settings select: Vault (logged in, its token kept alive in the
/// background), else `data_dir/secrets.json` or Secrets Manager. A Vault that refuses the
/// login or cannot be reached stops start-up, naming the setting.
pub async fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<std::sync::Arc<dyn SecretSource>, rampart_kernel::ConfigError> {
    use rampart_kernel::config::SecretsSource;
    if settings.secrets.source == SecretsSource::Vault {
        return Ok(connect_vault(settings).await?);
    }
    match aws {
        Some(config) => Ok(std::sync::Arc::new(SecretsManagerSource::from_sdk_config(
            config,
            &settings.resource_prefix,
        ))),
        None => {
            let path = settings.data_file("secrets.json")?;
            let file = LocalSecretsFile::open(&path)
                .map_err(|e| rampart_kernel::ConfigError::new("data_dir", e.to_string()))?;
            Ok(std::sync::Arc::new(file))
        }
    }
}
