//! Key rotation: which keys sign, which are published, and where keys come from.
//!
//! A [`RingState`] lists keys with the time each starts signing and the time it stops being
//! published. Rotation adds a key that is published at once but signs only after verifiers
//! have had time to fetch it, and gives the key it replaces a retirement time after the last
//! token it signed has expired. A [`KeySource`] opens keys by reference and creates new ones.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Algorithm, KmsSigner, LocalKeySigner, Signer, SignerError};

/// One key of the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingEntry {
    /// What the [`KeySource`] opens: a key file name, or a KMS key id or alias.
    pub key_ref: String,
    /// Unix seconds from which this key signs (unless a later key has activated).
    pub activates_at: i64,
    /// Unix seconds from which this key is no longer published; `None` while it is current.
    pub retires_at: Option<i64>,
}

/// The signing keys and their schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RingState {
    pub keys: Vec<RingEntry>,
}

impl RingState {
    /// A ring of one key that has always been active.
    pub fn initial(key_ref: &str) -> Self {
        Self {
            keys: vec![RingEntry {
                key_ref: key_ref.to_string(),
                activates_at: 0,
                retires_at: None,
            }],
        }
    }

    /// The key that signs at `now`: the most recently activated one that is not retired.
    pub fn active(&self, now: i64) -> Option<&RingEntry> {
        self.published(now)
            .filter(|key| key.activates_at <= now)
            .max_by_key(|key| key.activates_at)
    }

    /// The keys the JWKS lists at `now`: every key not yet retired, including one that will
    /// start signing soon.
    pub fn published(&self, now: i64) -> impl Iterator<Item = &RingEntry> {
        self.keys
            .iter()
            .filter(move |key| key.retires_at.is_none_or(|at| at > now))
    }

    /// Adds `key_ref`, signing from `now + publish_lead_secs` (the longest a verifier may cache
    /// the JWKS), and retires every other key `verify_window_secs` (the longest token lifetime
    /// plus leeway) after that. Keys already retired are dropped.
    pub fn rotate(&mut self, key_ref: &str, now: i64, publish_lead_secs: i64, verify_window_secs: i64) {
        let activates_at = now + publish_lead_secs;
        let retires_at = activates_at + verify_window_secs;
        self.keys.retain(|key| key.retires_at.is_none_or(|at| at > now));
        for key in &mut self.keys {
            key.retires_at = Some(key.retires_at.map_or(retires_at, |at| at.min(retires_at)));
        }
        self.keys.push(RingEntry {
            key_ref: key_ref.to_string(),
            activates_at,
            retires_at: None,
        });
    }
}

/// Where signing keys live: opens them by reference and creates new ones.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The key used before any rotation.
    fn initial_ref(&self) -> &str;
    async fn open(&self, key_ref: &str) -> Result<Arc<dyn Signer>, SignerError>;
    /// Creates a new key and returns its reference.
    async fn create(&self) -> Result<String, SignerError>;
}

/// Key files under the local key directory (owner-only, as [`LocalKeySigner`] makes them).
#[derive(Debug, Clone)]
pub struct LocalKeys {
    dir: PathBuf,
    algorithm: Algorithm,
}

impl LocalKeys {
    pub fn new(dir: PathBuf, algorithm: Algorithm) -> Self {
        Self { dir, algorithm }
    }

    /// Key references are bare file names we generated; anything else (a path, `..`) is refused.
    fn check_ref(key_ref: &str) -> Result<(), SignerError> {
        let valid = key_ref.starts_with("signing-key")
            && key_ref.ends_with(".pk8")
            && key_ref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !key_ref.contains("..");
        if valid {
            Ok(())
        } else {
            Err(SignerError::InvalidKey(format!("{key_ref:?} is not a local key name")))
        }
    }
}

#[async_trait::async_trait]
impl KeySource for LocalKeys {
    fn initial_ref(&self) -> &str {
        crate::local::key_file(self.algorithm)
    }

