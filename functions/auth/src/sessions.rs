//! Sessions and their refresh tokens, kept in the auth table.
//!
//! A refresh token is `<session id>.<secret>`: 128 random bits naming the session and 256
//! random bits proving possession, both base64url. Only the SHA-256 of the secret is stored.
//! Every refresh replaces the secret with a write conditional on the session's version, so of
//! several concurrent refreshes with one token exactly one gets a successor. The hashes of
//! rotated secrets are kept: presenting one again means the token was copied, and the whole
//! session is revoked (OAuth 2.0 Security BCP §4.14.2).
//!
//! The identity provider's credential a session keeps for self-service calls (Cognito's refresh
//! token) is sealed with the [`Sealer`] (KMS `Encrypt` on AWS), bound to the session and user, and
//! opened only when a self-service call needs it. A revoked session drops it.
//!
//! Revocations are also written to a feed, partitioned by minute and kept for as long as an
//! access token can live, which the proxy polls to stop revoked sessions before their access
//! tokens expire.

use std::sync::Arc;

use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_identity::IdentityError;
use rampart_seal::{SealError, Sealer};
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::random::random_bytes;

/// How many rotated secrets a session remembers for reuse detection. A client refreshing every
/// access-token lifetime (15 minutes) fills this in eight hours; an older copy is merely refused.
const REMEMBERED_ROTATIONS: usize = 32;

/// How long after a rotation the secret it replaced is taken for the same client's concurrent
/// request (refused, the session kept) rather than a stolen copy (the session revoked). The
/// price: a thief who refreshes first and is followed by the owner within this window is not
/// detected by that one reuse; the owner's next refresh, with the same stale token, is.
const RACE_GRACE_SECS: i64 = 2;

/// A live or revoked sign-in.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: i64,
    pub absolute_expires_at: i64,
    /// When the user last proved who they are (OIDC `auth_time`).
    pub auth_time: i64,
    /// RFC 8176 methods of that proof.
    pub amr: Vec<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at: Option<i64>,
    /// The identity provider's own credential for self-service calls (Cognito's refresh token),
    /// sealed; see [`Sessions::provider_credential`].
    sealed_credential: Option<Vec<u8>>,
    idle_timeout_secs: i64,
    refresh_hash: Vec<u8>,
    rotated_hashes: Vec<Vec<u8>>,
    version: u64,
}

impl Session {
    /// Live: not revoked, not idle for too long, not past its absolute lifetime.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at()
    }

    /// When the session ends unless refreshed (idle) or at the latest (absolute).
    pub fn expires_at(&self) -> i64 {
        self.absolute_expires_at
            .min(self.last_used_at.saturating_add(self.idle_timeout_secs))
    }
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: String,
    pub email: String,
    pub amr: Vec<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub provider_credential: Option<SecretString>,
}

/// A refresh token as handed to the client once; never stored.
#[derive(Debug)]
pub struct RefreshToken(SecretString);

