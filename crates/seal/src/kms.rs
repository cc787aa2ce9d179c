//! Sealing with KMS: `Encrypt` and `Decrypt` under the schema key `sealing`, with the context as
//! the encryption context.

use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use rampart_kernel::schema::kms_alias;
use secrecy::{ExposeSecret, SecretString};

use crate::{Context, MAX_PLAINTEXT_BYTES, SealError, Sealer};

/// The schema's KMS key for sealing (`schema/platform.json`).
pub const KEY_NAME: &str = "sealing";

#[derive(Debug, Clone)]
pub struct KmsSealer {
    client: Client,
    key_id: String,
}

impl KmsSealer {
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            key_id: kms_alias(prefix, KEY_NAME),
        }
    }
}

fn encryption_context(context: &Context<'_>) -> std::collections::HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[async_trait::async_trait]
impl Sealer for KmsSealer {
    async fn seal(&self, plaintext: &SecretString, context: &Context<'_>) -> Result<Vec<u8>, SealError> {
        let plaintext = plaintext.expose_secret().as_bytes();
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(SealError::TooLarge);
        }
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await
            .map_err(|e| SealError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        output
            .ciphertext_blob()
            .map(|blob| blob.as_ref().to_vec())
            .ok_or_else(|| SealError::Unavailable("KMS returned no ciphertext".into()))
    }

    async fn open(&self, sealed: &[u8], context: &Context<'_>) -> Result<SecretString, SealError> {
        let result = self
            .client
            .decrypt()
            // Naming the key makes KMS refuse a ciphertext made under any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed))
            .set_encryption_context(Some(encryption_context(context)))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                return Err(match error.as_service_error() {
                    Some(e) if e.is_invalid_ciphertext_exception() || e.is_incorrect_key_exception() => {
                        SealError::Invalid
                    }
                    _ => SealError::Unavailable(DisplayErrorContext(&error).to_string()),
                });
            }
        };
        let plaintext = output
            .plaintext()
            .ok_or_else(|| SealError::Unavailable("KMS returned no plaintext".into()))?;
        let text = std::str::from_utf8(plaintext.as_ref()).map_err(|_| SealError::Invalid)?;
        Ok(SecretString::from(text.to_owned()))
    }
}
