//! Sealing on the embedded platform: AES-256-GCM under a random key kept in the local secrets
//! file, with a random 96-bit nonce per value and the context as associated data.
//!
//! A sealed value is `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_secrets::{ExposeSecret, SecretError, SecretSource};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::{Context, MAX_PLAINTEXT_BYTES, SealError, Sealer};

/// The name of the key in the local secrets file.
pub const KEY_SECRET: &str = "seal/local-key";
const FORMAT_VERSION: u8 = 1;

pub struct LocalSealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for LocalSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSealer").finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> SealError {
    SealError::Unavailable(error.to_string())
}

impl LocalSealer {
    /// Uses the key [`KEY_SECRET`] in `secrets` (the local secrets file), which generates and
    /// keeps one first if there is none.
    pub async fn open(secrets: &dyn SecretSource) -> Result<Self, SealError> {
        let generate = || {
            let mut key = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(key.as_mut_slice())
                .map_err(|_| SecretError::Unavailable("no randomness for a sealing key".into()))?;
            Ok(SecretString::from(STANDARD.encode(key.as_slice())))
        };
        let encoded = secrets
            .get_or_create(KEY_SECRET, &generate)
            .await
            .map_err(unavailable)?;
        let key = Zeroizing::new(
            STANDARD
                .decode(encoded.expose_secret())
                .map_err(|_| unavailable(format!("{KEY_SECRET} is not base64")))?,
        );
        Self::from_key(&key)
    }

    /// A sealer under a 32-byte AES-256 key.
    pub fn from_key(key: &[u8]) -> Result<Self, SealError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, key)
            .map_err(|_| unavailable(format!("{KEY_SECRET} must be 32 bytes")))?;
        Ok(Self { key })
    }
}

/// The context as associated data: `key=value` lines in the order given. Keys and values may
/// not contain `=` or a newline, so two different contexts never share an encoding.
fn associated_data(context: &Context<'_>) -> Result<Vec<u8>, SealError> {
    let mut aad = Vec::new();
    for (key, value) in context {
        if [key, value].iter().any(|s| s.contains(['=', '\n'])) {
            return Err(unavailable("a sealing context may not contain '=' or a newline"));
        }
        aad.extend_from_slice(format!("{key}={value}\n").as_bytes());
    }
    Ok(aad)
}

#[async_trait::async_trait]
impl Sealer for LocalSealer {
    async fn seal(&self, plaintext: &SecretString, context: &Context<'_>) -> Result<Vec<u8>, SealError> {
        let plaintext = plaintext.expose_secret().as_bytes();
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(SealError::TooLarge);
        }
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(associated_data(context)?), &mut in_out)
            .map_err(|_| unavailable("AES-GCM sealing failed"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    async fn open(&self, sealed: &[u8], context: &Context<'_>) -> Result<SecretString, SealError> {
        let Some((&FORMAT_VERSION, rest)) = sealed.split_first() else {
            return Err(SealError::Invalid);
        };
        if rest.len() < NONCE_LEN {
            return Err(SealError::Invalid);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Invalid)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(associated_data(context)?), &mut in_out)
            .map_err(|_| SealError::Invalid)?;
        let text = std::str::from_utf8(plaintext).map_err(|_| SealError::Invalid)?;
        Ok(SecretString::from(text.to_owned()))
    }
}