impl RefreshToken {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, malformed, expired or revoked token, or one that lost a concurrent refresh.
    #[error("the refresh token is invalid")]
    Invalid,
    /// A rotated token was presented again; the session has now been revoked.
    #[error("a rotated refresh token was reused")]
    Reused { session: Box<Session> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One entry of the revocation feed: one session, or (with `user_id`) every session of a user
/// signed in before the second of `revoked_at_ms`, except `except_session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Revocation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub except_session_id: Option<String>,
    /// Unix milliseconds.
    pub revoked_at_ms: i64,
}

/// The most sessions one user holds; signing in past it ends the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 50;

/// A user-wide revocation as the auth API checks it.
#[derive(Debug, Serialize, Deserialize)]
struct Cutoff {
    not_before_ms: i64,
    except_session_id: Option<String>,
}

fn cutoff_key(user_id: &str) -> Key {
    Key::new(format!("user#{user_id}"), "cutoff")
}

/// One page of the revocation feed.
#[derive(Debug)]
pub struct FeedPage {
    pub revocations: Vec<Revocation>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<FeedCursor>,
}

/// Where a feed page ended: the sort key of its last entry, base64url-encoded for callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCursor(String);

impl FeedCursor {
    /// A cursor this API handed out, or `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let key = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let (at, subject) = key.split_once('#')?;
        (at.len() == 15 && at.bytes().all(|b| b.is_ascii_digit()) && !subject.is_empty()).then_some(Self(key))
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// The time of the entry it points at (Unix ms); `parse` checked its 15 digits.
    fn at_ms(&self) -> i64 {
        self.0.get(..15).and_then(|at| at.parse().ok()).unwrap_or_default()
    }
}

/// A feed item as its entry: a session's (`<ms>#<session id>`) or a user's (`<ms>#user#<id>`).
fn revocation_of(item: Item) -> Result<Revocation, StoreError> {
    let corrupt = || StoreError::Corrupt(item.key.sk.clone());
    let (at, subject) = item.key.sk.split_once('#').ok_or_else(corrupt)?;
    let revoked_at_ms: i64 = at.parse().map_err(|_| corrupt())?;
    Ok(match subject.strip_prefix("user#") {
        Some(user_id) => {
            let cutoff: Cutoff =
                serde_json::from_value(item.body.clone()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Revocation {
                session_id: None,
                user_id: Some(user_id.to_string()),
                except_session_id: cutoff.except_session_id,
                revoked_at_ms,
            }
        }
        None => Revocation {
            session_id: Some(subject.to_string()),
            user_id: None,
            except_session_id: None,
            revoked_at_ms,
        },
    })
}

/// The sessions repository.
#[derive(Debug, Clone)]
pub struct Sessions {
    store: Arc<dyn ItemStore>,
    sealer: Arc<dyn Sealer>,
    idle_timeout_secs: i64,
    absolute_lifetime_secs: i64,
    /// How long a revocation stays in the feed: the longest access-token life plus leeway.
    feed_retention_secs: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    user_id: String,
    email: String,
    created_at: i64,
    last_used_at: i64,
    absolute_expires_at: i64,
    auth_time: i64,
    amr: Vec<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    revoked_at_ms: Option<i64>,
    /// base64url of the sealed provider credential.
    sealed_provider_credential: Option<String>,
    /// base64url SHA-256 of the current secret.
    refresh_hash: String,
    rotated_hashes: Vec<String>,
}

fn session_key(id: &str) -> Key {
    Key::new(format!("session#{id}"), "session")
}

/// A feed entry's key: `<ms>#<session id>`, or `<ms>#user#<user id>` for a user-wide one.
fn feed_key(subject: &str, revoked_at_ms: i64) -> Key {
    Key::new(
        format!("revoked#{}", revoked_at_ms.div_euclid(60_000)),
        format!("{revoked_at_ms:015}#{subject}"),
    )
}

fn secret_hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// Splits `<session id>.<secret>`, refusing anything not shaped like a token we issued.
fn parse_refresh_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let base64url =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (base64url(id, 22) && base64url(secret, 43)).then_some((id, secret))
}

fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// What a sealed provider credential is bound to: a copy onto another session item fails to open.
fn credential_context<'a>(session_id: &'a str, user_id: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("purpose", "provider-credential"),
        ("session", session_id),
        ("user", user_id),
    ]
}

