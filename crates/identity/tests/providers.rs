//! One contract for both identity adapters: the embedded one on a temporary SQLite file and the
//! Cognito one on moto. Each adapter's harness states what its backend really enforces, so a
//! lenient emulator is documented here rather than papered over. (The emailed codes are the
//! auth API's, tested there on both backends.)
//!
//! moto 5.2.5, read from `moto/cognitoidp/models.py`, differs from AWS in these ways:
//! - TOTP: `AssociateSoftwareToken` hands every user the same secret, and codes are checked only
//!   when the server runs with `MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true` (then for the current
//!   30-second step only, with no replay guard); otherwise any code passes. Both ways this suite
//!   gets a moto (`scripts/test`, and the testkit launcher) start it with that variable, so the
//!   contract asserts that moto refuses wrong codes: a moto started without it fails loudly.
//! - A used or unknown MFA `Session` gets `ResourceNotFoundException` (AWS: `NotAuthorized`).
//! - A disabled user is told so before the password is checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cognitoidentityprovider::Client;
use rampart_identity::cognito::provision_user_pool;
use rampart_identity::{
    CognitoIdentity, Email, EmbeddedIdentity, IdentityError, IdentityProvider, LoginOutcome, Password, ProviderSession,
    SignUpOutcome, UserStatus, totp,
};
use secrecy::ExposeSecret;

/// What a backend really enforces, where an emulator may be laxer than the real service.
#[derive(Debug, Clone, Copy)]
struct Enforces {
    /// Wrong TOTP codes are refused.
    totp_codes: bool,
    /// Steps either side of now whose TOTP code is accepted.
    totp_window_steps: u64,
    /// A TOTP code is accepted at most once.
    totp_replay_guard: bool,
    /// A used MFA challenge comes back as `ChallengeExpired` rather than just failing.
    precise_refusals: bool,
    /// A disabled account is reported as disabled only after a correct password.
    disabled_after_password: bool,
    /// The provider session carries a credential (Cognito's refresh token).
    session_credential: bool,
}

#[async_trait::async_trait]
trait Harness: Send + Sync {
    fn provider(&self) -> &dyn IdentityProvider;
    fn enforces(&self) -> Enforces;
    /// An administrator deletes the account.
    async fn delete(&self, email: &Email);
}

// --- the embedded adapter --------------------------------------------------------------------

struct Embedded {
    provider: EmbeddedIdentity,
    _dir: tempfile::TempDir,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = EmbeddedIdentity::open(&dir.path().join("identity.sqlite")).expect("open");
        Self { provider, _dir: dir }
    }
}

#[async_trait::async_trait]
impl Harness for Embedded {
    fn provider(&self) -> &dyn IdentityProvider {
        &self.provider
    }

    fn enforces(&self) -> Enforces {
        Enforces {
            totp_codes: true,
            totp_window_steps: totp::WINDOW_STEPS,
            totp_replay_guard: true,
            precise_refusals: true,
            disabled_after_password: true,
            session_credential: false,
        }
    }

    async fn delete(&self, email: &Email) {
        assert!(self.provider.delete_user(email).await.expect("delete"));
    }
}

// --- the Cognito adapter on moto -------------------------------------------------------------

struct Cognito {
    provider: CognitoIdentity,
    admin: Client,
    user_pool_id: String,
}

impl Cognito {
    async fn new() -> Self {
        let aws = rampart_testkit::aws().await;
        let admin = Client::new(&aws.config);
        let pool = provision_user_pool(&admin, &aws.prefix).await.expect("provision");
        assert!(pool.client_secret.is_some(), "the schema asks for a client secret");
        let provider = CognitoIdentity::new(
            Client::new(&aws.config),
            &pool.user_pool_id,
            &pool.client_id,
            pool.client_secret,
        );
        Self {
            provider,
            admin,
            user_pool_id: pool.user_pool_id,
        }
    }
}

