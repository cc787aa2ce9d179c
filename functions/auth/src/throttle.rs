//! Throttling with exponential back-off, on counters chosen so an attacker cannot turn them
//! against the account's owner.
//!
//! - Sign-in is counted per account *and client* first: guesses from one address do not lock
//!   the owner out elsewhere. An account-wide counter engages only after 100 consecutive
//!   failures (NIST SP 800-63B §5.2.2), and a client holding a device token from an earlier
//!   sign-in to the account is counted on its own (OWASP's device cookies), so it keeps signing
//!   in while the account-wide counter backs off.
//! - One-time codes are counted per account and purpose, however often a new code is sent: a
//!   reissued code does not reset the budget.
//! - Unauthenticated requests that send mail or check a code are also counted per client address.
//!
//! Counters live in the auth table so they hold across Lambda instances. An attempt is counted
//! *before* its secret is checked, with a write conditional on the counter's version: of many
//! parallel attempts, only as many as the policy allows reach the check, the rest get 429.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use serde::{Deserialize, Serialize};

use crate::codes::CodePurpose;

/// How many attempts a counter allows before back-off starts, and how it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free_attempts: u32,
    /// The first delay; each further attempt doubles it.
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
    /// A counter with no attempt for this long after its back-off ends is forgotten.
    pub forget_after_secs: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Policy {
    /// Sign-in per account from one client (or one device): five tries, then 1 s, 2 s, 4 s …
    /// up to 15 minutes.
    pub const ACCOUNT_CLIENT: Policy = Policy {
        free_attempts: 5,
        base_delay_secs: 1,
        max_delay_secs: 15 * MINUTE,
        forget_after_secs: HOUR,
    };
    /// Sign-in per account from every client without a device token, together: NIST's 100
    /// consecutive failures, then a second doubling up to a day, forgotten only after 90 quiet
    /// days. A sign-in or a password reset resets it.
    pub const ACCOUNT: Policy = Policy {
        free_attempts: 100,
        base_delay_secs: 1,
        max_delay_secs: DAY,
        forget_after_secs: 90 * DAY,
    };
    /// Sign-in per client address: generous, since many users may share one address (NAT), but
    /// it stops one address from spraying passwords across many accounts.
    pub const CLIENT_IP: Policy = Policy {
        free_attempts: 50,
        base_delay_secs: 1,
        max_delay_secs: 15 * MINUTE,
        forget_after_secs: HOUR,
    };
    /// Wrong one-time codes per account and purpose: ten, then a minute doubling up to a day;
    /// forgotten only after a month without attempts. See `docs/security.md` for what this
    /// leaves a guesser in a year.
    pub const CODE: Policy = Policy {
        free_attempts: 10,
        base_delay_secs: MINUTE,
        max_delay_secs: DAY,
        forget_after_secs: 30 * DAY,
    };
    /// Codes mailed to one account (resend, forgot): five, then a minute doubling up to 15
    /// minutes, so nobody can flood a mailbox.
    pub const MAIL: Policy = Policy {
        free_attempts: 5,
        base_delay_secs: MINUTE,
        max_delay_secs: 15 * MINUTE,
        forget_after_secs: DAY,
    };
    /// Unauthenticated requests that mail or check a code (register, confirm, resend, forgot,
    /// reset) per client address.
    pub const REQUESTS_IP: Policy = Policy {
        free_attempts: 30,
        base_delay_secs: 1,
        max_delay_secs: 15 * MINUTE,
        forget_after_secs: HOUR,
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

/// The partition of an account's counters, keyed by a hash of the email so the table lists no
/// addresses.
fn account_partition(email: &str) -> String {
    format!("throttle#account#{}", hash(email))
}

pub(crate) fn hash(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, text.as_bytes()))
}

impl Counter {
    fn new(pk: String, sk: impl Into<String>, policy: Policy) -> Self {
        Self {
            key: Key::new(pk, sk),
            policy,
        }
    }

    /// Sign-in to the account from one client address.
    pub fn account_client(email: &str, ip: &str) -> Self {
        Self::new(
            account_partition(email),
            format!("login#ip#{ip}"),
            Policy::ACCOUNT_CLIENT,
        )
    }

    /// Sign-in to the account from every client without a device token for it.
    pub fn account(email: &str) -> Self {
        Self::new(account_partition(email), "login", Policy::ACCOUNT)
    }

    /// Sign-in from one client address to any account.
    pub fn client_ip(ip: &str) -> Self {
        Self::new(format!("throttle#ip#{ip}"), "login", Policy::CLIENT_IP)
    }

    /// Sign-in from a client holding this device token for the account.
    pub fn device(device_id: &str) -> Self {
        Self::new(format!("throttle#device#{device_id}"), "login", Policy::ACCOUNT_CLIENT)
    }

    /// The current password checked for one session (`password/change`).
    pub fn session(session_id: &str) -> Self {
        Self::new(
            format!("throttle#session#{session_id}"),
            "password",
            Policy::ACCOUNT_CLIENT,
        )
    }

