//! The AWS adapter: an asymmetric KMS key signs; its private half never leaves KMS.

use aws_lc_rs::digest::{SHA256, digest};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use rampart_kernel::schema::{kms_alias, schema};
use tracing::instrument;

use crate::jwk::ecdsa_der_to_jose;
use crate::{Algorithm, Jwk, Signer, SignerError};

#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
    key_id: String,
    jwk: Jwk,
}

fn kms_algorithm(algorithm: Algorithm) -> SigningAlgorithmSpec {
    match algorithm {
        Algorithm::RS256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        Algorithm::ES256 => SigningAlgorithmSpec::EcdsaSha256,
    }
}

fn unavailable(error: impl std::error::Error) -> SignerError {
    SignerError::Unavailable(DisplayErrorContext(&error).to_string())
}

impl KmsSigner {
    /// Reads the public key of `key_id` (an id, ARN or `alias/...`). The key's type decides the
    /// algorithm: RSA keys sign RS256, ECC_NIST_P256 keys ES256.
    #[instrument(name = "tokens.kms_connect", skip(client))]
    pub async fn connect(client: Client, key_id: &str) -> Result<Self, SignerError> {
        let output = client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(unavailable)?;
        let not_signing = || SignerError::InvalidKey(format!("{key_id} is not an RSA or P-256 SIGN_VERIFY key"));
        if output.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(not_signing());
        }
        let der = output
            .public_key()
            .ok_or_else(|| SignerError::InvalidKey("KMS returned no public key".into()))?;
        let jwk = Jwk::from_spki_der(der.as_ref())?;
        if !output.signing_algorithms().contains(&kms_algorithm(jwk.alg)) {
            return Err(not_signing());
        }
        // Sign with the resolved key id, so a moved alias cannot swap keys under a published kid.
        let key_id = output.key_id().unwrap_or(key_id).to_owned();
        Ok(Self { client, key_id, jwk })
    }
}

#[async_trait::async_trait]
impl Signer for KmsSigner {
    fn public_key(&self) -> &Jwk {
        &self.jwk
    }

    #[instrument(name = "tokens.kms_sign", skip_all, fields(kid = %self.jwk.kid))]
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        // Only the digest goes to KMS: no size limit, and no claims leave the process.
        let digest = digest(&SHA256, message);
        let output = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(digest.as_ref()))
            .message_type(MessageType::Digest)
            .signing_algorithm(kms_algorithm(self.jwk.alg))
            .send()
            .await
            .map_err(unavailable)?;
        let signature = output
            .signature
            .map(Blob::into_inner)
            .ok_or_else(|| SignerError::Unavailable("KMS returned no signature".into()))?;
        match self.jwk.alg {
            Algorithm::RS256 => Ok(signature),
            // KMS returns ECDSA signatures in ASN.1 DER; JWS wants fixed-width r || s.
            Algorithm::ES256 => Ok(ecdsa_der_to_jose(&signature)?.to_vec()),
        }
    }
}

/// Creates a new key with the schema's `token-signing` spec and returns its id.
pub async fn create_signing_key(client: &Client, description: &str) -> Result<String, SignerError> {
    let definition = schema()
        .kms_keys
        .get("token-signing")
        .ok_or_else(|| SignerError::InvalidKey("the schema defines no token-signing key".into()))?;
    create_key(client, definition, description).await
}

async fn create_key(
    client: &Client,
    definition: &rampart_kernel::schema::KmsKeyDef,
    description: &str,
) -> Result<String, SignerError> {
    let created = client
        .create_key()
        .key_spec(KeySpec::from(definition.key_spec.as_str()))
        .key_usage(KeyUsageType::from(definition.key_usage.as_str()))
        .description(description)
        .send()
        .await
        .map_err(unavailable)?;
    created
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| SignerError::Unavailable("KMS returned no key id".into()))
}

/// Creates each KMS key of the schema that has no alias yet, with alias
/// `alias/<prefix>-<name>`. Returns `(alias, key id)` pairs.
pub async fn provision_keys(client: &Client, prefix: &str) -> Result<Vec<(String, String)>, SignerError> {
    let mut keys = Vec::new();
    for (name, definition) in &schema().kms_keys {
        let alias = kms_alias(prefix, name);
        let existing = client.describe_key().key_id(&alias).send().await;
        let key_id = match existing {
            Ok(output) => output.key_metadata().map(|m| m.key_id().to_owned()).unwrap_or_default(),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {
                let key_id =
                    create_key(client, definition, &format!("rampart {prefix}: {}", definition.purpose)).await?;
                client
                    .create_alias()
                    .alias_name(&alias)
                    .target_key_id(&key_id)
                    .send()
                    .await
                    .map_err(unavailable)?;
                // As Terraform's keys module does: KMS rotates symmetric keys only.
                if definition.key_spec == "SYMMETRIC_DEFAULT" {
                    client
                        .enable_key_rotation()
                        .key_id(&key_id)
                        .send()
                        .await
                        .map_err(unavailable)?;
                }
                key_id
            }
            Err(error) => return Err(unavailable(error)),
        };
        keys.push((alias, key_id));
    }
    Ok(keys)
}