#[async_trait::async_trait]
impl Harness for Cognito {
    fn provider(&self) -> &dyn IdentityProvider {
        &self.provider
    }

    fn enforces(&self) -> Enforces {
        Enforces {
            totp_codes: true,
            totp_window_steps: 0,
            totp_replay_guard: false,
            precise_refusals: false,
            disabled_after_password: false,
            session_credential: true,
        }
    }

    async fn delete(&self, email: &Email) {
        self.admin
            .admin_delete_user()
            .user_pool_id(&self.user_pool_id)
            .username(email.as_str())
            .send()
            .await
            .expect("delete");
    }
}

// --- helpers ---------------------------------------------------------------------------------

const PASSWORD: &str = "correct horse battery staple";

fn new_email() -> Email {
    Email::parse(&format!("ada-{}@example.com", rampart_testkit::unique_suffix())).expect("email")
}

fn password(text: &str) -> Password {
    Password::parse(text).expect("password")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Waits until at least `step` has begun and, when the backend accepts only the current step,
/// until there are a few seconds left in it.
async fn wait_for_step(step: u64) {
    while totp::step_at(unix_now()) < step || unix_now() % totp::STEP_SECS >= totp::STEP_SECS - 3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A six-digit code that is valid for none of the steps near now.
fn invalid_totp(key: &[u8]) -> String {
    let step = totp::step_at(unix_now());
    let valid: Vec<String> = (step.saturating_sub(2)..=step + 2)
        .map(|s| totp::code_for_step(key, s))
        .collect();
    (0..)
        .map(|n: u32| format!("{n:06}"))
        .find(|candidate| !valid.contains(candidate))
        .expect("some code is invalid")
}

fn expect_authenticated(outcome: LoginOutcome) -> ProviderSession {
    match outcome {
        LoginOutcome::Authenticated(session) => session,
        LoginOutcome::MfaRequired { .. } => panic!("expected a session, got an MFA challenge"),
    }
}

fn assert_err(result: Result<impl std::fmt::Debug, IdentityError>, expected: &str) {
    match result {
        Err(error) => assert_eq!(
            format!("{error:?}").split('(').next().unwrap_or_default(),
            expected,
            "{error:?}"
        ),
        Ok(value) => panic!("expected {expected}, got Ok({value:?})"),
    }
}

/// A confirmed account, signed in.
async fn confirmed_session(h: &dyn Harness) -> (Email, ProviderSession) {
    let email = new_email();
    let provider = h.provider();
    let SignUpOutcome::Created { user_id } = provider.sign_up(&email, &password(PASSWORD)).await.expect("sign up")
    else {
        panic!("a new address is created");
    };
    provider.confirm_user(&user_id).await.expect("confirm");
    let session = expect_authenticated(
        provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in"),
    );
    (email, session)
}

// --- the contract ----------------------------------------------------------------------------

async fn registration_and_sign_in(h: &dyn Harness) {
    let provider = h.provider();
    let enforces = h.enforces();
    let email = new_email();
    assert!(provider.find_user(&email).await.expect("lookup").is_none());

    // Unknown emails: sign-in fails like a wrong password; nothing to confirm.
    let unknown = provider.authenticate(&email, &password(PASSWORD)).await;
    assert_err(unknown, "InvalidCredentials");
    assert_err(provider.confirm_user("no-such-user").await, "InvalidCode");

    let SignUpOutcome::Created { user_id } = provider.sign_up(&email, &password(PASSWORD)).await.expect("sign up")
    else {
        panic!("first sign-up must create the user");
    };
    let user = provider.find_user(&email).await.expect("lookup").expect("found");
    assert_eq!(user.id, user_id);
    assert_eq!(user.status, UserStatus::Unconfirmed);
    // A second registration keeps the first one's password, and names the sign-up to re-mail.
    assert_eq!(
        provider
            .sign_up(&email, &password("someone else entirely"))
            .await
            .expect("repeat"),
        SignUpOutcome::AwaitingConfirmation {
            user_id: user_id.clone()
        }
    );

    // Unconfirmed: a wrong password is just wrong; only the right one learns it is unconfirmed.
    let wrong_password = provider.authenticate(&email, &password("someone else entirely")).await;
    assert_err(wrong_password, "InvalidCredentials");
    assert_err(provider.authenticate(&email, &password(PASSWORD)).await, "NotConfirmed");
    // An unproven address cannot have its password set.
    assert_err(
        provider.set_password(&user_id, &password("a thief's passphrase")).await,
        "InvalidCode",
    );

    provider.confirm_user(&user_id).await.expect("confirm");
    assert_err(provider.confirm_user(&user_id).await, "InvalidCode");
    let user = provider.find_user(&email).await.expect("lookup").expect("found");
    assert_eq!(user.status, UserStatus::Confirmed);
    // Registering a confirmed address is reported, for the auth API to tell its owner.
    assert_eq!(
        provider
            .sign_up(&email, &password("someone else entirely"))
            .await
            .expect("again"),
        SignUpOutcome::AlreadyRegistered
    );

    let session = expect_authenticated(
        provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in"),
    );
    assert_eq!(session.user, user);
    assert_eq!(session.credential.is_some(), enforces.session_credential);

    // Wrong password and unknown email give the same error, and the same words.
    let wrong_password = provider
        .authenticate(&email, &password("not the right password"))
        .await
        .expect_err("wrong password");
    let unknown = provider
        .authenticate(&new_email(), &password(PASSWORD))
        .await
        .expect_err("unknown email");
    assert!(matches!(wrong_password, IdentityError::InvalidCredentials));
    assert!(matches!(unknown, IdentityError::InvalidCredentials));
    assert_eq!(wrong_password.to_string(), unknown.to_string());

    assert_eq!(
        provider.current_user(&session.user.id).await.expect("current user"),
        Some(user)
    );
}

async fn password_reset_and_change(h: &dyn Harness) {
    let provider = h.provider();
    let (email, session) = confirmed_session(h).await;
    let new_password = password("a brand new passphrase");

    // The auth API has checked the reset code: the provider sets the new password.
    provider
        .set_password(&session.user.id, &new_password)
        .await
        .expect("set password");
    assert_err(
        provider.authenticate(&email, &password(PASSWORD)).await,
        "InvalidCredentials",
    );
    expect_authenticated(
        provider
            .authenticate(&email, &new_password)
            .await
            .expect("sign in with the new password"),
    );
    assert_err(
        provider.set_password("no-such-user", &new_password).await,
        "InvalidCode",
    );

    // Changing the password needs the current one.
    let changed = password("the third passphrase");
    assert_err(
        provider.change_password(&session, &password(PASSWORD), &changed).await,
        "InvalidCredentials",
    );
    provider
        .change_password(&session, &new_password, &changed)
        .await
        .expect("change password");
    assert_err(provider.authenticate(&email, &new_password).await, "InvalidCredentials");
    expect_authenticated(
        provider
            .authenticate(&email, &changed)
            .await
            .expect("sign in with the changed password"),
    );
}

async fn totp_mfa(h: &dyn Harness) {
    let provider = h.provider();
    let enforces = h.enforces();
    let (email, session) = confirmed_session(h).await;

    let enrolment = provider.begin_totp_enrolment(&session).await.expect("begin enrolment");
    let secret = enrolment.secret.expose_secret();
    let key = totp::base32_decode(secret).expect("the secret is base32");
    let uri = enrolment.otpauth_uri.expose_secret();
    let account = email.as_str().replace('@', "%40");
    assert!(
        uri.starts_with(&format!(
            "otpauth://totp/Rampart:{account}?secret={secret}&issuer=Rampart"
        )),
        "{uri}"
    );
    assert!(uri.ends_with("&algorithm=SHA1&digits=6&period=30"), "{uri}");

    // Nothing changes until the enrolment is confirmed.
    expect_authenticated(
        provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in"),
    );
    if enforces.totp_codes {
        assert_err(
            provider.confirm_totp_enrolment(&session, &invalid_totp(&key)).await,
            "InvalidCode",
        );
    }
    wait_for_step(0).await;
    let enrolled_at = unix_now();
    let enrolment_code = totp::code_at(&key, enrolled_at);
    provider
        .confirm_totp_enrolment(&session, &enrolment_code)
        .await
        .expect("confirm enrolment");

    // Now the password alone is not enough.
    let outcome = provider
        .authenticate(&email, &password(PASSWORD))
        .await
        .expect("sign in");
    let LoginOutcome::MfaRequired { challenge } = outcome else {
        panic!("TOTP is on: sign-in must ask for a code");
    };
    let challenge = challenge.expose_secret().to_owned();
    if enforces.totp_codes {
        assert_err(
            provider.answer_mfa(&email, &challenge, &invalid_totp(&key)).await,
            "InvalidCode",
        );
    }
    if enforces.totp_replay_guard {
        assert_err(
            provider.answer_mfa(&email, &challenge, &enrolment_code).await,
            "InvalidCode",
        );
    }
    // The code the authenticator shows by now. With a replay guard the enrolment code's step is
    // spent, so it is the next step's code (which a ±1 window already accepts); without one
    // (moto) the current code works, taken well inside its step since moto checks only that one.
    let answer_step = if enforces.totp_replay_guard {
        let next = totp::step_at(enrolled_at) + 1;
        if enforces.totp_window_steps == 0 {
            wait_for_step(next).await;
        }
        next
    } else {
        wait_for_step(0).await;
        totp::step_at(unix_now())
    };
    let mfa_session = provider
        .answer_mfa(&email, &challenge, &totp::code_for_step(&key, answer_step))
        .await
        .expect("answer MFA");
    assert_eq!(mfa_session.user, session.user);
    assert_eq!(mfa_session.credential.is_some(), enforces.session_credential);
    // A challenge is answered once.
    let again = provider
        .answer_mfa(&email, &challenge, &totp::code_for_step(&key, answer_step))
        .await;
    if enforces.precise_refusals {
        assert_err(again, "ChallengeExpired");
    } else {
        assert!(again.is_err(), "moto: ResourceNotFoundException");
    }
    assert_eq!(
        provider.current_user(&mfa_session.user.id).await.expect("current user"),
        Some(session.user.clone())
    );

    // Turning TOTP off restores password-only sign-in.
    provider.disable_totp(&mfa_session).await.expect("disable TOTP");
    expect_authenticated(
        provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in"),
    );
}

async fn disabled_and_deleted_accounts(h: &dyn Harness) {
    let provider = h.provider();
    let (email, session) = confirmed_session(h).await;
    let disabled = provider
        .disable_user(&email)
        .await
        .expect("disable")
        .expect("the account exists");
    assert_eq!(
        (disabled.id.as_str(), disabled.status),
        (session.user.id.as_str(), UserStatus::Disabled)
    );
    assert_eq!(
        provider.disable_user(&new_email()).await.expect("disable unknown"),
        None
    );
    let current = provider
        .current_user(&session.user.id)
        .await
        .expect("current user")
        .expect("still exists");
    assert_eq!(current.status, UserStatus::Disabled);
    assert_err(provider.authenticate(&email, &password(PASSWORD)).await, "Disabled");
    let wrong_password = provider.authenticate(&email, &password("not the right password")).await;
    if h.enforces().disabled_after_password {
        assert_err(wrong_password, "InvalidCredentials");
    } else {
        assert_err(wrong_password, "Disabled");
    }

    let (email, session) = confirmed_session(h).await;
    h.delete(&email).await;
    assert_eq!(
        provider.current_user(&session.user.id).await.expect("current user"),
        None
    );
    assert_eq!(provider.find_user(&email).await.expect("lookup"), None);
    assert_err(
        provider.authenticate(&email, &password(PASSWORD)).await,
        "InvalidCredentials",
    );
}

macro_rules! contract {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&super::Embedded::new()).await;
                }
            )*
        }
        mod cognito {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&super::Cognito::new().await).await;
                }
            )*
        }
    };
}

