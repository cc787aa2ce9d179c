//! Signing keys for Rampart access tokens.
//!
//! The [`Signer`] port signs JWS signing input with a private key that the caller never sees:
//! in KMS ([`KmsSigner`]: the key never leaves KMS, we send the SHA-256 digest), in Vault's
//! Transit engine ([`TransitSigner`], likewise, one signer per key version) or in a local key
//! file ([`LocalKeySigner`], owner-only permissions, for the embedded platform). Each key is
//! published as a [`Jwk`] whose `kid` is its RFC 7638 thumbprint, so it is stable for the life of
//! the key and identical wherever it is computed.

pub mod bearer;
pub mod jwk;
pub mod jwt;
pub mod kms;
pub mod local;
pub mod ring;
pub mod transit;

pub use jwk::{Jwk, verify_signature};
pub use kms::KmsSigner;
pub use local::LocalKeySigner;
pub use ring::{KeySource, KmsKeys, LocalKeys, RingEntry, RingState};
pub use transit::{TransitKeys, TransitSigner};

/// JWS algorithms Rampart signs with (the `tokens.algorithm` setting).
pub use rampart_kernel::config::SigningAlgorithm as Algorithm;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the signing key is unavailable: {0}")]
    Unavailable(String),
    #[error("the signing key is unusable: {0}")]
    InvalidKey(String),
    /// The key store refused this service what it asked (a Vault policy): a configuration
    /// error that waiting does not mend.
    #[error("the key store refused: {0}")]
    Denied(String),
}

/// Signs with a private key it does not reveal.
#[async_trait::async_trait]
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The public half, as published in the JWKS.
    fn public_key(&self) -> &Jwk;
    /// The JWS signature of `message` under [`Jwk::alg`].
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// Creates the schema's KMS keys and aliases under `prefix`, or finds them: what
/// `rampart bootstrap` runs. Returns each alias with its key id.
pub async fn provision(aws: &aws_types::SdkConfig, prefix: &str) -> Result<Vec<(String, String)>, SignerError> {
    kms::provision_keys(&aws_sdk_kms::Client::new(aws), prefix).await
}

/// The key source the settings select: the versions of a Transit key when `tokens.signer =
/// "transit"` (logged in to Vault as `secrets.vault` says: a refused login stops start-up), else
/// key files under `data_dir/keys`, or KMS keys (the first being
/// `alias/<resource_prefix>-token-signing`).
pub async fn key_source(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<std::sync::Arc<dyn KeySource>, rampart_kernel::ConfigError> {
    if settings.tokens.signer == rampart_kernel::config::TokenSigner::Transit {
        let transit = &settings.tokens.transit;
        let vault = rampart_secrets::connect_vault(settings).await?;
        return Ok(std::sync::Arc::new(TransitKeys::new(
            vault,
            &transit.mount,
            &transit.key,
        )));
    }
    match aws {
        Some(config) => Ok(std::sync::Arc::new(KmsKeys::new(
            aws_sdk_kms::Client::new(config),
            &settings.resource_prefix,
        ))),
        None => {
            let dir = settings.data_file("keys")?;
            Ok(std::sync::Arc::new(LocalKeys::new(dir, settings.tokens.algorithm)))
        }
    }
}
