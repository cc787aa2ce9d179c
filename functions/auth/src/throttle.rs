//! Failed-sign-in throttling with exponential back-off, per account and per client IP.
//!
//! Counters live in the auth table so they hold across Lambda instances. An attempt is counted
//! *before* the password is checked, with a write conditional on the counter's version: of many
//! parallel attempts, only as many as the policy allows reach the password check, the rest get
//! 429. A successful sign-in takes its own attempt back.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use serde::{Deserialize, Serialize};

/// How many attempts a counter allows before back-off starts, and how it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free_attempts: u32,
    /// The first delay; each further attempt doubles it.
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
    /// A counter with no attempt for this long is forgotten.
    pub forget_after_secs: i64,
}

impl Policy {
    /// Per account: five tries, then 1 s, 2 s, 4 s … up to 15 minutes.
    pub const ACCOUNT: Policy = Policy {
        free_attempts: 5,
        base_delay_secs: 1,
        max_delay_secs: 900,
        forget_after_secs: 3600,
    };
    /// Per client IP: generous, since many users may share one address (NAT), but it stops one
    /// address from spraying passwords across many accounts.
    pub const CLIENT_IP: Policy = Policy {
        free_attempts: 50,
        base_delay_secs: 1,
        max_delay_secs: 900,
        forget_after_secs: 3600,
    };

    /// How long after the latest attempt the next one may be made, given `attempts` so far.
    fn delay_secs(&self, attempts: u32) -> i64 {
        if attempts < self.free_attempts {
            return 0;
        }
        let doublings = (attempts - self.free_attempts).min(30);
        self.base_delay_secs
            .saturating_mul(1_i64 << doublings)
            .min(self.max_delay_secs)
    }
}

/// Which counter an attempt is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    key: Key,
    policy: Policy,
}

impl Counter {
    /// The account's counter, keyed by a hash of the email so the table lists no addresses.
    pub fn account(email: &str) -> Self {
        let hash = digest::digest(&digest::SHA256, email.as_bytes());
        Self {
            key: Key::new(format!("throttle#account#{}", URL_SAFE_NO_PAD.encode(hash)), "login"),
            policy: Policy::ACCOUNT,
        }
    }

    pub fn client_ip(ip: &str) -> Self {
        Self {
            key: Key::new(format!("throttle#ip#{ip}"), "login"),
            policy: Policy::CLIENT_IP,
        }
    }

    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// Too many recent attempts; the next is allowed after this many seconds.
    #[error("too many attempts; retry after {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    attempts: u32,
    last_attempt: i64,
}

/// The throttle repository.
#[derive(Debug, Clone)]
pub struct Throttle {
    store: Arc<dyn ItemStore>,
}

impl Throttle {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// Counts one attempt against each counter in turn, or refuses it if any is backing off.
    pub async fn begin_attempt(&self, counters: &[Counter], now: i64) -> Result<(), ThrottleError> {
        for counter in counters {
            self.update(counter, now, |state| {
                let allowed_at = state.last_attempt + counter.policy.delay_secs(state.attempts);
                if now < allowed_at {
                    return Err(ThrottleError::Throttled {
                        retry_after_secs: u64::try_from(allowed_at - now).unwrap_or(1),
                    });
                }
                state.attempts += 1;
                state.last_attempt = now;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Takes back the attempt a successful sign-in made: the account starts afresh, the IP
    /// counter loses one.
    pub async fn succeeded(&self, account: &Counter, client_ip: Option<&Counter>, now: i64) -> Result<(), StoreError> {
        self.store.delete(Table::Auth, &account.key, None).await?;
        if let Some(counter) = client_ip {
            let result = self
                .update(counter, now, |state| {
                    state.attempts = state.attempts.saturating_sub(1);
                    Ok(())
                })
                .await;
            match result {
                Ok(()) => {}
                Err(ThrottleError::Store(error)) => return Err(error),
                Err(ThrottleError::Throttled { .. }) => {}
            }
        }
        Ok(())
    }

    /// Read-modify-write of one counter, retried while other writers win.
    async fn update(
        &self,
        counter: &Counter,
        now: i64,
        change: impl Fn(&mut State) -> Result<(), ThrottleError>,
    ) -> Result<(), ThrottleError> {
        loop {
            let existing = self.store.get(Table::Auth, &counter.key).await?;
            let (mut state, version) = match &existing {
                Some(item) => (
                    serde_json::from_value(item.body.clone()).unwrap_or_default(),
                    item.version,
                ),
                None => (State::default(), 0),
            };
            change(&mut state)?;
            let expires_at =
                state.last_attempt + counter.policy.delay_secs(state.attempts) + counter.policy.forget_after_secs;
            let body = serde_json::to_value(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut item = Item::new(counter.key.clone(), body).expiring_at(expires_at.max(now + 1));
            item.version = version;
            match self.store.put(Table::Auth, &item).await {
                Ok(_) => return Ok(()),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_after_the_free_attempts_and_is_capped() {
        let policy = Policy::ACCOUNT;
        let delays: Vec<i64> = (0..9).map(|n| policy.delay_secs(n)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(policy.delay_secs(40), 900);
        assert_eq!(policy.delay_secs(u32::MAX), 900);
    }
}