contract!(
    registration_and_sign_in,
    password_reset_and_change,
    totp_mfa,
    disabled_and_deleted_accounts,
);

// --- stricter guarantees of the embedded adapter ---------------------------------------------

#[tokio::test]
async fn embedded_mfa_challenges_are_bound_to_their_user_and_burnt_after_five_wrong_codes() {
    let h = Embedded::new();
    let provider = h.provider();
    let (email, session) = confirmed_session(&h).await;
    let enrolment = provider.begin_totp_enrolment(&session).await.expect("begin");
    let key = totp::base32_decode(enrolment.secret.expose_secret()).expect("base32");
    assert_eq!(key.len(), totp::SECRET_BYTES, "160-bit secret");
    let now = unix_now();
    provider
        .confirm_totp_enrolment(&session, &totp::code_at(&key, now))
        .await
        .expect("confirm");
    let start = || async {
        match provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in")
        {
            LoginOutcome::MfaRequired { challenge } => challenge.expose_secret().to_owned(),
            LoginOutcome::Authenticated(_) => panic!("MFA is on"),
        }
    };
    let next = totp::code_at(&key, now + totp::STEP_SECS);

    // Another account cannot spend this challenge.
    let challenge = start().await;
    let (other, _) = confirmed_session(&h).await;
    assert_err(provider.answer_mfa(&other, &challenge, &next).await, "ChallengeExpired");
    assert_err(
        provider.answer_mfa(&email, "not-a-challenge", &next).await,
        "ChallengeExpired",
    );

    for _ in 0..5 {
        assert_err(
            provider.answer_mfa(&email, &challenge, &invalid_totp(&key)).await,
            "InvalidCode",
        );
    }
    assert_err(provider.answer_mfa(&email, &challenge, &next).await, "ChallengeExpired");
    // A fresh challenge still takes the code, which was never accepted.
    let challenge = start().await;
    provider.answer_mfa(&email, &challenge, &next).await.expect("answer");
    // And that code is now spent for every later challenge.
    let challenge = start().await;
    assert_err(provider.answer_mfa(&email, &challenge, &next).await, "InvalidCode");
}

