//! The embedded adapter's own guarantees, beyond the contract both adapters pass.

use rampart_kernel::now_unix as now;

use secrecy::ExposeSecret;

use super::*;
use crate::{IdentityProvider, LoginOutcome, ProviderSession, SignUpOutcome, totp};

fn email(name: &str) -> Email {
    Email::parse(&format!("{name}@example.com")).expect("email")
}

fn password(text: &str) -> Password {
    Password::parse(text).expect("password")
}

fn open(dir: &tempfile::TempDir) -> EmbeddedIdentity {
    EmbeddedIdentity::open(&dir.path().join("identity.sqlite")).expect("open")
}

async fn sql(store: &EmbeddedIdentity, statement: &'static str) {
    store
        .run(move |c| c.execute_batch(statement).map_err(unavailable))
        .await
        .expect("sql");
}

/// Signs up an address new to the store with `words` and returns the user's id.
async fn created(store: &EmbeddedIdentity, email: &Email, words: &str) -> String {
    match store.sign_up(email, &password(words)).await.expect("sign up") {
        SignUpOutcome::Created { user_id } => user_id,
        other => panic!("a new address is created, not {other:?}"),
    }
}

/// Signs in with `words`: `Ok(true)` signed in, `Ok(false)` asked for a second factor.
async fn signs_in(store: &EmbeddedIdentity, email: &Email, words: &str) -> Result<bool, IdentityError> {
    let outcome = store.authenticate(email, &password(words)).await?;
    Ok(matches!(outcome, LoginOutcome::Authenticated(_)))
}

async fn signed_in(store: &EmbeddedIdentity, email: &Email) -> ProviderSession {
    let user_id = created(store, email, "correct horse battery").await;
    store.confirm_user(&user_id).await.expect("confirm");
    match store
        .authenticate(email, &password("correct horse battery"))
        .await
        .expect("sign in")
    {
        LoginOutcome::Authenticated(session) => session,
        LoginOutcome::MfaRequired { .. } => panic!("no MFA yet"),
    }
}

#[tokio::test]
async fn stored_hash_is_argon2id_with_owasp_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("ada");
    store
        .sign_up(&email, &password("correct horse battery"))
        .await
        .expect("sign up");
    let hash: String = store
        .run(|c| {
            c.query_row("SELECT password_hash FROM users", [], |r| r.get(0))
                .map_err(unavailable)
        })
        .await
        .expect("hash");
    let parsed = argon2::PasswordHash::new(&hash).expect("PHC string");
    assert_eq!(parsed.algorithm.as_str(), "argon2id");
    assert_eq!(parsed.params.get_decimal("m"), Some(19 * 1024));
    assert_eq!(parsed.params.get_decimal("t"), Some(2));
    assert_eq!(parsed.params.get_decimal("p"), Some(1));
    assert!(!hash.contains("horse"));
    // The dummy hash verified for unknown emails costs exactly as much.
    let dummy = argon2::PasswordHash::new(dummy_hash()).expect("dummy PHC string");
    assert_eq!(dummy.algorithm, parsed.algorithm);
    assert_eq!(dummy.params, parsed.params);
}