    async fn open(&self, key_ref: &str) -> Result<Arc<dyn Signer>, SignerError> {
        Self::check_ref(key_ref)?;
        Ok(Arc::new(LocalKeySigner::load_or_create_file(
            &self.dir,
            key_ref,
            self.algorithm,
        )?))
    }

    async fn create(&self) -> Result<String, SignerError> {
        let mut suffix = [0u8; 6];
        aws_lc_rs::rand::fill(&mut suffix).map_err(|e| SignerError::Unavailable(e.to_string()))?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("signing-key-{}-{hex}.pk8", self.algorithm.name().to_ascii_lowercase());
        LocalKeySigner::load_or_create_file(&self.dir, &name, self.algorithm)?;
        Ok(name)
    }
}

/// Asymmetric keys in KMS; new ones get the key spec of the schema's `token-signing` key.
#[derive(Debug, Clone)]
pub struct KmsKeys {
    client: aws_sdk_kms::Client,
    initial_alias: String,
    description: String,
}

impl KmsKeys {
    pub fn new(client: aws_sdk_kms::Client, resource_prefix: &str) -> Self {
        Self {
            client,
            initial_alias: rampart_kernel::schema::kms_alias(resource_prefix, "token-signing"),
            description: format!("rampart {resource_prefix}: rotated access-token signing key"),
        }
    }
}

#[async_trait::async_trait]
impl KeySource for KmsKeys {
    fn initial_ref(&self) -> &str {
        &self.initial_alias
    }

    async fn open(&self, key_ref: &str) -> Result<Arc<dyn Signer>, SignerError> {
        Ok(Arc::new(KmsSigner::connect(self.client.clone(), key_ref).await?))
    }

    async fn create(&self) -> Result<String, SignerError> {
        crate::kms::create_signing_key(&self.client, &self.description).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_key_is_published_before_it_signs_and_the_old_one_outlives_its_tokens() {
        let mut ring = RingState::initial("a");
        ring.rotate("b", 1000, 360, 990);
        let refs = |ring: &RingState, at: i64| ring.published(at).map(|k| k.key_ref.clone()).collect::<Vec<_>>();
        let active = |ring: &RingState, at: i64| ring.active(at).map(|k| k.key_ref.clone());
        // Published at once, signing only after the JWKS cache lead.
        assert_eq!(refs(&ring, 1000), ["a", "b"]);
        assert_eq!(active(&ring, 1359).as_deref(), Some("a"));
        assert_eq!(active(&ring, 1360).as_deref(), Some("b"));
        // The old key stays published until the last token it signed has expired.
        assert_eq!(refs(&ring, 1360 + 989), ["a", "b"]);
        assert_eq!(refs(&ring, 1360 + 990), ["b"]);
        // Rotating again drops retired keys.
        ring.rotate("c", 5000, 360, 990);
        assert_eq!(ring.keys.len(), 2);
        assert_eq!(active(&ring, 5000).as_deref(), Some("b"));
        assert_eq!(active(&ring, 5360).as_deref(), Some("c"));
    }

    #[test]
    fn two_quick_rotations_never_leave_nothing_to_sign_with() {
        let mut ring = RingState::initial("a");
        ring.rotate("b", 1000, 360, 990);
        ring.rotate("c", 1010, 360, 990);
        for at in (1000..4000).step_by(10) {
            assert!(ring.active(at).is_some(), "no active key at {at}");
        }
        assert_eq!(ring.active(1370).map(|k| k.key_ref.as_str()), Some("c"));
    }

    #[test]
    fn local_key_references_cannot_leave_the_key_directory() {
        for bad in [
            "../signing-key.pk8",
            "signing-key/../../x.pk8",
            "/etc/passwd",
            "other.pk8",
            "signing-key.pem",
        ] {
            assert!(LocalKeys::check_ref(bad).is_err(), "{bad}");
        }
        assert!(LocalKeys::check_ref("signing-key-rs256-0a1b2c.pk8").is_ok());
    }
}