#[tokio::test]
async fn embedded_enrolment_needs_a_code_from_the_new_secret() {
    let h = Embedded::new();
    let provider = h.provider();
    let (email, session) = confirmed_session(&h).await;
    assert_err(provider.confirm_totp_enrolment(&session, "123456").await, "InvalidCode");
    let first = provider.begin_totp_enrolment(&session).await.expect("begin");
    let second = provider.begin_totp_enrolment(&session).await.expect("begin again");
    assert_ne!(first.secret.expose_secret(), second.secret.expose_secret());
    let first_key = totp::base32_decode(first.secret.expose_secret()).expect("base32");
    let second_key = totp::base32_decode(second.secret.expose_secret()).expect("base32");
    let now = unix_now();
    // Only the latest enrolment counts.
    if totp::code_at(&first_key, now) != totp::code_at(&second_key, now) {
        assert_err(
            provider
                .confirm_totp_enrolment(&session, &totp::code_at(&first_key, now))
                .await,
            "InvalidCode",
        );
    }
    provider
        .confirm_totp_enrolment(&session, &totp::code_at(&second_key, now))
        .await
        .expect("confirm");
    assert!(matches!(
        provider.authenticate(&email, &password(PASSWORD)).await,
        Ok(LoginOutcome::MfaRequired { .. })
    ));
}