impl Sessions {
    pub fn new(store: Arc<dyn ItemStore>, sealer: Arc<dyn Sealer>, settings: &rampart_kernel::Settings) -> Self {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            store,
            sealer,
            idle_timeout_secs: secs(settings.sessions.idle_timeout_secs),
            absolute_lifetime_secs: secs(settings.sessions.absolute_lifetime_secs),
            feed_retention_secs: secs(settings.tokens.access_token_ttl_secs + settings.tokens.leeway_secs + 60),
        }
    }

    /// Starts a session at `now` and returns it with its first refresh token.
    pub async fn create(&self, new: NewSession, now: i64) -> Result<(Session, RefreshToken), StoreError> {
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let sealed_credential = match &new.provider_credential {
            Some(credential) => Some(
                self.sealer
                    .seal(credential, &credential_context(&id, &new.user_id))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("sealing the provider credential: {e}")))?,
            ),
            None => None,
        };
        let mut session = Session {
            id,
            user_id: new.user_id,
            email: new.email,
            created_at: now,
            last_used_at: now,
            absolute_expires_at: now.saturating_add(self.absolute_lifetime_secs),
            auth_time: now,
            amr: new.amr,
            client_ip: new.client_ip,
            user_agent: new.user_agent,
            revoked_at: None,
            sealed_credential,
            idle_timeout_secs: self.idle_timeout_secs,
            refresh_hash: secret_hash(&secret),
            rotated_hashes: Vec::new(),
            version: 0,
        };
        session.version = self.store.put(Table::Auth, &self.item_of(&session)).await?;
        for oldest in self
            .list(&session.user_id, now)
            .await?
            .iter()
            .skip(MAX_SESSIONS_PER_USER)
        {
            self.revoke(&oldest.id, now).await?;
        }
        let token = RefreshToken(SecretString::from(format!("{}.{secret}", session.id)));
        Ok((session, token))
    }

    /// The session, live or not; `None` once it has expired from the table.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        match self.store.get(Table::Auth, &session_key(id)).await? {
            Some(item) => self.session_from(id, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Checks a refresh token without consuming it: the live session it belongs to, ready for
    /// [`Sessions::rotate`]. A rotated token revokes its session here.
    pub async fn redeem(&self, token: &str, now: i64) -> Result<Session, RefreshError> {
        let (id, secret) = parse_refresh_token(token).ok_or(RefreshError::Invalid)?;
        let session = self.get(id).await?.ok_or(RefreshError::Invalid)?;
        let presented = secret_hash(secret);
        if hashes_equal(&presented, &session.refresh_hash) {
            return if session.is_active(now) && !self.is_cut_off(&session).await? {
                Ok(session)
            } else {
                Err(RefreshError::Invalid)
            };
        }
        let reused = session
            .rotated_hashes
            .iter()
            .any(|rotated| hashes_equal(&presented, rotated));
        if !reused {
            return Err(RefreshError::Invalid);
        }
        let just_rotated = session
            .rotated_hashes
            .first()
            .is_some_and(|latest| hashes_equal(&presented, latest))
            && now - session.last_used_at <= RACE_GRACE_SECS;
        if just_rotated {
            // A client racing itself (two tabs refreshing at once): the loser is refused, and
            // the winner's session lives on.
            return Err(RefreshError::Invalid);
        }
        if session.revoked_at.is_none() {
            self.revoke(&session.id, now).await?;
        }
        Err(RefreshError::Reused {
            session: Box::new(session),
        })
    }

    /// Replaces the session's secret, provided nobody else has since `redeem`; returns the
    /// updated session and the successor token. A lost race is [`RefreshError::Invalid`].
    pub async fn rotate(&self, mut session: Session, now: i64) -> Result<(Session, RefreshToken), RefreshError> {
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let previous = std::mem::replace(&mut session.refresh_hash, secret_hash(&secret));
        session.rotated_hashes.insert(0, previous);
        session.rotated_hashes.truncate(REMEMBERED_ROTATIONS);
        session.last_used_at = now;
        match self.store.put(Table::Auth, &self.item_of(&session)).await {
            Ok(version) => session.version = version,
            Err(StoreError::ConditionFailed) => return Err(RefreshError::Invalid),
            Err(error) => return Err(error.into()),
        }
        let token = RefreshToken(SecretString::from(format!("{}.{secret}", session.id)));
        Ok((session, token))
    }

    /// Revokes a session (idempotent) and makes sure the revocation is in the feed. Returns
    /// whether the session exists.
    pub async fn revoke(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        loop {
            let Some(mut session) = self.get(id).await? else {
                return Ok(false);
            };
            let revoked_at = match session.revoked_at {
                Some(at) => at,
                None => {
                    // Stamped when written, not when the caller began: a feed entry must never
                    // land behind what a verifier has already read.
                    let now = now.max(rampart_kernel::now_unix());
                    session.revoked_at = Some(now);
                    // A revoked session will never act for the user again.
                    session.sealed_credential = None;
                    match self.store.put(Table::Auth, &self.item_of(&session)).await {
                        Ok(_) => now,
                        Err(StoreError::ConditionFailed) => continue,
                        Err(error) => return Err(error),
                    }
                }
            };
            self.publish_revocation(id, revoked_at.saturating_mul(1000), now)
                .await?;
            return Ok(true);
        }
    }

    /// Revokes every session of `user_id` except `keep`; returns how many were revoked one by
    /// one. The first write is a user-wide cutoff, in the feed and for this API's own checks,
    /// which alone ends every session signed in before this second, however many there are.
    /// The sessions are then revoked one by one too (at most [`MAX_SESSIONS_PER_USER`]), to drop
    /// their provider credentials and to cover sessions begun within this very second.
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<usize, StoreError> {
        let now_ms = rampart_kernel::now_unix_ms().max(now.saturating_mul(1000));
        let cutoff = Cutoff {
            not_before_ms: now_ms,
            except_session_id: keep.map(str::to_string),
        };
        let body = serde_json::to_value(&cutoff).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let expires_at = now.saturating_add(self.absolute_lifetime_secs);
        loop {
            let mut item = Item::new(cutoff_key(user_id), body.clone()).expiring_at(expires_at);
            item.version = self
                .store
                .get(Table::Auth, &cutoff_key(user_id))
                .await?
                .map_or(0, |existing| existing.version);
            match self.store.put(Table::Auth, &item).await {
                Ok(_) => break,
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error),
            }
        }
        let entry = Item::new(feed_key(&format!("user#{user_id}"), now_ms), body)
            .expiring_at(now_ms / 1000 + self.feed_retention_secs);
        match self.store.put(Table::Auth, &entry).await {
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error),
        }
        let mut revoked = 0;
        for session in self.list(user_id, now).await? {
            if Some(session.id.as_str()) != keep && self.revoke(&session.id, now).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Whether a user-wide revocation ended this session: it began in an earlier second than
    /// the cutoff and is not the one the cutoff kept.
    pub async fn is_cut_off(&self, session: &Session) -> Result<bool, StoreError> {
        let Some(item) = self.store.get(Table::Auth, &cutoff_key(&session.user_id)).await? else {
            return Ok(false);
        };
        let cutoff: Cutoff = serde_json::from_value(item.body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(session.created_at < cutoff.not_before_ms.div_euclid(1000)
            && cutoff.except_session_id.as_deref() != Some(session.id.as_str()))
    }

    /// Opens the provider credential the session keeps; `None` if it keeps none (the embedded
    /// provider, or a revoked session). A credential that does not open for this session is
    /// [`IdentityError::SessionInvalid`]: sign in again.
    pub async fn provider_credential(&self, session: &Session) -> Result<Option<SecretString>, IdentityError> {
        let Some(sealed) = &session.sealed_credential else {
            return Ok(None);
        };
        match self
            .sealer
            .open(sealed, &credential_context(&session.id, &session.user_id))
            .await
        {
            Ok(credential) => Ok(Some(credential)),
            Err(SealError::Invalid) => Err(IdentityError::SessionInvalid),
            Err(error) => Err(IdentityError::Unavailable(error.to_string())),
        }
    }

    /// The user's active sessions, newest first.
    pub async fn list(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let items = self
            .store
            .query_index(Table::Auth, &format!("user#{user_id}"), "session#", 1000)
            .await?;
        let mut sessions = Vec::with_capacity(items.len());
        for item in &items {
            let id = item.key.pk.strip_prefix("session#").unwrap_or_default();
            let session = self.session_from(id, item)?;
            if session.is_active(now) {
                sessions.push(session);
            }
        }
        sessions.reverse();
        Ok(sessions)
    }

    /// One page of the revocations at or after `since_ms` that are still inside the feed's
    /// retention, oldest first, resuming after `after`: at most `limit` entries, and a cursor
    /// when more follow. Callers poll with an overlap; entries are idempotent.
    pub async fn revoked_since(
        &self,
        since_ms: i64,
        after: Option<&FeedCursor>,
        limit: usize,
        now: i64,
    ) -> Result<FeedPage, StoreError> {
        let since_ms = since_ms.max((now - self.feed_retention_secs) * 1000);
        // A sort key `<ms>#...` sorts after the bare `<ms>`: this bound keeps entries at `since_ms`.
        let since_sk = format!("{since_ms:015}");
        let (start_ms, mut after_sk) = match after {
            Some(cursor) if cursor.0 > since_sk => (cursor.at_ms(), cursor.0.clone()),
            _ => (since_ms, since_sk),
        };
        let mut minute = start_ms.div_euclid(60_000);
        let mut revocations = Vec::new();
        while minute <= (now * 1000).div_euclid(60_000) {
            let wanted = limit.saturating_sub(revocations.len());
            for item in self
                .store
                .query_after(Table::Auth, &format!("revoked#{minute}"), &after_sk, wanted)
                .await?
            {
                after_sk = item.key.sk.clone();
                revocations.push(revocation_of(item)?);
            }
            if revocations.len() >= limit {
                return Ok(FeedPage {
                    revocations,
                    next: Some(FeedCursor(after_sk)),
                });
            }
            minute += 1;
            after_sk = String::new();
        }
        Ok(FeedPage {
            revocations,
            next: None,
        })
    }

    async fn publish_revocation(&self, id: &str, revoked_at_ms: i64, now: i64) -> Result<(), StoreError> {
        let expires_at = revoked_at_ms / 1000 + self.feed_retention_secs;
        if expires_at <= now {
            return Ok(());
        }
        let entry = Item::new(feed_key(id, revoked_at_ms), serde_json::json!({})).expiring_at(expires_at);
        match self.store.put(Table::Auth, &entry).await {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn item_of(&self, session: &Session) -> Item {
        let encode = |hash: &Vec<u8>| URL_SAFE_NO_PAD.encode(hash);
        let stored = Stored {
            user_id: session.user_id.clone(),
            email: session.email.clone(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            absolute_expires_at: session.absolute_expires_at,
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            client_ip: session.client_ip.clone(),
            user_agent: session.user_agent.clone(),
            revoked_at_ms: session.revoked_at.map(|s| s.saturating_mul(1000)),
            sealed_provider_credential: session.sealed_credential.as_ref().map(|c| URL_SAFE_NO_PAD.encode(c)),
            refresh_hash: encode(&session.refresh_hash),
            rotated_hashes: session.rotated_hashes.iter().map(encode).collect(),
        };
        let mut item = Item::new(
            session_key(&session.id),
            serde_json::to_value(stored).unwrap_or_default(),
        )
        // A revoked session is kept until it would have ended anyway, so a reused token
        // is still recognised; an idle one goes as soon as it can no longer be refreshed.
        .expiring_at(session.expires_at());
        // Only sessions not yet revoked are listed by user, so the listing stays as short as
        // the cap on sessions, however often the user signs in.
        if session.revoked_at.is_none() {
            item = item.with_index(Key::new(
                format!("user#{}", session.user_id),
                format!("session#{:012}#{}", session.created_at, session.id),
            ));
        }
        item.version = session.version;
        item
    }

    fn session_from(&self, id: &str, item: &Item) -> Result<Session, StoreError> {
        let stored: Stored =
            serde_json::from_value(item.body.clone()).map_err(|e| StoreError::Corrupt(format!("session: {e}")))?;
        let decode = |hash: &str| {
            URL_SAFE_NO_PAD
                .decode(hash)
                .map_err(|e| StoreError::Corrupt(format!("session hash: {e}")))
        };
        Ok(Session {
            id: id.to_string(),
            user_id: stored.user_id,
            email: stored.email,
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
            absolute_expires_at: stored.absolute_expires_at,
            auth_time: stored.auth_time,
            amr: stored.amr,
            client_ip: stored.client_ip,
            user_agent: stored.user_agent,
            revoked_at: stored.revoked_at_ms.map(|ms| ms / 1000),
            sealed_credential: stored.sealed_provider_credential.as_deref().map(decode).transpose()?,
            idle_timeout_secs: self.idle_timeout_secs,
            refresh_hash: decode(&stored.refresh_hash)?,
            rotated_hashes: stored
                .rotated_hashes
                .iter()
                .map(|h| decode(h))
                .collect::<Result<_, _>>()?,
            version: item.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_token_shaped_strings_parse() {
        let id = "A".repeat(22);
        let secret = "b".repeat(43);
        assert!(parse_refresh_token(&format!("{id}.{secret}")).is_some());
        for bad in [
            String::new(),
            id.clone(),
            format!("{id}.{secret}x"),
            format!("{id}.{}", "b".repeat(42)),
            format!("{id}.{}+", "b".repeat(42)),
            format!("../{}.{secret}", "A".repeat(19)),
            format!("{id}.{secret}.{secret}"),
        ] {
            assert!(parse_refresh_token(&bad).is_none(), "{bad:?}");
        }
    }
}
