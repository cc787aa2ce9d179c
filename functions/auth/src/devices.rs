//! Device tokens (OWASP's "device cookies"): proof that a client has signed in to an account
//! before, so it keeps its own sign-in budget while strangers' guesses back the account off.
//!
//! A token is 256 random bits, given out at each sign-in and stored only as its hash, bound to
//! the account. Presented at the next sign-in to the same account, it is spent and replaced.
//! A token for another account, an expired one or garbage is simply not recognised: the client
//! is throttled like any other.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::random::random_bytes;
use crate::throttle::hash;

/// How long a device stays recognised without signing in.
pub const DEVICE_LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// Longest device token accepted; real ones are 43 characters.
const MAX_TOKEN_CHARS: usize = 128;

/// A recognised device: the id its throttle counter and record go by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    account: String,
}

/// The device repository.
#[derive(Debug, Clone)]
pub struct Devices {
    store: Arc<dyn ItemStore>,
}

fn key(id: &str) -> Key {
    Key::new(format!("device#{id}"), "device")
}

impl Devices {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// The device behind `token`, if it was given out for this email and is still live.
    pub async fn recognise(&self, token: &str, email: &str) -> Result<Option<Device>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Ok(None);
        }
        let id = hash(token);
        let Some(item) = self.store.get(Table::Auth, &key(&id)).await? else {
            return Ok(None);
        };
        let record: Record = serde_json::from_value(item.body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((record.account == hash(email)).then_some(Device { id }))
    }

    /// A new token for a client that has just signed in to the account with this email; the
    /// device it replaces, if any, is forgotten.
    pub async fn issue(&self, email: &str, replaces: Option<&Device>, now: i64) -> Result<SecretString, StoreError> {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let body =
            serde_json::to_value(Record { account: hash(email) }).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let item = Item::new(key(&hash(&token)), body).expiring_at(now + DEVICE_LIFETIME_SECS);
        self.store.put(Table::Auth, &item).await?;
        if let Some(old) = replaces {
            self.store.delete(Table::Auth, &key(&old.id), None).await?;
        }
        Ok(SecretString::from(token))
    }
}