#[tokio::test]
async fn embedded_sessions_of_deleted_or_disabled_users_stop_working() {
    let h = Embedded::new();
    let provider = h.provider();
    let (email, session) = confirmed_session(&h).await;
    provider.disable_user(&email).await.expect("disable");
    assert_err(provider.begin_totp_enrolment(&session).await, "Disabled");
    assert_err(
        provider
            .change_password(&session, &password(PASSWORD), &password("another passphrase"))
            .await,
        "Disabled",
    );
    let (email, session) = confirmed_session(&h).await;
    h.delete(&email).await;
    assert_err(provider.begin_totp_enrolment(&session).await, "SessionInvalid");
    assert_err(provider.disable_totp(&session).await, "SessionInvalid");
}

/// A user an administrator created in Cognito (`FORCE_CHANGE_PASSWORD`, a temporary password)
/// counts as confirmed: a registration of the address is reported, not sent a code Cognito
/// would refuse to confirm, and a password reset (the auth API checks the mailed code) sets a
/// password they then sign in with.
#[tokio::test]
async fn a_user_an_administrator_created_can_reset_their_password_and_sign_in() {
    let h = Cognito::new().await;
    let email = new_email();
    let attribute = aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
        .name("email")
        .value(email.as_str())
        .build()
        .expect("attribute");
    h.admin
        .admin_create_user()
        .user_pool_id(&h.user_pool_id)
        .username(email.as_str())
        .user_attributes(attribute)
        .temporary_password("a temporary passphrase")
        .send()
        .await
        .expect("admin create");
    let provider = h.provider();
    let user = provider.find_user(&email).await.expect("lookup").expect("found");
    assert_eq!(user.status, UserStatus::Confirmed);
    assert_eq!(
        provider.sign_up(&email, &password(PASSWORD)).await.expect("sign up"),
        SignUpOutcome::AlreadyRegistered
    );
    assert_err(provider.confirm_user(&user.id).await, "InvalidCode");
    provider
        .set_password(&user.id, &password(PASSWORD))
        .await
        .expect("reset");
    expect_authenticated(
        provider
            .authenticate(&email, &password(PASSWORD))
            .await
            .expect("sign in with the password they set"),
    );
}

