//! Small secrets kept at rest, sealed: the [`Sealer`] port encrypts a value (at most 4 KiB) bound
//! to a context, with a key that never leaves its keeper. [`KmsSealer`] calls KMS `Encrypt` and
//! `Decrypt` under the schema key `sealing`, passing the context as the encryption context (so
//! CloudTrail records which item each decryption was for, and a key policy can condition on it).
//! [`LocalSealer`] uses AES-256-GCM with a key in the local secrets file, the context as
//! associated data.
//!
//! Opening with a different context, another key, or altered bytes fails as
//! [`SealError::Invalid`]: a sealed value copied onto another record is useless there.

pub mod kms;
pub mod local;

pub use kms::KmsSealer;
pub use local::LocalSealer;
use secrecy::SecretString;

/// What a sealed value is bound to, e.g. `[("purpose", "provider-credential"), ("session", id)]`.
pub type Context<'a> = [(&'a str, &'a str)];

/// The largest value [`Sealer::seal`] accepts: KMS `Encrypt`'s plaintext limit.
pub const MAX_PLAINTEXT_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Altered, sealed under another key, or opened with another context.
    #[error("the sealed value is invalid for this context")]
    Invalid,
    #[error("the value is larger than {MAX_PLAINTEXT_BYTES} bytes")]
    TooLarge,
    #[error("the sealing key is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Sealer: Send + Sync + std::fmt::Debug {
    async fn seal(&self, plaintext: &SecretString, context: &Context<'_>) -> Result<Vec<u8>, SealError>;
    async fn open(&self, sealed: &[u8], context: &Context<'_>) -> Result<SecretString, SealError>;
}

/// The sealer the settings select: KMS under `alias/<prefix>-sealing`, or a key kept in
/// `secrets`, the local secrets file (created on first use).
pub async fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
    secrets: &dyn rampart_secrets::SecretSource,
) -> Result<std::sync::Arc<dyn Sealer>, rampart_kernel::ConfigError> {
    match aws {
        Some(config) => Ok(std::sync::Arc::new(KmsSealer::new(
            aws_sdk_kms::Client::new(config),
            &settings.resource_prefix,
        ))),
        None => {
            let sealer = LocalSealer::open(secrets)
                .await
                .map_err(|e| rampart_kernel::ConfigError::new("data_dir", e.to_string()))?;
            Ok(std::sync::Arc::new(sealer))
        }
    }
}
