//! Per-tenant envelope encryption, for core's records.
//!
//! Each tenant has its own 256-bit data keys, made by a [`KeyWrapper`]: KMS `GenerateDataKey`
//! under the schema key `data` with the tenant as encryption context ([`KmsKeyWrapper`]), or a
//! local key-encryption key kept in the secrets file ([`LocalKeyWrapper`]). A data key is stored
//! only wrapped, one item per key version in the core table (`pk = tenantkey#<tenant>`,
//! `sk = v<version>`).
//!
//! [`TenantKeys::seal`] encrypts under the tenant's newest version with AES-256-GCM. The
//! associated data binds the ciphertext to the tenant, the key version and the caller's record
//! context (project, document, document version), so a ciphertext moved to another record, another
//! tenant or another version of the record does not open. Plaintext keys are cached
//! (`core.data_key_cache_secs`, `core.data_key_cache_entries`) and zeroized once evicted, and
//! loads are single-flight per tenant: the key keeper sees one call per tenant and key version
//! per cache lifetime per process. [`TenantKeys::rotate`] adds a version that new writes use;
//! older versions still open. [`TenantKeys::shred`] deletes every wrapped key of the tenant and
//! drops the keys this process holds: from then on none of the tenant's ciphertexts opens
//! (another process that held a key keeps it at most one cache lifetime).
//!
//! A sealed value is `0x01 ‖ key version (4, big-endian) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

mod cache;
pub mod kms;
pub mod local;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
pub use kms::KmsKeyWrapper;
pub use local::LocalKeyWrapper;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use zeroize::Zeroizing;

use crate::cache::KeyCache;

const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// More key versions than any tenant rotates to; bounds the read of a tenant's versions.
const MAX_VERSIONS: usize = 10_000;

/// What a sealed value is bound to besides its tenant and key version, e.g.
/// `[("project", p), ("document", d), ("version", "3"), ("field", "body")]`.
pub type Context<'a> = [(&'a str, &'a str)];