/// Provisioning again finds the pool and the app client it made, each past the first page of
/// its listing (61 other pools, then 61 other clients, come before them), and makes no second.
#[tokio::test]
async fn cognito_pool_provisioning_is_idempotent() {
    let aws = rampart_testkit::aws().await;
    let client = Client::new(&aws.config);
    for n in 0..61 {
        client
            .create_user_pool()
            .pool_name(format!("{}-other-{n}", aws.prefix))
            .send()
            .await
            .expect("another pool");
    }
    let pool = provision_user_pool(&client, &aws.prefix).await.expect("provision");
    let made = client
        .describe_user_pool_client()
        .user_pool_id(&pool.user_pool_id)
        .client_id(&pool.client_id)
        .send()
        .await
        .expect("describe the client");
    let client_name = made.user_pool_client().and_then(|c| c.client_name()).expect("name");
    // The client again, after 61 others: listed in the order made, it is on the second page.
    client
        .delete_user_pool_client()
        .user_pool_id(&pool.user_pool_id)
        .client_id(&pool.client_id)
        .send()
        .await
        .expect("delete the client");
    for n in 0..61 {
        client
            .create_user_pool_client()
            .user_pool_id(&pool.user_pool_id)
            .client_name(format!("other-{n}"))
            .send()
            .await
            .expect("another client");
    }
    let remade = client
        .create_user_pool_client()
        .user_pool_id(&pool.user_pool_id)
        .client_name(client_name)
        .send()
        .await
        .expect("the client again");
    let remade = remade.user_pool_client().and_then(|c| c.client_id()).expect("id");

    let again = provision_user_pool(&client, &aws.prefix).await.expect("re-provision");
    assert_eq!(
        (again.user_pool_id.as_str(), again.client_id.as_str()),
        (pool.user_pool_id.as_str(), remade)
    );
}
