//! The session repository against both stores (SQLite and DynamoDB on moto), with the clock
//! passed in so idle and absolute lifetimes can be crossed without waiting.

use std::sync::Arc;

use rampart_auth_function::sessions::{NewSession, RefreshError, Revocation, Sessions};
use rampart_identity::IdentityError;
use rampart_kernel::Settings;
use rampart_seal::{LocalSealer, Sealer};
use rampart_store::{ItemStore, Key, Table};
use secrecy::{ExposeSecret, SecretString};

const IDLE: i64 = 300;
const ABSOLUTE: i64 = 900;

fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.sessions.idle_timeout_secs = IDLE as u64;
    settings.sessions.absolute_lifetime_secs = ABSOLUTE as u64;
    settings
}

fn sealer() -> Arc<dyn Sealer> {
    Arc::new(LocalSealer::from_key(&[7; 32]).expect("key"))
}

fn sessions(store: Arc<dyn ItemStore>) -> Sessions {
    Sessions::new(store, sealer(), &settings())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn new_session(user: &str) -> NewSession {
    NewSession {
        user_id: user.into(),
        email: format!("{user}@example.com"),
        amr: vec!["pwd".into()],
        client_ip: Some("192.0.2.1".into()),
        user_agent: None,
        provider_credential: None,
    }
}

async fn sqlite() -> (Arc<dyn ItemStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rampart_store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store");
    (Arc::new(store), dir)
}

async fn dynamodb() -> Arc<dyn ItemStore> {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws.config);
    rampart_store::dynamodb::provision::provision_tables(&client, &aws.prefix)
        .await
        .expect("tables");
    Arc::new(rampart_store::DynamoDbStore::new(client, &aws.prefix))
}

/// The whole feed from `since_ms`, read `page` entries at a time as a verifier reads it.
async fn feed_from(sessions: &Sessions, since_ms: i64, page: usize, now: i64) -> Vec<Revocation> {
    let mut feed = Vec::new();
    let mut after = None;
    loop {
        let read = sessions
            .revoked_since(since_ms, after.as_ref(), page, now)
            .await
            .expect("feed page");
        assert!(read.revocations.len() <= page);
        feed.extend(read.revocations);
        match read.next {
            Some(next) => after = Some(next),
            None => return feed,
        }
    }
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = super::sqlite().await;
                super::$scenario(store).await;
            }
            #[tokio::test]
            async fn dynamodb_on_moto() {
                super::$scenario(super::dynamodb().await).await;
            }
        }
    )*};
}

on_both_stores!(
    idle_sessions_end,
    a_predecessor_is_a_race_within_the_grace_and_a_reuse_after_it,
    a_user_holds_a_bounded_number_of_sessions_and_revoking_all_is_one_cutoff,
    refreshing_cannot_outlive_the_absolute_lifetime,
    revocation_feed_keeps_entries_for_one_access_token_lifetime,
    revocation_feed_pages_hold_every_entry_once,
    revoking_all_keeps_the_named_session,
    provider_credential_is_sealed_bound_to_its_session_and_dropped_on_revoke,
    refresh_tokens_are_stored_only_as_hashes,
    every_remembered_secret_is_reuse_and_an_older_one_only_invalid,
);

