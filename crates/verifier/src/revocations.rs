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

/// The most feed pages one poll reads (a million entries at the issuer's 1,000 a page); a feed
/// longer than that fails the poll, so the verifier goes stale and refuses rather than guess.
const MAX_PAGES: usize = 1000;

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
    /// Where the next page starts; absent on the last.
    next: Option<String>,
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

    /// Reads the feed from where the last read left off (with an overlap), every page of it.
    pub async fn poll_once(&self) -> Result<(), String> {
        let started = Instant::now();
        let since_ms = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.last_attempt = Some(started);
            state.since_ms
        };
        let separator = if self.url.query().is_some() { '&' } else { '?' };
        let first_page = format!("{}{separator}since={since_ms}", self.url);
        let mut uri = first_page.clone();
        let mut as_of_ms = None;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let uri_parsed: Uri = uri.parse().map_err(|e| format!("revocation feed URL: {e}"))?;
            let (_, feed): (_, Feed) = get_json(&self.client, &uri_parsed).await?;
            // The first page's time: entries written while later pages were read are newer.
            let as_of_ms = *as_of_ms.get_or_insert(feed.as_of_ms);
            self.apply(feed.revocations, as_of_ms);
            match feed.next {
                Some(next) if cursor.as_ref() == Some(&next) => {
                    return Err("revocation feed: a page pointed back at itself".to_string());
                }
                Some(next)
                    if next
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    uri = format!("{first_page}&after={next}");
                    cursor = Some(next);
                }
                Some(_) => return Err("revocation feed: malformed `next` cursor".to_string()),
                None => {
                    let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.since_ms = as_of_ms.saturating_sub(OVERLAP_MS).max(state.since_ms);
                    // Freshness counts from when the read started: what it returned is at least that new.
                    state.last_success = Some(started);
                    return Ok(());
                }
            }
        }
        Err(format!("revocation feed: more than {MAX_PAGES} pages in one poll"))
    }

    /// Adds one page's entries, and forgets those older than the retention before `as_of_ms`.
    fn apply(&self, entries: Vec<Entry>, as_of_ms: i64) {
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
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
        let oldest = as_of_ms.saturating_sub(self.retention_ms);
        revoked.retain(|_, at| *at >= oldest);
        users.retain(|_, cutoff| cutoff.revoked_at_ms >= oldest);
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

    /// Serves `pages` as the feed on a loopback port, the first without `after` and each
    /// other for `after=<its index>`; returns its URL.
    async fn feed(pages: Vec<serde_json::Value>) -> Uri {
        use axum::extract::Query;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1/auth/revocations", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route(
            "/v1/auth/revocations",
            axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
                let index = query.get("after").map_or(0, |after| after.parse().expect("page index"));
                let page = pages[index].clone();
                async move { axum::Json(page) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url.parse().expect("url")
    }

    fn revocations(url: Uri) -> Revocations {
        Revocations::new(
            crate::fetch::client().expect("client"),
            url,
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(990),
        )
    }

    /// A user-wide entry revokes every token the user was issued in an earlier second, but not
    /// the kept session's, nor tokens issued since.
    #[tokio::test]
    async fn a_user_wide_revocation_ends_every_earlier_token_but_the_kept_session() {
        let cutoff_ms = 1_800_000_000_500;
        // Two pages: the entry on the second counts as much as those on the first.
        let url = feed(vec![
            serde_json::json!({
                "revocations": [{"user_id": "ada", "except_session_id": "kept", "revoked_at_ms": cutoff_ms}],
                "as_of_ms": cutoff_ms + 1_000,
                "next": "1",
            }),
            serde_json::json!({
                "revocations": [{"session_id": "one", "revoked_at_ms": cutoff_ms - 10_000}],
                "as_of_ms": cutoff_ms + 1_500,
            }),
        ])
        .await;
        let revocations = revocations(url);
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

    /// A feed whose pages never end is not read as complete: the verifier stays unsure.
    #[tokio::test]
    async fn a_feed_that_pages_in_a_loop_fails_the_poll() {
        let url = feed(vec![
            serde_json::json!({"revocations": [], "as_of_ms": 1_800_000_000_000_i64, "next": "1"}),
            serde_json::json!({"revocations": [], "as_of_ms": 1_800_000_000_000_i64, "next": "1"}),
        ])
        .await;
        let revocations = revocations(url);
        let error = revocations.poll_once().await.expect_err("a loop is not a feed");
        assert!(error.contains("itself"), "{error}");
        assert_eq!(revocations.status("any", "ada", 0), Status::Unknown);
    }
}
