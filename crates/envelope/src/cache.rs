//! Plaintext data keys held in memory for a bounded time and number, so the key keeper (KMS) is
//! asked once per tenant and key version per lifetime, not once per record. A key leaves the
//! cache when its lifetime ends, when the cache is full and it is the oldest, or when its tenant
//! is shredded; its bytes are zeroized once the last request using it is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::DataKey;

#[derive(Debug)]
struct Cached<T> {
    value: T,
    until: Instant,
}

#[derive(Debug, Default)]
struct Entries {
    keys: HashMap<(String, u32), Cached<Arc<DataKey>>>,
    /// Each tenant's newest key version.
    current: HashMap<String, Cached<u32>>,
}

#[derive(Debug)]
pub(crate) struct KeyCache {
    lifetime: Duration,
    max_keys: usize,
    entries: Mutex<Entries>,
}

impl KeyCache {
    pub(crate) fn new(lifetime: Duration, max_keys: usize) -> Self {
        Self {
            lifetime,
            max_keys: max_keys.max(1),
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn key(&self, tenant: &str, version: u32) -> Option<Arc<DataKey>> {
        let mut entries = self.entries();
        let slot = (tenant.to_owned(), version);
        match entries.keys.get(&slot) {
            Some(cached) if cached.until > Instant::now() => Some(Arc::clone(&cached.value)),
            Some(_) => {
                entries.keys.remove(&slot);
                None
            }
            None => None,
        }
    }

    pub(crate) fn keep_key(&self, tenant: &str, version: u32, key: Arc<DataKey>) {
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.keys.len() >= self.max_keys {
            entries.keys.retain(|_, cached| cached.until > now);
        }
        if entries.keys.len() >= self.max_keys
            && let Some(oldest) = entries
                .keys
                .iter()
                .min_by_key(|(_, cached)| cached.until)
                .map(|(slot, _)| slot.clone())
        {
            entries.keys.remove(&oldest);
        }
        let until = now + self.lifetime;
        entries
            .keys
            .insert((tenant.to_owned(), version), Cached { value: key, until });
    }

    pub(crate) fn current(&self, tenant: &str) -> Option<u32> {
        let entries = self.entries();
        entries
            .current
            .get(tenant)
            .filter(|cached| cached.until > Instant::now())
            .map(|cached| cached.value)
    }

    pub(crate) fn keep_current(&self, tenant: &str, version: u32) {
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.current.len() >= self.max_keys {
            entries.current.retain(|_, cached| cached.until > now);
        }
        let until = now + self.lifetime;
        entries
            .current
            .insert(tenant.to_owned(), Cached { value: version, until });
    }

    /// Drops everything held for `tenant`.
    pub(crate) fn forget(&self, tenant: &str) {
        let mut entries = self.entries();
        entries.keys.retain(|(owner, _), _| owner != tenant);
        entries.current.remove(tenant);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Arc<DataKey> {
        Arc::new(DataKey::from_bytes([byte; 32]))
    }

    #[tokio::test(start_paused = true)]
    async fn keys_last_their_lifetime_and_no_longer() {
        let cache = KeyCache::new(Duration::from_secs(300), 10);
        cache.keep_key("t", 1, key(1));
        cache.keep_current("t", 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(cache.key("t", 1).is_some());
        assert_eq!(cache.current("t"), Some(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.key("t", 1).is_none());
        assert_eq!(cache.current("t"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_its_oldest_key() {
        let cache = KeyCache::new(Duration::from_secs(300), 2);
        cache.keep_key("a", 1, key(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.keep_key("b", 1, key(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.keep_key("c", 1, key(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.key("a", 1).is_none());
        assert!(cache.key("b", 1).is_some() && cache.key("c", 1).is_some());
    }

    #[tokio::test]
    async fn forgetting_a_tenant_drops_all_its_keys_and_only_its() {
        let cache = KeyCache::new(Duration::from_secs(300), 10);
        cache.keep_key("a", 1, key(1));
        cache.keep_key("a", 2, key(2));
        cache.keep_current("a", 2);
        cache.keep_key("b", 1, key(3));
        cache.forget("a");
        assert!(cache.key("a", 1).is_none() && cache.key("a", 2).is_none());
        assert_eq!(cache.current("a"), None);
        assert!(cache.key("b", 1).is_some());
    }
}
