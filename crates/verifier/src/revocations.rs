//! Sessions revoked at the auth service, learned by polling its revocation feed, so a revoked
//! session's access tokens stop passing within seconds rather than at their expiry.
//!
//! If the feed has not been read for longer than the configured bound, the verifier no longer
//! knows which sessions are revoked and says so ([`Status::Unknown`]); protected routes are then
//! refused instead of admitting what may be a revoked session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::Uri;
use serde::Deserialize;

use crate::fetch::{HttpClient, get_json};

/// How far before the issuer's last `as_of_ms` the next poll starts, so a revocation whose
/// write became visible late is still picked up. Entries are idempotent.
const OVERLAP_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
    /// The feed is stale: revocation cannot be ruled out.
    Unknown,
}

#[derive(Debug)]
pub struct Revocations {
    client: HttpClient,
    url: Uri,
    poll: Duration,
    bound: Duration,
    retention_ms: i64,
    /// Session id → when it was revoked (Unix ms).
    revoked: RwLock<HashMap<String, i64>>,
    /// User id → the latest user-wide revocation: tokens issued in an earlier second are revoked.
    users: RwLock<HashMap<String, UserCutoff>>,
    state: Mutex<PollState>,
}

#[derive(Debug, Default)]
struct PollState {
    since_ms: i64,
    last_success: Option<Instant>,
    last_attempt: Option<Instant>,
}

#[derive(Deserialize)]
struct Feed {
    revocations: Vec<Entry>,
    as_of_ms: i64,
}

/// A session's revocation, or with `user_id` every session of a user before `revoked_at_ms`.
#[derive(Deserialize)]
struct Entry {
    session_id: Option<String>,
    user_id: Option<String>,
    except_session_id: Option<String>,
    revoked_at_ms: i64,
}

#[derive(Debug, Clone)]
struct UserCutoff {
    revoked_at_ms: i64,
    except_session_id: Option<String>,
}

impl Revocations {
    pub fn new(client: HttpClient, url: Uri, poll: Duration, bound: Duration, retention: Duration) -> Self {
        Self {
            client,
            url,
            poll,
            bound,
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            revoked: RwLock::new(HashMap::new()),
            users: RwLock::new(HashMap::new()),
            state: Mutex::new(PollState::default()),
        }
    }

    /// Whether the token of session `session_id`, issued to `user_id` at `issued_at` (Unix
    /// seconds), has been revoked, on its own or by a user-wide revocation after it was issued.
    pub fn status(&self, session_id: &str, user_id: &str, issued_at: i64) -> Status {
        if !self.is_fresh() {
            return Status::Unknown;
        }
        if self
            .revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(session_id)
        {
            return Status::Revoked;
        }
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        match users.get(user_id) {
            Some(cutoff)
                if issued_at < cutoff.revoked_at_ms.div_euclid(1000)
                    && cutoff.except_session_id.as_deref() != Some(session_id) =>
            {
                Status::Revoked
            }
            _ => Status::Active,
        }
    }

    /// Whether the feed was read successfully within the bound.
    pub fn is_fresh(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last_success.is_some_and(|at| at.elapsed() <= self.bound)
    }

    /// Reads the feed from where the last read left off (with an overlap).
    pub async fn poll_once(&self) -> Result<(), String> {
        let started = Instant::now();
        let since_ms = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.last_attempt = Some(started);
            state.since_ms
        };
        let separator = if self.url.query().is_some() { '&' } else { '?' };
        let uri: Uri = format!("{}{separator}since={since_ms}", self.url)
            .parse()
            .map_err(|e| format!("revocation feed URL: {e}"))?;
        let (_, feed): (_, Feed) = get_json(&self.client, &uri).await?;
        {
            let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
            let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
            for entry in feed.revocations {
                match (entry.session_id, entry.user_id) {
                    (Some(session_id), _) => {
                        revoked.insert(session_id, entry.revoked_at_ms);
                    }
                    (None, Some(user_id)) => {
                        let cutoff = UserCutoff {
                            revoked_at_ms: entry.revoked_at_ms,
                            except_session_id: entry.except_session_id,
                        };
                        let latest = users.entry(user_id).or_insert_with(|| cutoff.clone());
                        if cutoff.revoked_at_ms > latest.revoked_at_ms {
                            *latest = cutoff;
                        }
                    }
                    (None, None) => {}
                }
            }
            // A token of a session revoked longer ago than the retention has expired anyway.
            let oldest = feed.as_of_ms.saturating_sub(self.retention_ms);
            revoked.retain(|_, at| *at >= oldest);
            users.retain(|_, cutoff| cutoff.revoked_at_ms >= oldest);
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.since_ms = feed.as_of_ms.saturating_sub(OVERLAP_MS).max(state.since_ms);
        // Freshness counts from when the read started: what it returned is at least that new.
        state.last_success = Some(started);
        Ok(())
    }

    /// For callers that cannot run background tasks: polls if the last poll began at least one
    /// poll interval ago, so the answer that follows is as fresh as the poller would keep it.
    pub async fn poll_if_due(&self) {
        let due = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.last_attempt.is_none_or(|at| at.elapsed() >= self.poll)
        };
        if due && let Err(error) = self.poll_once().await {
            tracing::warn!(%error, "revocation feed poll failed");
        }
    }

    /// Polls for as long as the process runs.
    pub fn spawn_poller(self: &Arc<Self>) {
        let revocations = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(revocations.poll);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(error) = revocations.poll_once().await {
                    tracing::warn!(%error, "revocation feed poll failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `body` as the feed on a loopback port; returns its URL.
    async fn feed(body: serde_json::Value) -> Uri {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1/auth/revocations", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route(
            "/v1/auth/revocations",
            axum::routing::get(move || {
                let body = body.clone();
                async move { axum::Json(body) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url.parse().expect("url")
    }

    /// A user-wide entry revokes every token the user was issued in an earlier second, but not
    /// the kept session's, nor tokens issued since.
    #[tokio::test]
    async fn a_user_wide_revocation_ends_every_earlier_token_but_the_kept_session() {
        let cutoff_ms = 1_800_000_000_500;
        let url = feed(serde_json::json!({
            "revocations": [
                {"user_id": "ada", "except_session_id": "kept", "revoked_at_ms": cutoff_ms},
                {"session_id": "one", "revoked_at_ms": cutoff_ms - 10_000},
            ],
            "as_of_ms": cutoff_ms + 1_000,
        }))
        .await;
        let revocations = Revocations::new(
            crate::fetch::client().expect("client"),
            url,
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(990),
        );
        assert_eq!(revocations.status("any", "ada", 0), Status::Unknown, "not read yet");
        revocations.poll_once().await.expect("poll");
        let before = cutoff_ms / 1000 - 1;
        assert_eq!(revocations.status("laptop", "ada", before), Status::Revoked);
        assert_eq!(revocations.status("kept", "ada", before), Status::Active);
        assert_eq!(
            revocations.status("laptop", "ada", cutoff_ms / 1000),
            Status::Active,
            "issued since"
        );
        assert_eq!(
            revocations.status("laptop", "grace", before),
            Status::Active,
            "another user"
        );
        assert_eq!(
            revocations.status("one", "grace", before),
            Status::Revoked,
            "a session entry"
        );
    }
}