async fn provider_credential_is_sealed_bound_to_its_session_and_dropped_on_revoke(store: Arc<dyn ItemStore>) {
    let sessions = sessions(Arc::clone(&store));
    let t0 = now();
    let credential = "cognito-refresh-token-of-ada";
    let new = NewSession {
        provider_credential: Some(SecretString::from(credential)),
        ..new_session("ada")
    };
    let (ada, _) = sessions.create(new, t0).await.expect("create");
    let key = |id: &str| Key::new(format!("session#{id}"), "session");
    let stored = store.get(Table::Auth, &key(&ada.id)).await.expect("get").expect("item");
    assert!(
        !stored.body.to_string().contains(credential),
        "stored sealed: {}",
        stored.body
    );
    let opened = sessions
        .provider_credential(&ada)
        .await
        .expect("open")
        .expect("credential");
    assert_eq!(opened.expose_secret(), credential);

    // Copied onto another session's item, the sealed value does not open.
    let (eve, _) = sessions.create(new_session("eve"), t0).await.expect("create");
    let mut forged = store.get(Table::Auth, &key(&eve.id)).await.expect("get").expect("item");
    forged.body["sealed_provider_credential"] = stored.body["sealed_provider_credential"].clone();
    store.put(Table::Auth, &forged).await.expect("put");
    let eve = sessions.get(&eve.id).await.expect("get").expect("session");
    assert!(matches!(
        sessions.provider_credential(&eve).await,
        Err(IdentityError::SessionInvalid)
    ));

    // A revoked session no longer keeps it.
    sessions.revoke(&ada.id, t0 + 1).await.expect("revoke");
    let ada = sessions.get(&ada.id).await.expect("get").expect("session");
    assert!(sessions.provider_credential(&ada).await.expect("open").is_none());
    let stored = store.get(Table::Auth, &key(&ada.id)).await.expect("get").expect("item");
    assert!(stored.body["sealed_provider_credential"].is_null(), "{}", stored.body);
}

async fn idle_sessions_end(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    let (_, token) = sessions.create(new_session("idle"), t0).await.expect("create");
    let session = sessions
        .redeem(token.expose(), t0 + IDLE - 1)
        .await
        .expect("still active");
    let (_, next) = sessions.rotate(session, t0 + IDLE - 1).await.expect("rotate");
    // Idle time counts from the last refresh, not from sign-in.
    let session = sessions
        .redeem(next.expose(), t0 + 2 * IDLE - 2)
        .await
        .expect("active after a refresh");
    let last_refresh = t0 + 2 * IDLE - 2;
    let (_, last) = sessions.rotate(session, last_refresh).await.expect("rotate");
    // The idle timeout alone ends it: the absolute lifetime is still ahead.
    assert!(last_refresh + IDLE < t0 + ABSOLUTE);
    sessions
        .redeem(last.expose(), last_refresh + IDLE - 1)
        .await
        .expect("active one second before the idle timeout");
    assert!(matches!(
        sessions.redeem(last.expose(), last_refresh + IDLE).await,
        Err(RefreshError::Invalid)
    ));
}

async fn refreshing_cannot_outlive_the_absolute_lifetime(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    let (_, mut token) = sessions.create(new_session("absolute"), t0).await.expect("create");
    for at in [t0 + 200, t0 + 400, t0 + 600, t0 + 800] {
        let session = sessions.redeem(token.expose(), at).await.expect("active");
        token = sessions.rotate(session, at).await.expect("rotate").1;
    }
    assert!(matches!(
        sessions.redeem(token.expose(), t0 + ABSOLUTE).await,
        Err(RefreshError::Invalid)
    ));
}

