//! The signing-key ring, shared by every instance of the auth function through the auth table,
//! and rotated by `rampart keys rotate`: the key schedule of `rampart_tokens` applied to keys
//! kept in the item store.
//!
//! Each instance re-reads the ring at most every [`RELOAD_SECS`], so a rotation reaches every
//! instance well before the new key starts signing (the lead is the JWKS cache lifetime plus
//! a margin larger than the reload interval).

use std::collections::HashMap;
use std::sync::Arc;

use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use rampart_tokens::jwt::KeySet;
use rampart_tokens::{Jwk, KeySource, RingState, Signer, SignerError};
use tokio::sync::RwLock;

/// How long clients and the proxy may cache the JWKS. Short, because a rotated key must be
/// picked up well inside the previous key's verification window.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

/// How often an instance re-reads the ring.
pub const RELOAD_SECS: i64 = 60;

/// How long after a rotation the new key starts signing: verifiers that cached the JWKS just
/// before it have refetched by then, and every instance has reloaded the ring.
pub const PUBLISH_LEAD_SECS: i64 = JWKS_MAX_AGE_SECS as i64 + 2 * RELOAD_SECS;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no signing key is active")]
    NoActiveKey,
}

fn ring_key() -> Key {
    Key::new("keyring", "token-signing")
}

/// The ring as loaded: its schedule and an open signer per key.
#[derive(Debug)]
struct Loaded {
    state: RingState,
    signers: HashMap<String, Arc<dyn Signer>>,
    /// The public keys of `signers` published at `loaded_at`, oldest first.
    published: Vec<Jwk>,
    /// The same keys by `kid`, for verifying bearer tokens.
    key_set: Arc<KeySet>,
    loaded_at: i64,
}

impl Loaded {
    /// Younger than [`RELOAD_SECS`], and no key has retired since: a retired key stops being
    /// published and accepted on time, not at the next reload.
    fn is_fresh(&self, now: i64) -> bool {
        now - self.loaded_at < RELOAD_SECS
            && !self
                .state
                .keys
                .iter()
                .any(|key| key.retires_at.is_some_and(|at| at > self.loaded_at && at <= now))
    }
}

/// The signing keys: which one signs now, which ones the JWKS lists.
#[derive(Debug)]
pub struct KeyRing {
    store: Arc<dyn ItemStore>,
    source: Arc<dyn KeySource>,
    /// The longest an access token is accepted after it was signed: lifetime plus leeway.
    verify_window_secs: i64,
    loaded: RwLock<Option<Arc<Loaded>>>,
}

impl KeyRing {
    pub fn new(store: Arc<dyn ItemStore>, source: Arc<dyn KeySource>, settings: &rampart_kernel::Settings) -> Self {
        let tokens = &settings.tokens;
        Self {
            store,
            source,
            verify_window_secs: i64::try_from(tokens.access_token_ttl_secs + tokens.leeway_secs).unwrap_or(i64::MAX),
            loaded: RwLock::new(None),
        }
    }

    /// The key that signs at `now`.
    pub async fn signer(&self, now: i64) -> Result<Arc<dyn Signer>, KeyError> {
        let loaded = self.current(now).await?;
        let entry = loaded.state.active(now).ok_or(KeyError::NoActiveKey)?;
        loaded.signers.get(&entry.key_ref).cloned().ok_or(KeyError::NoActiveKey)
    }

    /// The public keys the JWKS lists, oldest first, as of the last reload.
    pub async fn published(&self, now: i64) -> Result<Vec<Jwk>, KeyError> {
        Ok(self.current(now).await?.published.clone())
    }

    /// The keys access tokens are verified with, as of the last reload; built once per reload,
    /// not per request.
    pub async fn verification_keys(&self, now: i64) -> Result<Arc<KeySet>, KeyError> {
        Ok(Arc::clone(&self.current(now).await?.key_set))
    }

    /// Creates a new key and schedules it: published now, signing after
    /// [`PUBLISH_LEAD_SECS`]; the keys it replaces retire once their tokens have expired.
    /// Returns the new schedule. Fails with a store conflict if another rotation won.
    pub async fn rotate(&self, now: i64) -> Result<RingState, KeyError> {
        let (mut state, version) = self.read().await?;
        let key_ref = self.source.create().await?;
        state.rotate(&key_ref, now, PUBLISH_LEAD_SECS, self.verify_window_secs);
        let body = serde_json::to_value(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = Item::new(ring_key(), body);
        item.version = version;
        self.store.put(Table::Auth, &item).await?;
        *self.loaded.write().await = None;
        tracing::info!(key_ref, activates_at = now + PUBLISH_LEAD_SECS, "signing key rotated");
        Ok(state)
    }

    async fn read(&self) -> Result<(RingState, u64), KeyError> {
        match self.store.get(Table::Auth, &ring_key()).await? {
            Some(item) => {
                let state =
                    serde_json::from_value(item.body).map_err(|e| StoreError::Corrupt(format!("key ring: {e}")))?;
                Ok((state, item.version))
            }
            None => Ok((RingState::initial(self.source.initial_ref()), 0)),
        }
    }

    /// The loaded ring, re-read when older than [`RELOAD_SECS`]. Keys already open are reused.
    async fn current(&self, now: i64) -> Result<Arc<Loaded>, KeyError> {
        if let Some(loaded) = self.loaded.read().await.as_ref()
            && loaded.is_fresh(now)
        {
            return Ok(Arc::clone(loaded));
        }
        let mut slot = self.loaded.write().await;
        if let Some(loaded) = slot.as_ref()
            && loaded.is_fresh(now)
        {
            return Ok(Arc::clone(loaded));
        }
        let (state, _) = self.read().await?;
        let mut signers = HashMap::new();
        let mut published = Vec::new();
        for entry in state.published(now) {
            let open = slot.as_ref().and_then(|l| l.signers.get(&entry.key_ref)).cloned();
            let signer = match open {
                Some(signer) => signer,
                None => self.source.open(&entry.key_ref).await?,
            };
            published.push(signer.public_key().clone());
            signers.insert(entry.key_ref.clone(), signer);
        }
        let loaded = Arc::new(Loaded {
            state,
            signers,
            key_set: Arc::new(KeySet::new(published.clone())),
            published,
            loaded_at: now,
        });
        *slot = Some(Arc::clone(&loaded));
        Ok(loaded)
    }
}
