//! Secrets by name: the [`SecretSource`] port, with a Secrets Manager adapter and a local
//! owner-only file for the embedded platform. Values are [`SecretString`]s: redacted in `Debug`,
//! zeroized on drop, and never logged.

pub mod aws;
pub mod local;

pub use aws::SecretsManagerSource;
pub use local::LocalSecretsFile;
pub use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} does not exist")]
    NotFound(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
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
}

/// Stores secrets; used by `rampart bootstrap`, not by request handlers.
#[async_trait::async_trait]
pub trait SecretSink: Send + Sync {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
}

/// The secret source the settings select: `data_dir/secrets.json`, or Secrets Manager.
pub fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<std::sync::Arc<dyn SecretSource>, rampart_kernel::ConfigError> {
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