    /// Code checks for the account and purpose.
    pub fn code(email: &str, purpose: CodePurpose) -> Self {
        Self::new(
            account_partition(email),
            format!("code#{}", purpose.label()),
            Policy::CODE,
        )
    }

    /// Codes mailed to the account.
    pub fn mail(email: &str) -> Self {
        Self::new(account_partition(email), "mail", Policy::MAIL)
    }

    /// Unauthenticated mail and code requests from one client address.
    pub fn requests(ip: &str) -> Self {
        Self::new(format!("throttle#ip#{ip}"), "requests", Policy::REQUESTS_IP)
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

/// A counter as stored. Times are in milliseconds, so a one-second delay is a whole second
/// wherever in a second the last attempt fell.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    attempts: u32,
    last_attempt_ms: i64,
}

impl State {
    fn allowed_at_ms(&self, policy: &Policy) -> i64 {
        self.last_attempt_ms + policy.delay_secs(self.attempts) * 1000
    }
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
    /// `now_ms` is Unix milliseconds.
    pub async fn begin_attempt(&self, counters: &[Counter], now_ms: i64) -> Result<(), ThrottleError> {
        for counter in counters {
            self.update(counter, now_ms, |state| {
                let allowed_at_ms = state.allowed_at_ms(&counter.policy);
                if now_ms < allowed_at_ms {
                    let wait_secs = (allowed_at_ms - now_ms + 999) / 1000;
                    return Err(ThrottleError::Throttled {
                        retry_after_secs: u64::try_from(wait_secs).unwrap_or(1),
                    });
                }
                state.attempts += 1;
                state.last_attempt_ms = now_ms;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Forgets counters whose attempts a success has redeemed.
    pub async fn forget(&self, counters: &[Counter]) -> Result<(), StoreError> {
        for counter in counters {
            self.store.delete(Table::Auth, &counter.key, None).await?;
        }
        Ok(())
    }

    /// Takes one attempt back from a counter shared with other accounts (the client address's).
    pub async fn credit(&self, counter: &Counter, now_ms: i64) -> Result<(), StoreError> {
        let result = self
            .update(counter, now_ms, |state| {
                state.attempts = state.attempts.saturating_sub(1);
                Ok(())
            })
            .await;
        match result {
            Ok(()) | Err(ThrottleError::Throttled { .. }) => Ok(()),
            Err(ThrottleError::Store(error)) => Err(error),
        }
    }

    /// Read-modify-write of one counter, retried while other writers win.
    async fn update(
        &self,
        counter: &Counter,
        now_ms: i64,
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
            let expires_at = state.allowed_at_ms(&counter.policy) / 1000 + counter.policy.forget_after_secs;
            let body = serde_json::to_value(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut item = Item::new(counter.key.clone(), body).expiring_at(expires_at.max(now_ms / 1000 + 1));
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
        let policy = Policy::ACCOUNT_CLIENT;
        let delays: Vec<i64> = (0..9).map(|n| policy.delay_secs(n)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(policy.delay_secs(40), 900);
        assert_eq!(policy.delay_secs(u32::MAX), 900);
    }

    /// The most attempts a counter lets through in `span` seconds, over every strategy open to
    /// an attacker: go on at each allowed moment, or stop after `k` delayed attempts, wait until
    /// the counter is forgotten, and start afresh.
    fn most_attempts_within(policy: Policy, span: i64) -> u64 {
        (0..=40)
            .map(Some)
            .chain([None])
            .map(|pause_after| {
                let (mut at, mut counted, mut total) = (0_i64, 0_u32, 0_u64);
                while at <= span {
                    total += 1;
                    counted += 1;
                    let delay = policy.delay_secs(counted);
                    if pause_after.is_some_and(|k| counted >= policy.free_attempts + k) {
                        at += delay + policy.forget_after_secs;
                        counted = 0;
                    } else {
                        at += delay;
                    }
                }
                total
            })
            .max()
            .unwrap_or(0)
    }

    const YEAR: i64 = 365 * DAY;

    /// The arithmetic of `docs/security.md`: a guesser's best yearly odds against one account's
    /// emailed codes, whatever addresses and reissued codes they use.
    #[test]
    fn a_year_of_code_guessing_stays_below_one_in_a_million() {
        let guesses = most_attempts_within(Policy::CODE, YEAR);
        assert_eq!(guesses, 384);
        let space =
            (crate::codes::CODE_ALPHABET.len() as f64).powi(i32::try_from(crate::codes::CODE_LENGTH).unwrap_or(0));
        let odds = guesses as f64 / space;
        assert!(odds < 1e-6, "{guesses} guesses at a space of {space}: {odds}");
        // Six-digit codes (Cognito's own, which Rampart does not use) would not meet it.
        assert!(guesses as f64 / 1e6 > 1e-6);
    }

    /// Password guesses against one account from clients without its device token, in a year.
    #[test]
    fn a_year_of_password_guessing_is_bounded_account_wide() {
        assert_eq!(most_attempts_within(Policy::ACCOUNT, YEAR), 575);
    }
}
