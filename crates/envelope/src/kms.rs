//! Data keys from KMS: `GenerateDataKey` (AES-256) under the schema key `data`, unwrapped with
//! `Decrypt`, the tenant as encryption context both times, so a wrapped key only opens for its
//! tenant and CloudTrail records which tenant each unwrap was for.

use std::collections::HashMap;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use rampart_kernel::schema::kms_alias;
use zeroize::Zeroizing;

use crate::{DataKey, EnvelopeError, KeyWrapper};

/// The schema's KMS key that wraps tenant data keys (`schema/platform.json`).
pub const KEY_NAME: &str = "data";

#[derive(Debug, Clone)]
pub struct KmsKeyWrapper {
    client: Client,
    key_id: String,
}

impl KmsKeyWrapper {
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            key_id: kms_alias(prefix, KEY_NAME),
        }
    }
}

fn encryption_context(tenant: &str) -> HashMap<String, String> {
    HashMap::from([("tenant".to_owned(), tenant.to_owned())])
}

fn unavailable(error: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError::Unavailable(error.to_string())
}

#[async_trait::async_trait]
impl KeyWrapper for KmsKeyWrapper {
    #[tracing::instrument(name = "kms.generate_data_key", skip_all)]
    async fn generate(&self, tenant: &str) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
        let mut output = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(encryption_context(tenant)))
            .send()
            .await
            .map_err(|e| unavailable(DisplayErrorContext(&e)))?;
        // Taken out of the response, so the plaintext is zeroized when dropped.
        let plaintext = Zeroizing::new(
            output
                .plaintext
                .take()
                .ok_or_else(|| unavailable("KMS returned no data key"))?
                .into_inner(),
        );
        let wrapped = output
            .ciphertext_blob()
            .ok_or_else(|| unavailable("KMS returned no wrapped data key"))?;
        Ok((DataKey::from_slice(&plaintext)?, wrapped.as_ref().to_vec()))
    }

    #[tracing::instrument(name = "kms.decrypt", skip_all)]
    async fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        let result = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse a ciphertext made under any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(encryption_context(tenant)))
            .send()
            .await;
        let mut output = result.map_err(|error| match error.as_service_error() {
            Some(e) if e.is_invalid_ciphertext_exception() || e.is_incorrect_key_exception() => EnvelopeError::Invalid,
            _ => unavailable(DisplayErrorContext(&error)),
        })?;
        let plaintext = Zeroizing::new(
            output
                .plaintext
                .take()
                .ok_or_else(|| unavailable("KMS returned no plaintext"))?
                .into_inner(),
        );
        DataKey::from_slice(&plaintext)
    }
}