async fn revocation_feed_keeps_entries_for_one_access_token_lifetime(store: Arc<dyn ItemStore>) {
    let settings = settings();
    let sessions = Sessions::new(store, sealer(), &settings);
    let t0 = now();
    let (session, _) = sessions.create(new_session("feed"), t0).await.expect("create");
    assert!(sessions.revoke(&session.id, t0).await.expect("revoke"));
    // Revoking again is harmless and does not add a second entry.
    assert!(sessions.revoke(&session.id, t0 + 1).await.expect("revoke again"));
    let feed = feed_from(&sessions, t0 * 1000 - 1, 1000, t0 + 1).await;
    let ours: Vec<_> = feed
        .iter()
        .filter(|r| r.session_id.as_deref() == Some(session.id.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "{feed:?}");
    // Stamped with the time it was written (the clock may have turned a second since `t0`).
    let at = ours[0].revoked_at_ms;
    assert!((t0 * 1000..=(t0 + 1) * 1000).contains(&at), "{at}");
    let later = feed_from(&sessions, at + 1, 1000, t0 + 1).await;
    assert!(
        later
            .iter()
            .all(|r| r.session_id.as_deref() != Some(session.id.as_str()))
    );
    let retention = (settings.tokens.access_token_ttl_secs + settings.tokens.leeway_secs + 60) as i64;
    let expired = feed_from(&sessions, 0, 1000, t0 + retention + 2).await;
    assert!(
        expired
            .iter()
            .all(|r| r.session_id.as_deref() != Some(session.id.as_str()))
    );
    assert!(!sessions.revoke("no-such-session", t0).await.expect("revoke unknown"));
}

/// Read page by page from any `since`, the feed holds every revocation exactly once, in the
/// order written, however small the pages: nothing is dropped at a page's end.
async fn revocation_feed_pages_hold_every_entry_once(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    let mut revoked = Vec::new();
    for n in 0..20 {
        let (session, _) = sessions
            .create(new_session(&format!("paged-{n}")), t0)
            .await
            .expect("create");
        assert!(sessions.revoke(&session.id, t0).await.expect("revoke"));
        revoked.push(session.id);
    }
    let mut expected = revoked.clone();
    expected.sort();
    for page in [1, 3, 7, 1000] {
        let feed: Vec<_> = feed_from(&sessions, t0 * 1000 - 1, page, t0 + 2)
            .await
            .into_iter()
            .filter(|r| r.session_id.as_ref().is_some_and(|id| revoked.contains(id)))
            .collect();
        assert!(
            feed.windows(2).all(|w| w[0].revoked_at_ms <= w[1].revoked_at_ms),
            "page size {page}: oldest first"
        );
        let mut ids: Vec<_> = feed.into_iter().filter_map(|r| r.session_id).collect();
        ids.sort();
        assert_eq!(ids, expected, "page size {page}: each once");
    }
}

async fn revoking_all_keeps_the_named_session(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    let user = format!("user-{}", rampart_testkit::unique_suffix());
    let mut ids = Vec::new();
    for offset in 0..3 {
        ids.push(
            sessions
                .create(new_session(&user), t0 + offset)
                .await
                .expect("create")
                .0
                .id,
        );
    }
    let listed: Vec<String> = sessions
        .list(&user, t0 + 3)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone(), ids[0].clone()], "newest first");
    assert_eq!(
        sessions.revoke_all(&user, Some(&ids[1]), t0 + 3).await.expect("revoke"),
        2
    );
    let left: Vec<String> = sessions
        .list(&user, t0 + 3)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [ids[1].clone()]);
}

/// The secret a rotation replaced, shown again within two seconds, is the same client racing
/// itself: refused, the session kept. Shown later, it is a stolen copy: the session is revoked.
async fn a_predecessor_is_a_race_within_the_grace_and_a_reuse_after_it(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    let (_, first) = sessions.create(new_session("racer"), t0).await.expect("create");
    let session = sessions.redeem(first.expose(), t0).await.expect("active");
    let (_, second) = sessions.rotate(session, t0).await.expect("rotate");
    assert!(matches!(
        sessions.redeem(first.expose(), t0 + 2).await,
        Err(RefreshError::Invalid)
    ));
    sessions
        .redeem(second.expose(), t0 + 2)
        .await
        .expect("the winner's session lives on");
    assert!(matches!(
        sessions.redeem(first.expose(), t0 + 3).await,
        Err(RefreshError::Reused { .. })
    ));
    assert!(matches!(
        sessions.redeem(second.expose(), t0 + 3).await,
        Err(RefreshError::Invalid)
    ));
}

