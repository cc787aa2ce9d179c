//! Data keys on the embedded platform: random 256-bit keys, wrapped with AES-256-GCM under a
//! key-encryption key kept in the local secrets file (0600), the tenant as associated data.
//!
//! A wrapped key is `0x01 ‖ nonce (12) ‖ wrapped key (32) ‖ tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_secrets::{ExposeSecret, SecretError, SecretSource};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{DataKey, EnvelopeError, KeyWrapper};

/// The name of the key-encryption key in the local secrets file.
pub const KEK_SECRET: &str = "envelope/local-kek";
const FORMAT_VERSION: u8 = 1;

pub struct LocalKeyWrapper {
    kek: RandomizedNonceKey,
}

impl std::fmt::Debug for LocalKeyWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyWrapper").finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError::Unavailable(error.to_string())
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(key.as_mut_slice()).map_err(|_| unavailable("no randomness for a key"))?;
    Ok(key)
}

impl LocalKeyWrapper {
    /// Uses the key-encryption key [`KEK_SECRET`] in `secrets`, which generates and keeps one
    /// first if there is none.
    pub async fn open(secrets: &dyn SecretSource) -> Result<Self, EnvelopeError> {
        let generate = || {
            let key = random_key().map_err(|e| SecretError::Unavailable(e.to_string()))?;
            Ok(SecretString::from(STANDARD.encode(key.as_slice())))
        };
        let encoded = secrets
            .get_or_create(KEK_SECRET, &generate)
            .await
            .map_err(unavailable)?;
        let kek = Zeroizing::new(
            STANDARD
                .decode(encoded.expose_secret())
                .map_err(|_| unavailable(format!("{KEK_SECRET} is not base64")))?,
        );
        let kek = RandomizedNonceKey::new(&AES_256_GCM, &kek)
            .map_err(|_| unavailable(format!("{KEK_SECRET} must be 32 bytes")))?;
        Ok(Self { kek })
    }
}

#[async_trait::async_trait]
impl KeyWrapper for LocalKeyWrapper {
    async fn generate(&self, tenant: &str) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
        let key = random_key()?;
        let mut in_out = key.to_vec();
        let nonce = self
            .kek
            .seal_in_place_append_tag(Aad::from(tenant.as_bytes()), &mut in_out)
            .map_err(|_| unavailable("AES-256-GCM wrapping failed"))?;
        let mut wrapped = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        wrapped.push(FORMAT_VERSION);
        wrapped.extend_from_slice(nonce.as_ref());
        wrapped.extend_from_slice(&in_out);
        Ok((DataKey::from_bytes(*key), wrapped))
    }

    async fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        let Some((&FORMAT_VERSION, rest)) = wrapped.split_first() else {
            return Err(EnvelopeError::Invalid);
        };
        if rest.len() < NONCE_LEN {
            return Err(EnvelopeError::Invalid);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Invalid)?;
        let mut in_out = Zeroizing::new(sealed.to_vec());
        let key = self
            .kek
            .open_in_place(nonce, Aad::from(tenant.as_bytes()), &mut in_out)
            .map_err(|_| EnvelopeError::Invalid)?;
        DataKey::from_slice(key)
    }
}