#[tokio::test]
async fn the_database_file_is_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    open(&dir);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("identity.sqlite"))
        .expect("db")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn an_unconfirmed_sign_up_expires_and_frees_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("squatted");
    let squatter = created(&store, &email, "squatter chosen words").await;
    // Within the day the address stays taken...
    assert_eq!(
        store
            .sign_up(&email, &password("owner chosen words"))
            .await
            .expect("again"),
        SignUpOutcome::AwaitingConfirmation {
            user_id: squatter.clone()
        }
    );
    // ...after it, the unconfirmed sign-up is gone (not found, not confirmable) and the
    // owner can register.
    sql(&store, "UPDATE users SET created_at = created_at - 86400").await;
    assert_eq!(store.find_user(&email).await.expect("find"), None);
    assert!(matches!(
        store.confirm_user(&squatter).await,
        Err(IdentityError::InvalidCode)
    ));
    // The expired sign-up freed the address.
    let owner = created(&store, &email, "owner chosen words").await;
    assert_ne!(owner, squatter);
    store.confirm_user(&owner).await.expect("confirm");
    assert!(signs_in(&store, &email, "owner chosen words").await.expect("signed in"));
    assert!(matches!(
        signs_in(&store, &email, "squatter chosen words").await,
        Err(IdentityError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn registering_a_confirmed_address_is_reported_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("taken");
    signed_in(&store, &email).await;
    assert_eq!(
        store
            .sign_up(&email, &password("someone else entirely"))
            .await
            .expect("sign up"),
        SignUpOutcome::AlreadyRegistered
    );
    // The notice is the auth API's to send; the password stands.
    assert!(matches!(
        signs_in(&store, &email, "someone else entirely").await,
        Err(IdentityError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn confirming_and_setting_a_password_need_the_right_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("ada");
    let user_id = created(&store, &email, "correct horse battery").await;
    // No password reset before the address is proven.
    assert!(matches!(
        store.set_password(&user_id, &password("a new long password")).await,
        Err(IdentityError::InvalidCode)
    ));
    store.confirm_user(&user_id).await.expect("confirm");
    assert!(matches!(
        store.confirm_user(&user_id).await,
        Err(IdentityError::InvalidCode)
    ));
    store
        .set_password(&user_id, &password("a new long password"))
        .await
        .expect("set");
    assert!(
        signs_in(&store, &email, "a new long password")
            .await
            .expect("signed in")
    );
    store.disable_user(&email).await.expect("disable");
    assert!(matches!(
        store.set_password(&user_id, &password("the thief's password")).await,
        Err(IdentityError::InvalidCode)
    ));
    assert!(matches!(
        store
            .set_password("no-such-user", &password("the thief's password"))
            .await,
        Err(IdentityError::InvalidCode)
    ));
}

#[tokio::test]
async fn expired_mfa_challenges_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("ada");
    let session = signed_in(&store, &email).await;
    let enrolment = store.begin_totp_enrolment(&session).await.expect("begin");
    let key = totp::base32_decode(enrolment.secret.expose_secret()).expect("base32");
    let now = now() as u64;
    store
        .confirm_totp_enrolment(&session, &totp::code_at(&key, now))
        .await
        .expect("confirm");
    let LoginOutcome::MfaRequired { challenge } = store
        .authenticate(&email, &password("correct horse battery"))
        .await
        .expect("sign in")
    else {
        panic!("MFA is on");
    };
    sql(&store, "UPDATE mfa_challenges SET expires_at = expires_at - 300").await;
    assert!(matches!(
        store
            .answer_mfa(&email, challenge.expose_secret(), &totp::code_at(&key, now + 30))
            .await,
        Err(IdentityError::ChallengeExpired)
    ));
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything this test binary logs, from a global subscriber: a scoped one would miss
/// events whose callsites other tests' threads registered first.
fn captured_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(captured.clone())
            .with_ansi(false)
            .without_time()
            // Span fields are where a leak would hide: print every span as it closes.
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

#[tokio::test]
async fn logs_never_hold_a_password_secret_or_token() {
    let captured = captured_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("logged-ada");
    let mut secrets = vec!["correct horse battery".to_owned()];
    let session = signed_in(&store, &email).await;
    store
        .set_password(&session.user.id, &password("another horse battery"))
        .await
        .expect("set");
    secrets.push("another horse battery".to_owned());
    store
        .set_password(&session.user.id, &password("correct horse battery"))
        .await
        .expect("set back");
    let enrolment = store.begin_totp_enrolment(&session).await.expect("begin");
    let key = totp::base32_decode(enrolment.secret.expose_secret()).expect("base32");
    let now = now() as u64;
    let code = totp::code_at(&key, now);
    store.confirm_totp_enrolment(&session, &code).await.expect("confirm");
    let LoginOutcome::MfaRequired { challenge } = store
        .authenticate(&email, &password("correct horse battery"))
        .await
        .expect("sign in")
    else {
        panic!("MFA is on");
    };
    let next = totp::code_at(&key, now + 30);
    store
        .answer_mfa(&email, challenge.expose_secret(), &next)
        .await
        .expect("answer");
    secrets.extend([
        enrolment.secret.expose_secret().to_owned(),
        challenge.expose_secret().to_owned(),
        code,
        next,
    ]);

    let logs = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert!(
        logs.contains("identity.set_password"),
        "the spans were captured: {logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn deleting_a_user_removes_their_factor_and_challenges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let email = email("ada");
    let session = signed_in(&store, &email).await;
    store.begin_totp_enrolment(&session).await.expect("begin");
    assert!(store.delete_user(&email).await.expect("delete"));
    let left: i64 = store
        .run(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM totp_factors) + (SELECT COUNT(*) FROM mfa_challenges)",
                [],
                |r| r.get(0),
            )
            .map_err(unavailable)
        })
        .await
        .expect("count");
    assert_eq!(left, 0);
    assert!(!store.delete_user(&email).await.expect("delete again"));
}