/// A plaintext data key: never printed, zeroized when dropped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key of exactly 32 bytes, as a key keeper returned it.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| EnvelopeError::Unavailable("a data key must be 32 bytes".into()))?;
        Ok(Self::from_bytes(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Altered, moved to another record, tenant or version, or sealed under another key.
    #[error("the sealed value does not open here")]
    Invalid,
    /// The tenant has no data key: never created, or shredded.
    #[error("the tenant has no data key")]
    NoKey,
    #[error("the key keeper is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes and unwraps data keys; the key that wraps them never leaves its keeper.
#[async_trait::async_trait]
pub trait KeyWrapper: Send + Sync + std::fmt::Debug {
    /// A new data key for `tenant`, in plaintext and wrapped (bound to `tenant`).
    async fn generate(&self, tenant: &str) -> Result<(DataKey, Vec<u8>), EnvelopeError>;
    /// The plaintext of a data key `tenant`'s [`KeyWrapper::generate`] wrapped.
    async fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, EnvelopeError>;
}

/// The tenants' data keys and what is sealed with them.
#[derive(Debug)]
pub struct TenantKeys {
    store: Arc<dyn ItemStore>,
    wrapper: Arc<dyn KeyWrapper>,
    cache: KeyCache,
    /// One load at a time per tenant, so concurrent misses make one call to the key keeper.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn partition(tenant: &str) -> String {
    format!("tenantkey#{tenant}")
}

fn version_key(tenant: &str, version: u32) -> Key {
    Key::new(partition(tenant), format!("v{version:010}"))
}

impl TenantKeys {
    /// Keys kept in `store`, made by `wrapper`; plaintext keys cached for `lifetime`, at most
    /// `max_cached` of them.
    pub fn new(store: Arc<dyn ItemStore>, wrapper: Arc<dyn KeyWrapper>, lifetime: Duration, max_cached: usize) -> Self {
        Self {
            store,
            wrapper,
            cache: KeyCache::new(lifetime, max_cached),
            loading: Mutex::default(),
        }
    }

    /// Gives a new tenant its first data key (version 1). A tenant that already has one keeps it.
    pub async fn create(&self, tenant: &str) -> Result<u32, EnvelopeError> {
        match self.current_version(tenant).await {
            Err(EnvelopeError::NoKey) => {}
            existing => return existing,
        }
        match self.add_version(tenant, 1).await {
            Err(EnvelopeError::Store(StoreError::ConditionFailed)) => self.current_version(tenant).await,
            other => other,
        }
    }

    /// Adds a data key version that new seals use; older versions still open. Returns the
    /// version now newest (another process's, if it rotated at the same moment).
    pub async fn rotate(&self, tenant: &str) -> Result<u32, EnvelopeError> {
        let next = self
            .stored_versions(tenant)
            .await?
            .last()
            .copied()
            .ok_or(EnvelopeError::NoKey)?
            + 1;
        match self.add_version(tenant, next).await {
            Err(EnvelopeError::Store(StoreError::ConditionFailed)) => {
                let newest = self.stored_versions(tenant).await?.last().copied();
                let newest = newest.ok_or(EnvelopeError::NoKey)?;
                self.cache.keep_current(tenant, newest);
                Ok(newest)
            }
            other => other,
        }
    }

    /// Deletes every wrapped key of `tenant` and the keys this process holds for it; returns how
    /// many versions were destroyed. Nothing sealed for the tenant opens afterwards.
    pub async fn shred(&self, tenant: &str) -> Result<usize, EnvelopeError> {
        // Holding the tenant's load turn: a load already under way finishes first (its key is
        // then forgotten below), and none starts until the keys are gone.
        let gate = self.gate(tenant);
        let destroyed = {
            let _turn = gate.lock().await;
            self.destroy(tenant).await
        };
        self.release(tenant, &gate);
        destroyed
    }

    async fn destroy(&self, tenant: &str) -> Result<usize, EnvelopeError> {
        self.cache.forget(tenant);
        let mut destroyed = 0;
        // Until none is left: a rotation racing the shred may have added one.
        loop {
            let versions = self.stored_versions(tenant).await?;
            if versions.is_empty() {
                break;
            }
            for version in &versions {
                let key = version_key(tenant, *version);
                self.store.delete(Table::Core, &key, None).await?;
            }
            destroyed += versions.len();
        }
        self.cache.forget(tenant);
        Ok(destroyed)
    }

    /// `plaintext` sealed under the tenant's newest key, bound to the tenant and `context`.
    pub async fn seal(&self, tenant: &str, context: &Context<'_>, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let version = self.current_version(tenant).await?;
        let key = self.key(tenant, version).await?;
        let aead = RandomizedNonceKey::new(&AES_256_GCM, key.expose())
            .map_err(|_| EnvelopeError::Unavailable("AES-256-GCM refused the key".into()))?;
        let mut in_out = plaintext.to_vec();
        let nonce = aead
            .seal_in_place_append_tag(Aad::from(associated_data(tenant, version, context)), &mut in_out)
            .map_err(|_| EnvelopeError::Unavailable("AES-256-GCM sealing failed".into()))?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + in_out.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&version.to_be_bytes());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// The plaintext of a value [`TenantKeys::seal`] sealed for `tenant` with `context`.
    pub async fn open(
        &self,
        tenant: &str,
        context: &Context<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if sealed.len() < HEADER_LEN || sealed[0] != FORMAT_VERSION {
            return Err(EnvelopeError::Invalid);
        }
        let version = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let nonce = Nonce::try_assume_unique_for_key(&sealed[5..HEADER_LEN]).map_err(|_| EnvelopeError::Invalid)?;
        let key = self.key(tenant, version).await?;
        let aead = RandomizedNonceKey::new(&AES_256_GCM, key.expose())
            .map_err(|_| EnvelopeError::Unavailable("AES-256-GCM refused the key".into()))?;
        let mut in_out = Zeroizing::new(sealed[HEADER_LEN..].to_vec());
        let length = aead
            .open_in_place(nonce, Aad::from(associated_data(tenant, version, context)), &mut in_out)
            .map_err(|_| EnvelopeError::Invalid)?
            .len();
        in_out.truncate(length);
        Ok(in_out)
    }

    /// The tenant's newest key version.
    pub async fn current_version(&self, tenant: &str) -> Result<u32, EnvelopeError> {
        if let Some(version) = self.cache.current(tenant) {
            return Ok(version);
        }
        let newest = self
            .stored_versions(tenant)
            .await?
            .last()
            .copied()
            .ok_or(EnvelopeError::NoKey)?;
        self.cache.keep_current(tenant, newest);
        Ok(newest)
    }

    async fn stored_versions(&self, tenant: &str) -> Result<Vec<u32>, EnvelopeError> {
        let items = self
            .store
            .query(Table::Core, &partition(tenant), "v", MAX_VERSIONS)
            .await?;
        items
            .iter()
            .map(|item| {
                item.key.sk[1..]
                    .parse()
                    .map_err(|_| EnvelopeError::Store(StoreError::Corrupt(format!("key version {:?}", item.key.sk))))
            })
            .collect()
    }

    async fn add_version(&self, tenant: &str, version: u32) -> Result<u32, EnvelopeError> {
        let (key, wrapped) = self.wrapper.generate(tenant).await?;
        let body = serde_json::json!({ "wrapped": STANDARD.encode(&wrapped) });
        self.store
            .put(Table::Core, &Item::new(version_key(tenant, version), body))
            .await?;
        self.cache.keep_key(tenant, version, Arc::new(key));
        self.cache.keep_current(tenant, version);
        Ok(version)
    }

    /// The plaintext key of `version`: cached, or read and unwrapped once however many ask.
    async fn key(&self, tenant: &str, version: u32) -> Result<Arc<DataKey>, EnvelopeError> {
        if let Some(key) = self.cache.key(tenant, version) {
            return Ok(key);
        }
        let gate = self.gate(tenant);
        let loaded = {
            let _turn = gate.lock().await;
            match self.cache.key(tenant, version) {
                Some(key) => Ok(key),
                None => self.load(tenant, version).await,
            }
        };
        self.release(tenant, &gate);
        loaded
    }

    /// The tenant's turn for loading or destroying its keys.
    fn gate(&self, tenant: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(loading.entry(tenant.to_owned()).or_default())
    }

    /// Forgets the tenant's turn once nobody else holds or awaits it.
    fn release(&self, tenant: &str, gate: &Arc<tokio::sync::Mutex<()>>) {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's and the caller's: nobody else is waiting.
        if Arc::strong_count(gate) == 2 {
            loading.remove(tenant);
        }
    }

    async fn load(&self, tenant: &str, version: u32) -> Result<Arc<DataKey>, EnvelopeError> {
        let item = self
            .store
            .get(Table::Core, &version_key(tenant, version))
            .await?
            .ok_or(EnvelopeError::NoKey)?;
        let wrapped = item
            .body
            .get("wrapped")
            .and_then(serde_json::Value::as_str)
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| EnvelopeError::Store(StoreError::Corrupt("a wrapped data key".into())))?;
        let key = Arc::new(self.wrapper.unwrap(tenant, &wrapped).await?);
        self.cache.keep_key(tenant, version, Arc::clone(&key));
        Ok(key)
    }
}

/// The associated data: the tenant, the key version, then the caller's context, each part
/// length-prefixed so two different contexts never share an encoding.
fn associated_data(tenant: &str, version: u32, context: &Context<'_>) -> Vec<u8> {
    let mut aad = Vec::new();
    let version = version.to_string();
    let parts = [("tenant", tenant), ("key_version", version.as_str())];
    for (name, value) in parts.iter().chain(context) {
        for part in [name, value] {
            aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
    }
    aad
}

/// The tenant keys the settings select: data keys wrapped by KMS under `alias/<prefix>-data`,
/// or by a key-encryption key kept in `secrets` (the local secrets file, 0600), created on first
/// use.
pub async fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
    store: Arc<dyn ItemStore>,
    secrets: &dyn rampart_secrets::SecretSource,
) -> Result<TenantKeys, rampart_kernel::ConfigError> {
    let wrapper: Arc<dyn KeyWrapper> = match aws {
        Some(config) => Arc::new(KmsKeyWrapper::new(
            aws_sdk_kms::Client::new(config),
            &settings.resource_prefix,
        )),
        None => Arc::new(
            LocalKeyWrapper::open(secrets)
                .await
                .map_err(|e| rampart_kernel::ConfigError::new("data_dir", e.to_string()))?,
        ),
    };
    Ok(TenantKeys::new(
        store,
        wrapper,
        Duration::from_secs(settings.core.data_key_cache_secs),
        settings.core.data_key_cache_entries,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_that_differ_never_share_associated_data() {
        let a = associated_data("t", 1, &[("a", "bc")]);
        let b = associated_data("t", 1, &[("ab", "c")]);
        assert_ne!(a, b);
        assert_ne!(associated_data("t", 1, &[]), associated_data("t", 2, &[]));
        assert_ne!(associated_data("t1", 1, &[]), associated_data("t", 1, &[("1", "")]));
    }

    #[test]
    fn a_data_key_never_prints() {
        assert_eq!(format!("{:?}", DataKey::from_bytes([7; 32])), "DataKey([REDACTED])");
    }
}
