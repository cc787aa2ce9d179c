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

#[derive(Deserialize)]
struct Entry {
    session_id: String,
    revoked_at_ms: i64,
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
            state: Mutex::new(PollState::default()),
        }
    }

    pub fn status(&self, session_id: &str) -> Status {
        if !self.is_fresh() {
            return Status::Unknown;
        }
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        if revoked.contains_key(session_id) {
            Status::Revoked
        } else {
            Status::Active
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
            for entry in feed.revocations {
                revoked.insert(entry.session_id, entry.revoked_at_ms);
            }
            // A token of a session revoked longer ago than the retention has expired anyway.
            let oldest = feed.as_of_ms.saturating_sub(self.retention_ms);
            revoked.retain(|_, at| *at >= oldest);
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