/// Signing in past the cap ends the oldest sessions; revoking all writes one user-wide cutoff
/// that the feed carries and that ends every earlier session, the kept one excepted.
async fn a_user_holds_a_bounded_number_of_sessions_and_revoking_all_is_one_cutoff(store: Arc<dyn ItemStore>) {
    use rampart_auth_function::sessions::MAX_SESSIONS_PER_USER;
    let sessions = sessions(store);
    let t0 = now();
    let user = format!("capped{}", rampart_testkit::unique_suffix());
    let mut tokens = Vec::new();
    for n in 0..MAX_SESSIONS_PER_USER + 5 {
        let at = t0 + n as i64;
        tokens.push(sessions.create(new_session(&user), at).await.expect("create"));
    }
    let last = t0 + tokens.len() as i64;
    assert_eq!(
        sessions.list(&user, last).await.expect("list").len(),
        MAX_SESSIONS_PER_USER
    );
    for (n, (_, token)) in tokens.iter().enumerate() {
        let result = sessions.redeem(token.expose(), last).await;
        assert_eq!(result.is_ok(), n >= 5, "session {n}: {result:?}");
    }
    let (kept, _) = tokens.last().expect("sessions");
    let revoked = sessions
        .revoke_all(&user, Some(&kept.id), last + 1)
        .await
        .expect("revoke all");
    assert_eq!(revoked, MAX_SESSIONS_PER_USER - 1);
    for (session, token) in &tokens[..tokens.len() - 1] {
        assert!(
            sessions.redeem(token.expose(), last + 1).await.is_err(),
            "{}",
            session.id
        );
        assert!(sessions.is_cut_off(session).await.expect("cutoff"));
    }
    let kept_again = sessions.get(&kept.id).await.expect("store").expect("kept");
    assert!(!sessions.is_cut_off(&kept_again).await.expect("cutoff"));
    sessions
        .redeem(tokens.last().expect("kept").1.expose(), last + 1)
        .await
        .expect("the kept session lives on");
    let feed = feed_from(&sessions, 0, 1000, last + 1).await;
    let user_wide: Vec<_> = feed
        .iter()
        .filter(|r| r.user_id.as_deref() == Some(user.as_str()))
        .collect();
    assert_eq!(user_wide.len(), 1, "{feed:?}");
    assert_eq!(user_wide[0].except_session_id.as_deref(), Some(kept.id.as_str()));
}

/// The store holds a refresh token's SHA-256, never the token or its secret: a copy of the
/// table yields no usable refresh token.
async fn refresh_tokens_are_stored_only_as_hashes(store: Arc<dyn ItemStore>) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sessions = sessions(Arc::clone(&store));
    let t0 = now();
    let (session, first) = sessions.create(new_session("hashed"), t0).await.expect("create");
    let redeemed = sessions.redeem(first.expose(), t0).await.expect("active");
    let (_, second) = sessions.rotate(redeemed, t0).await.expect("rotate");
    let item = store
        .get(Table::Auth, &Key::new(format!("session#{}", session.id), "session"))
        .await
        .expect("read")
        .expect("the session item");
    let stored = item.body.to_string();
    for token in [&first, &second] {
        let secret = token.expose().split_once('.').expect("id.secret").1;
        assert!(!stored.contains(secret), "a refresh secret is stored: {stored}");
        let hash = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()));
        assert!(stored.contains(&hash), "its SHA-256 is what is kept");
    }
}

/// Presenting any of the last 32 replaced secrets, once past the race grace, is reuse and ends
/// the session; one replaced longer ago is forgotten, merely invalid, and ends nothing.
async fn every_remembered_secret_is_reuse_and_an_older_one_only_invalid(store: Arc<dyn ItemStore>) {
    let sessions = sessions(store);
    let t0 = now();
    for age in [1usize, 2, 17, 32, 33] {
        let (_, first) = sessions
            .create(new_session(&format!("rotator-{age}")), t0)
            .await
            .expect("create");
        let first = first.expose().to_owned();
        let mut current = first.clone();
        for _ in 0..age {
            let session = sessions.redeem(&current, t0).await.expect("active");
            current = sessions
                .rotate(session, t0)
                .await
                .expect("rotate")
                .1
                .expose()
                .to_owned();
        }
        let presented = sessions.redeem(&first, t0 + 3).await;
        let after = sessions.redeem(&current, t0 + 3).await;
        if age <= 32 {
            assert!(
                matches!(presented, Err(RefreshError::Reused { .. })),
                "age {age}: {presented:?}"
            );
            assert!(
                matches!(after, Err(RefreshError::Invalid)),
                "age {age}: the session ended"
            );
        } else {
            assert!(
                matches!(presented, Err(RefreshError::Invalid)),
                "age {age}: {presented:?}"
            );
            assert!(after.is_ok(), "age {age}: the session lives on");
        }
    }
}
