//! The security audit log: one append-only item per authentication event in the audit table,
//! partitioned by UTC day and indexed by user. Never a password, code or token.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_identity::IdentityError;
use rampart_kernel::metrics::Counter;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use serde::{Deserialize, Serialize};

use crate::random::random_bytes;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Register,
    Confirm,
    ConfirmResend,
    Login,
    MfaChallenge,
    MfaEnrol,
    MfaDisable,
    Refresh,
    RefreshTokenReuse,
    Logout,
    LogoutAll,
    SessionRevoke,
    PasswordForgot,
    PasswordReset,
    PasswordChange,
    /// An administrator disabled the account.
    UserDisable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Throttled,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub outcome: Outcome,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The user, once known.
    pub user_id: Option<String>,
    /// The email the request named, for events before the user is known (failed sign-in).
    pub email: Option<String>,
    pub session_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// A short machine-readable cause for failures, e.g. `invalid_credentials`. Always one of
    /// the code's own labels, never request data, so it can be a metric label.
    pub reason: Option<Cow<'static, str>>,
    /// The session an owner revoked (`session_revoke`); `session_id` is the one they acted from.
    pub revoked_session_id: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind, outcome: Outcome, at_ms: i64) -> Self {
        Self {
            kind,
            outcome,
            at_ms,
            user_id: None,
            email: None,
            session_id: None,
            client_ip: None,
            user_agent: None,
            reason: None,
            revoked_session_id: None,
        }
    }
}

impl Event {
    /// This event as a failure, with a stable `reason` label.
    pub fn failed(mut self, outcome: Outcome, reason: &'static str) -> Self {
        self.outcome = outcome;
        self.reason = Some(Cow::Borrowed(reason));
        self
    }

    /// This event with the outcome of an identity call.
    pub fn with_result<T>(self, result: &Result<T, IdentityError>) -> Self {
        match result {
            Ok(_) => self,
            Err(error) => self.failed(Outcome::Failure, reason(error)),
        }
    }
}

/// A stable label for an identity failure.
pub fn reason(error: &IdentityError) -> &'static str {
    match error {
        IdentityError::Input(_) => "invalid_input",
        IdentityError::PasswordRefused => "password_refused",
        IdentityError::InvalidCredentials => "invalid_credentials",
        IdentityError::NotConfirmed => "not_confirmed",
        IdentityError::Disabled => "disabled",
        IdentityError::InvalidCode => "invalid_code",
        IdentityError::ChallengeExpired => "challenge_expired",
        IdentityError::SessionInvalid => "session_invalid",
        IdentityError::RateLimited => "rate_limited",
        IdentityError::Overloaded => "overloaded",
        IdentityError::Unavailable(_) => "provider_unavailable",
    }
}

/// The audit repository.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Arc<dyn ItemStore>,
    retention_secs: i64,
    failed_writes: Counter,
}

impl AuditLog {
    /// Records kept `retention_days` after their event (`audit.retention_days`).
    pub fn new(store: Arc<dyn ItemStore>, retention_days: u32) -> Self {
        Self {
            store,
            retention_secs: i64::from(retention_days) * 86_400,
            failed_writes: Counter::default(),
        }
    }

    /// Writes an event; a failure is also counted ([`AuditLog::failure_counter`]).
    pub async fn record(&self, event: &Event) -> Result<(), StoreError> {
        let written = self.write(event).await;
        if written.is_err() {
            self.failed_writes.inc();
        }
        written
    }

    /// The count of writes that failed since this log was opened, for the metrics registry.
    pub fn failure_counter(&self) -> Counter {
        self.failed_writes.clone()
    }

    async fn write(&self, event: &Event) -> Result<(), StoreError> {
        let sort = format!("{:015}#{}", event.at_ms, URL_SAFE_NO_PAD.encode(random_bytes::<8>()));
        let body = serde_json::to_value(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = Item::new(Key::new(format!("day#{}", utc_date(event.at_ms)), sort.clone()), body)
            .expiring_at(event.at_ms.div_euclid(1000).saturating_add(self.retention_secs));
        if let Some(user) = &event.user_id {
            item = item.with_index(Key::new(format!("user#{user}"), sort));
        }
        self.store.put(Table::Audit, &item).await.map(|_| ())
    }

    /// A user's events, oldest first.
    pub async fn for_user(&self, user_id: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let items = self
            .store
            .query_index(Table::Audit, &format!("user#{user_id}"), "", limit)
            .await?;
        decode(items)
    }

    /// The events of the UTC day containing `at_ms`, oldest first.
    pub async fn on_day(&self, at_ms: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let items = self
            .store
            .query(Table::Audit, &format!("day#{}", utc_date(at_ms)), "", limit)
            .await?;
        decode(items)
    }
}

fn decode(items: Vec<Item>) -> Result<Vec<Event>, StoreError> {
    items
        .into_iter()
        .map(|item| serde_json::from_value(item.body).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

/// `YYYY-MM-DD` of a Unix-millisecond instant (proleptic Gregorian, H. Hinnant's algorithm).
fn utc_date(at_ms: i64) -> String {
    let days = at_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(1_795_391_999_999), "2026-11-22");
        assert_eq!(utc_date(-1), "1969-12-31");
    }
}
