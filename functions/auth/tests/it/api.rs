//! The auth API over real HTTP on loopback, against both stacks: the embedded one (SQLite
//! identity and store, local key) and the AWS one on moto (Cognito, DynamoDB, KMS). Every
//! scenario runs on both; where moto is laxer than AWS, the harness says so.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_auth_function::audit::{AuditLog, EventKind, Outcome};
use rampart_auth_function::sessions::Sessions;
use rampart_auth_function::{App, Backends, router};
use rampart_identity::{Email, IdentityError, IdentityProvider, ProviderSession, totp};
use rampart_kernel::metrics::Registry;
use rampart_kernel::{Backend, Settings};
use rampart_seal::Sealer;
use rampart_store::ItemStore;
use rampart_testkit::unique_suffix;
use rampart_tokens::Jwk;
use rampart_tokens::jwt::{self, KeySet, Validation};
use serde_json::{Value, json};

const PASSWORD: &str = "violet kettle harbour";
const NEW_PASSWORD: &str = "amber lantern meadow";

enum Identity {
    Embedded,
    Cognito,
}

struct Stack {
    base: String,
    http: reqwest::Client,
    identity: Identity,
    provider: Arc<dyn IdentityProvider>,
    backends: Backends,
    store: Arc<dyn ItemStore>,
    sealer: Arc<dyn Sealer>,
    settings: Settings,
    /// The registry the API counts into, as an admin listener would render it.
    metrics: Registry,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Stack {
    async fn embedded() -> Self {
        Self::embedded_with(behind_a_local_proxy()).await
    }

    async fn embedded_with(http: rampart_kernel::config::HttpSettings) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            http,
            mail: without_answer_floor(),
            ..rampart_testkit::embedded_settings(dir.path())
        };
        let backends = Backends::connect(&settings, None).await.expect("embedded backends");
        Self::serve(backends, settings, Identity::Embedded, dir).await
    }

    /// The AWS adapters on moto, connected as `backend = "aws"` connects them, to resources
    /// provisioned for this test alone; mail still goes to the outbox (SES is tested in
    /// crates/mailer).
    async fn cognito() -> Self {
        let aws = rampart_testkit::aws().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let made = Backends::provision(&aws.config, &aws.prefix).await.expect("provision");
        let mut settings = Settings {
            backend: Backend::Aws,
            resource_prefix: aws.prefix.clone(),
            http: behind_a_local_proxy(),
            mail: without_answer_floor(),
            ..rampart_testkit::embedded_settings(dir.path())
        };
        settings.aws.user_pool_id = Some(made.pool.user_pool_id);
        settings.aws.user_pool_client_id = Some(made.pool.client_id);
        // Required of an AWS deployment, though this stack's mail goes to the outbox.
        settings.mail.sender = Some("auth@example.com".into());
        let backends = Backends {
            mailer: Arc::new(rampart_mailer::OutboxMailer::new(dir.path().join("outbox.log"))),
            ..Backends::connect(&settings, Some(&aws.config))
                .await
                .expect("AWS backends")
        };
        Self::serve(backends, settings, Identity::Cognito, dir).await
    }

    async fn serve(backends: Backends, settings: Settings, identity: Identity, dir: tempfile::TempDir) -> Self {
        let provider = Arc::clone(&backends.identity);
        let store = Arc::clone(&backends.store);
        let sealer = Arc::clone(&backends.sealer);
        let metrics = Registry::default();
        let app = router(backends.clone(), &settings, &metrics);
        // Served until the test process ends.
        let addr = rampart_testkit::spawn(app, &settings.http, &Default::default()).await;
        let base = format!("http://{addr}");
        Self {
            base,
            http: reqwest::Client::new(),
            identity,
            provider,
            backends,
            store,
            sealer,
            settings,
            metrics,
            dir,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("JSON body: {bytes:?}"))
        };
        Reply { status, headers, body }
    }

    /// A POST from `client`, as the trusted proxy on loopback would forward it.
    async fn post_from(&self, client: &str, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("x-forwarded-for", client)
                .json(&body),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn post_as(&self, token: &str, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.post(format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token))
            .await
    }

    async fn delete_as(&self, token: &str, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.base)).bearer_auth(token))
            .await
    }

    /// Sends the same POST `count` times at once; returns the statuses and JSON bodies.
    async fn concurrently(&self, count: usize, path: &str, body: Value) -> Vec<(u16, Value)> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..count {
            let request = self.http.post(format!("{}{path}", self.base)).json(&body);
            set.spawn(async move {
                let response = request.send().await.expect("request");
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            });
        }
        set.join_all().await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// Signed in with `tokens`, changes the password from `current` to `new`, then signs out
    /// everywhere.
    async fn change_password_and_sign_out_everywhere(&self, tokens: &Value, current: &str, new: &str) {
        let change = json!({"current_password": current, "new_password": new});
        let reply = self
            .post_as(token(tokens), "/v1/auth/password/change", Some(change))
            .await;
        assert_eq!(reply.status, 204, "{reply:?}");
        let reply = self.post_as(token(tokens), "/v1/auth/logout/all", None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
    }

    /// Resets the password as its owner would: forgot, then the mailed code. Returns the code.
    async fn reset_password(&self, email: &str, new_password: &str) -> String {
        let forgot = self.post("/v1/auth/password/forgot", json!({"email": email})).await;
        assert_eq!(forgot.status, 202, "{forgot:?}");
        let code = self.reset_code(email);
        let reset = json!({"email": email, "code": code, "new_password": new_password});
        let reply = self.post("/v1/auth/password/reset", reset).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        code
    }

    /// The latest confirmation code mailed to `email`, as its owner would read it.
    fn confirmation_code(&self, email: &str) -> String {
        self.mailed_code(email, "confirm_sign_up")
    }

    fn reset_code(&self, email: &str) -> String {
        self.mailed_code(email, "reset_password")
    }

    fn outbox(&self) -> std::path::PathBuf {
        self.dir.path().join(rampart_mailer::outbox::OUTBOX_FILE)
    }

    fn mailed_code(&self, email: &str, purpose: &str) -> String {
        rampart_testkit::outbox_code(&self.outbox(), email, purpose).expect("code in outbox")
    }

    /// The account disabled at the provider alone, as an administrator working in Cognito's
    /// console would, without Rampart's part (`App::disable_user`).
    async fn disable_at_provider(&self, email: &str) {
        let email = Email::parse(email).expect("email");
        let user = self.provider.disable_user(&email).await.expect("disable");
        assert!(user.is_some(), "the account exists");
    }

    /// The security notices mailed to `email`, oldest first, by their outbox `purpose`.
    fn notices(&self, email: &str) -> Vec<String> {
        let outbox = std::fs::read_to_string(self.outbox()).unwrap_or_default();
        let prefix = format!("to={email} purpose=");
        outbox
            .lines()
            .filter(|line| line.contains(" subject="))
            .filter_map(|line| line.split_once(&prefix))
            .filter_map(|(_, rest)| rest.split(' ').next().map(str::to_owned))
            .collect()
    }

    /// The auth API's own handle on this stack's backends, for what an administrator does.
    fn app(&self) -> App {
        App::new(self.backends.clone(), &self.settings, &Default::default())
    }

    /// The TOTP code to answer with after enrolling at `enrolled_step`. The embedded provider
    /// refuses a replayed code, so the next step's (inside its ±1 window); moto checks only the
    /// current step, so the current code with a few seconds to spare.
    async fn next_totp(&self, key: &[u8], enrolled_step: u64) -> String {
        match self.identity {
            Identity::Embedded => totp::code_for_step(key, enrolled_step + 1),
            Identity::Cognito => {
                settle_in_step().await;
                totp::code_at(key, unix_now())
            }
        }
    }

    /// A registered, confirmed account.
    async fn user(&self) -> String {
        let email = format!("u{}@example.com", unique_suffix());
        let reply = self
            .post("/v1/auth/register", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
        let code = self.confirmation_code(&email);
        let reply = self
            .post("/v1/auth/confirm", json!({"email": email, "code": code}))
            .await;
        assert_eq!(reply.status, 204, "{reply:?}");
        email
    }

    /// Signs in without MFA and returns the token response.
    async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .post("/v1/auth/login", json!({"email": email, "password": password}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["status"], "authenticated", "{reply:?}");
        assert_eq!(reply.headers["cache-control"], "no-store");
        reply.body
    }

    async fn refresh(&self, refresh_token: &Value) -> Reply {
        self.post("/v1/auth/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    async fn audit_kinds(&self, user_id: &str) -> Vec<(EventKind, Outcome)> {
        AuditLog::new(Arc::clone(&self.store), self.settings.audit.retention_days)
            .for_user(user_id, 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| (e.kind, e.outcome))
            .collect()
    }

    /// The provider session a Rampart session keeps (Cognito's refresh token; none embedded).
    async fn provider_session(&self, tokens: &Value) -> ProviderSession {
        let id = tokens["session_id"].as_str().expect("session id");
        let sessions = self.sessions();
        let session = sessions.get(id).await.expect("store").expect("session");
        let user = self
            .provider
            .find_user(&Email::parse(&session.email).expect("email"))
            .await
            .expect("identity")
            .expect("user");
        ProviderSession {
            user,
            credential: sessions.provider_credential(&session).await.expect("credential opens"),
        }
    }

    /// After signing out everywhere: the revoked session no longer keeps the provider's
    /// credential, and the credential it kept (`before`) no longer works at the provider.
    async fn assert_signed_out_at_provider(&self, tokens: &Value, before: &ProviderSession) {
        let after = self.provider_session(tokens).await;
        assert!(
            after.credential.is_none(),
            "a revoked session keeps no provider credential"
        );
        if let Identity::Cognito = self.identity {
            assert!(
                before.credential.is_some(),
                "a Cognito session keeps Cognito's refresh token"
            );
            let refused = self.provider.begin_totp_enrolment(before).await;
            assert!(
                matches!(refused, Err(IdentityError::SessionInvalid)),
                "Cognito's refresh token was revoked: {refused:?}"
            );
        }
    }

    fn sessions(&self) -> Sessions {
        Sessions::new(Arc::clone(&self.store), Arc::clone(&self.sealer), &self.settings)
    }

    /// Verifies an access token the way an independent relying party would: only the JWKS.
    async fn verify(&self, access_token: &str) -> jwt::AccessClaims {
        let jwks = self.get("/.well-known/jwks.json").await;
        let keys: Vec<Jwk> = serde_json::from_value(jwks.body["keys"].clone()).expect("JWKS");
        let validation = Validation {
            issuer: self.settings.tokens.issuer.clone(),
            audience: self.settings.tokens.audience.clone(),
            leeway_secs: 0,
            max_token_bytes: 8192,
        };
        jwt::verify(access_token, &KeySet::new(keys), &validation, unix_now() as i64).expect("token verifies")
    }
}

/// The auth API as deployed behind a proxy: the tests' loopback peer is that proxy, so a
/// test chooses its client's address with `X-Forwarded-For`.
fn behind_a_local_proxy() -> rampart_kernel::config::HttpSettings {
    rampart_kernel::config::HttpSettings {
        trusted_proxies: rampart_kernel::forwarded::TrustedProxies::loopback(),
        ..Default::default()
    }
}

/// The scenarios here run without `mail.answer_floor_ms`: it would only slow them (and stretch
/// the throttling scenarios past their windows). The floor is on by default and tested on its
/// own, with its default, in `whether_mail_was_sent_does_not_show_in_how_long_an_answer_takes`.
fn without_answer_floor() -> rampart_kernel::config::MailSettings {
    rampart_kernel::config::MailSettings {
        answer_floor_ms: 0,
        ..Default::default()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Waits until at least three seconds remain in the current TOTP step.
async fn settle_in_step() {
    while unix_now() % totp::STEP_SECS >= totp::STEP_SECS - 3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn token(value: &Value) -> &str {
    value["access_token"].as_str().expect("access token")
}

/// The value of one series in the registry the stack's API counts into; 0 when absent.
fn counted(metrics: &Registry, series: &str) -> u64 {
    let text = metrics.render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The security counters move with what happens: a sign-in by outcome, a throttled attempt,
/// refresh-token reuse (a revocation), a mailed code; and every request counts by matched route.
#[tokio::test]
async fn security_counters_move_with_sign_ins_failures_and_refresh_reuse() {
    let stack = Stack::embedded().await;
    let metrics = &stack.metrics;
    let series = |kind: &str, outcome: &str, reason: &str| {
        format!(r#"rampart_auth_events_total{{kind="{kind}",outcome="{outcome}",reason="{reason}"}}"#)
    };
    let signed_in = series("login", "success", "");
    let refused = series("login", "failure", "invalid_credentials");
    let throttled = series("login", "throttled", "throttled");
    let reused = series("refresh_token_reuse", "failure", "");
    let codes = r#"rampart_auth_codes_sent_total{purpose="confirm_sign_up"}"#;

    let email = stack.user().await;
    assert_eq!(counted(metrics, codes), 1);
    let first = stack.login(&email, PASSWORD).await;
    assert_eq!(counted(metrics, &signed_in), 1);

    // An owner revoking another of their sessions: counted, and the session's id kept out.
    let current = stack.login(&email, PASSWORD).await;
    let other = stack.login(&email, PASSWORD).await;
    let other_id = other["session_id"].as_str().expect("session id");
    let revoked = stack
        .delete_as(token(&current), &format!("/v1/auth/sessions/{other_id}"))
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(counted(metrics, &series("session_revoke", "success", "")), 1);

    let guess = json!({"email": email, "password": "not the password at all"});
    for _ in 0..5 {
        assert_eq!(stack.post("/v1/auth/login", guess.clone()).await.status, 401);
    }
    assert_eq!(counted(metrics, &refused), 5);
    assert_eq!(stack.post("/v1/auth/login", guess).await.status, 429);
    assert_eq!(counted(metrics, &throttled), 1);

    assert_eq!(counted(metrics, &reused), 0);
    assert_eq!(stack.refresh(&first["refresh_token"]).await.status, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.refresh(&first["refresh_token"]).await.status, 401);
    assert_eq!(counted(metrics, &reused), 1, "{}", metrics.render());

    assert_eq!(
        counted(
            metrics,
            r#"rampart_http_requests_total{service="auth",method="POST",route="/v1/auth/login",status="401"}"#
        ),
        5
    );
    // Nothing a client sent became a label: no address, no password, no session id.
    let text = metrics.render();
    for sent in [email.as_str(), PASSWORD, "not the password", other_id] {
        assert!(!text.contains(sent), "{sent:?} in\n{text}");
    }
}

/// Runs a scenario once per stack.
macro_rules! on_both_stacks {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn embedded() {
                super::$scenario(&super::Stack::embedded().await).await;
            }
            #[tokio::test]
            async fn cognito_on_moto() {
                super::$scenario(&super::Stack::cognito().await).await;
            }
        }
    )*};
}

on_both_stacks!(
    sign_up_to_sign_out,
    register_and_forgot_answer_the_same_for_known_and_unknown_emails,
    reused_refresh_token_revokes_the_session,
    concurrent_refreshes_yield_exactly_one_successor,
    totp_mfa_end_to_end,
    password_reset_revokes_every_session,
    password_change_keeps_only_the_current_session,
    sessions_are_listed_and_revoked_by_their_owner_only,
    signing_in_to_an_unconfirmed_account_looks_like_a_wrong_password,
    failed_logins_back_off_per_account,
    wrong_passwords_from_one_address_do_not_lock_the_owner_out,
    parallel_guesses_cannot_outrun_the_throttle,
    disabled_user_loses_the_session_on_refresh,
    disabling_a_user_ends_their_access_tokens_at_once,
    the_token_endpoint_speaks_rfc_6749,
    owners_are_told_of_every_security_change,
    emailed_codes_are_rampart_s_own_and_work_once,
);

/// The codes that confirm an address or reset a password are the auth API's 40-bit codes on
/// both stacks, not Cognito's six digits (which moto would accept whatever they were): a wrong
/// or replaced code is refused, the right one works once.
async fn emailed_codes_are_rampart_s_own_and_work_once(stack: &Stack) {
    let email = format!("codes{}@example.com", unique_suffix());
    let confirm = |code: String| json!({"email": email, "code": code});
    let registered = stack
        .post("/v1/auth/register", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(registered.status, 202);
    let first = stack.confirmation_code(&email);
    assert!(
        first.len() == 8 && first.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
        "{first:?}"
    );
    for guess in ["123456", "00000000"] {
        let wrong = stack.post("/v1/auth/confirm", confirm(guess.into())).await;
        assert_eq!(wrong.status, 422, "{guess}: {wrong:?}");
        assert_eq!(wrong.body["errors"][0]["pointer"], "/code");
    }
    let resent = stack.post("/v1/auth/confirm/resend", json!({"email": email})).await;
    assert_eq!(resent.status, 202);
    let second = stack.confirmation_code(&email);
    assert_ne!(first, second);
    assert_eq!(
        stack.post("/v1/auth/confirm", confirm(first)).await.status,
        422,
        "replaced"
    );
    assert_eq!(
        stack.post("/v1/auth/confirm", confirm(second.clone())).await.status,
        204
    );
    assert_eq!(
        stack.post("/v1/auth/confirm", confirm(second)).await.status,
        422,
        "used"
    );
    let user = stack
        .provider
        .find_user(&Email::parse(&email).expect("email"))
        .await
        .expect("identity")
        .expect("user");
    assert_eq!(user.status, rampart_identity::UserStatus::Confirmed);

    let forgot = stack.post("/v1/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(forgot.status, 202);
    let code = stack.reset_code(&email);
    let reset = |code: &str| json!({"email": email, "code": code, "new_password": NEW_PASSWORD});
    let wrong = stack.post("/v1/auth/password/reset", reset("123456")).await;
    assert_eq!(wrong.status, 422, "{wrong:?}");
    assert_eq!(stack.post("/v1/auth/password/reset", reset(&code)).await.status, 204);
    assert_eq!(
        stack.post("/v1/auth/password/reset", reset(&code)).await.status,
        422,
        "used"
    );
    stack.login(&email, NEW_PASSWORD).await;
}

async fn sign_up_to_sign_out(stack: &Stack) {
    let email = stack.user().await;
    // Wrong password and unknown account: the same 401 body.
    let wrong = stack
        .post(
            "/v1/auth/login",
            json!({"email": email, "password": "not the password at all"}),
        )
        .await;
    let unknown = stack
        .post(
            "/v1/auth/login",
            json!({"email": format!("x{email}"), "password": PASSWORD}),
        )
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
    assert_eq!(wrong.headers["content-type"], "application/problem+json");

    let tokens = stack.login(&email, PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = stack.verify(token(&tokens)).await;
    assert_eq!(claims.sid, tokens["session_id"]);
    assert_eq!(claims.amr, ["pwd"]);
    assert!(claims.exp - claims.iat <= 900);

    let me = stack.get_as(token(&tokens), "/v1/auth/me").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["id"], claims.sub.as_str());

    let refreshed = stack.refresh(&tokens["refresh_token"]).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_ne!(refreshed.body["refresh_token"], tokens["refresh_token"]);
    assert_eq!(refreshed.body["session_id"], tokens["session_id"]);
    stack.verify(token(&refreshed.body)).await;

    let logout = stack.post_as(token(&refreshed.body), "/v1/auth/logout", None).await;
    assert_eq!(logout.status, 204);
    // The session is over: its access tokens and its refresh token stop working here, and
    // its id is in the revocation feed the proxy polls.
    assert_eq!(stack.get_as(token(&refreshed.body), "/v1/auth/me").await.status, 401);
    assert_eq!(stack.refresh(&refreshed.body["refresh_token"]).await.status, 401);
    let feed = stack.get("/v1/auth/revocations").await;
    let revoked: Vec<&str> = feed.body["revocations"]
        .as_array()
        .expect("feed")
        .iter()
        .filter_map(|r| r["session_id"].as_str())
        .collect();
    assert!(revoked.contains(&claims.sid.as_str()), "{feed:?}");
    assert!(feed.body.get("next").is_none(), "one page holds it all: {feed:?}");
    for forged in ["bm90LWEtY3Vyc29y", "%00", "MDAwMDAwMDAwMDAwMDAwIw"] {
        let page = stack.get(&format!("/v1/auth/revocations?after={forged}")).await;
        assert_eq!(page.status, 422, "{forged}: {page:?}");
        assert_eq!(page.body["errors"][0]["pointer"], "after", "{page:?}");
    }

    let kinds = stack.audit_kinds(&claims.sub).await;
    for expected in [
        (EventKind::Register, Outcome::Success),
        (EventKind::Login, Outcome::Success),
        (EventKind::Refresh, Outcome::Success),
        (EventKind::Logout, Outcome::Success),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
}

async fn register_and_forgot_answer_the_same_for_known_and_unknown_emails(stack: &Stack) {
    let known = stack.user().await;
    let unknown = format!("nobody{}@example.com", unique_suffix());
    let again = stack
        .post("/v1/auth/register", json!({"email": known, "password": PASSWORD}))
        .await;
    let fresh = stack
        .post("/v1/auth/register", json!({"email": unknown, "password": PASSWORD}))
        .await;
    assert_eq!((again.status, fresh.status), (202, 202));
    assert_eq!(again.body, fresh.body);
    let known_forgot = stack.post("/v1/auth/password/forgot", json!({"email": known})).await;
    let unknown_forgot = stack
        .post("/v1/auth/password/forgot", json!({"email": format!("z{unknown}")}))
        .await;
    assert_eq!((known_forgot.status, unknown_forgot.status), (202, 202));
    assert_eq!(known_forgot.body, unknown_forgot.body);
}

/// Register-then-login must not tell a fresh address (now unconfirmed, and the caller knows its
/// password) from a taken one: both answer as a wrong password. The owner of the unconfirmed
/// account, the only one who knows its password besides the caller, gets a fresh code.
async fn signing_in_to_an_unconfirmed_account_looks_like_a_wrong_password(stack: &Stack) {
    let taken = stack.user().await;
    let fresh = format!("fresh{}@example.com", unique_suffix());
    let mut answers = Vec::new();
    for email in [&taken, &fresh] {
        let registered = stack
            .post("/v1/auth/register", json!({"email": email, "password": NEW_PASSWORD}))
            .await;
        assert_eq!(registered.status, 202);
        let login = stack
            .post("/v1/auth/login", json!({"email": email, "password": NEW_PASSWORD}))
            .await;
        answers.push((login.status, login.body["type"].clone(), login.body["detail"].clone()));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0].0, 401);
    // The sign-in mailed a second code before it answered.
    let codes = || {
        std::fs::read_to_string(stack.outbox())
            .expect("outbox")
            .matches(&format!("to={fresh} purpose=confirm_sign_up"))
            .count()
    };
    for _ in 0..100 {
        if codes() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(codes(), 2, "the sign-in sent a second confirmation code");
    // With the newest code the owner confirms and signs in.
    let code = stack.confirmation_code(&fresh);
    assert_eq!(
        stack
            .post("/v1/auth/confirm", json!({"email": fresh, "code": code}))
            .await
            .status,
        204
    );
    stack.login(&fresh, NEW_PASSWORD).await;
}

async fn reused_refresh_token_revokes_the_session(stack: &Stack) {
    let email = stack.user().await;
    let first = stack.login(&email, PASSWORD).await;
    let second = stack.refresh(&first["refresh_token"]).await;
    assert_eq!(second.status, 200);
    // An attacker replays the copied first token, past the grace a client racing itself gets:
    // refused, and the whole session ends, so the legitimate successor stops working too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replay = stack.refresh(&first["refresh_token"]).await;
    assert_eq!(replay.status, 401);
    assert_eq!(stack.refresh(&second.body["refresh_token"]).await.status, 401);
    assert_eq!(stack.get_as(token(&second.body), "/v1/auth/me").await.status, 401);
    let sub = stack.verify(token(&first)).await.sub;
    assert!(
        stack
            .audit_kinds(&sub)
            .await
            .contains(&(EventKind::RefreshTokenReuse, Outcome::Failure))
    );
    // A forged secret for a known session id is refused without revoking anything.
    let other = stack.login(&email, PASSWORD).await;
    let session = other["session_id"].as_str().expect("sid");
    let forged = stack.refresh(&json!(format!("{session}.{}", "A".repeat(43)))).await;
    assert_eq!(forged.status, 401);
    assert_eq!(stack.refresh(&other["refresh_token"]).await.status, 200);
}

async fn concurrent_refreshes_yield_exactly_one_successor(stack: &Stack) {
    let email = stack.user().await;
    let tokens = stack.login(&email, PASSWORD).await;
    let replies = stack
        .concurrently(8, "/v1/auth/refresh", json!({"refresh_token": tokens["refresh_token"]}))
        .await;
    let statuses: Vec<u16> = replies.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
    // The losers did not take the session down with them: the winner's tokens work on.
    let (_, winner) = replies.iter().find(|(status, _)| *status == 200).expect("a winner");
    assert_eq!(stack.get_as(token(winner), "/v1/auth/me").await.status, 200);
    let next = stack.refresh(&winner["refresh_token"]).await;
    assert_eq!(next.status, 200, "the session lives on: {next:?}");
}

async fn totp_mfa_end_to_end(stack: &Stack) {
    let email = stack.user().await;
    let enrolling = stack.login(&email, PASSWORD).await;
    let bystander = stack.login(&email, PASSWORD).await;
    let enrolment = stack.post_as(token(&enrolling), "/v1/auth/mfa/totp", None).await;
    assert_eq!(enrolment.status, 200, "{enrolment:?}");
    assert_eq!(enrolment.headers["cache-control"], "no-store");
    let secret = enrolment.body["secret"].as_str().expect("secret");
    assert!(
        enrolment.body["otpauth_uri"]
            .as_str()
            .expect("uri")
            .starts_with("otpauth://totp/")
    );
    let key = totp::base32_decode(secret).expect("base32 secret");

    let wrong = stack
        .post_as(
            token(&enrolling),
            "/v1/auth/mfa/totp/verify",
            Some(json!({"code": "000000"})),
        )
        .await;
    if totp::code_at(&key, unix_now()) != "000000" {
        assert_eq!(wrong.status, 422, "{wrong:?}");
        assert_eq!(wrong.body["errors"][0]["pointer"], "/code");
    }
    settle_in_step().await;
    let enrolled_at = unix_now();
    let verify = stack
        .post_as(
            token(&enrolling),
            "/v1/auth/mfa/totp/verify",
            Some(json!({"code": totp::code_at(&key, enrolled_at)})),
        )
        .await;
    assert_eq!(verify.status, 204, "{verify:?}");
    // Enabling MFA ends every other session.
    assert_eq!(stack.get_as(token(&bystander), "/v1/auth/me").await.status, 401);
    assert_eq!(stack.get_as(token(&enrolling), "/v1/auth/me").await.status, 200);

    let login = stack
        .post("/v1/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["status"], "mfa_required", "{login:?}");
    assert!(login.body.get("access_token").is_none());
    let challenge = login.body["challenge"].clone();
    let code = stack.next_totp(&key, totp::step_at(enrolled_at)).await;
    let answered = stack
        .post(
            "/v1/auth/login/mfa",
            json!({"email": email, "challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(answered.status, 200, "{answered:?}");
    let claims = stack.verify(token(&answered.body)).await;
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    // The challenge was used up. (moto answers a spent Session with ResourceNotFoundException,
    // which the adapter rightly treats as an outage; AWS says NotAuthorized.)
    let again = stack
        .post(
            "/v1/auth/login/mfa",
            json!({"email": email, "challenge": challenge, "code": code}),
        )
        .await;
    let refused = match stack.identity {
        Identity::Embedded => vec![401],
        Identity::Cognito => vec![401, 503],
    };
    assert!(refused.contains(&again.status), "{again:?}");

    // With TOTP on, a session whose sign-in answered no code (as a stolen access token's
    // might be) can neither rebind the factor to another authenticator nor turn it off.
    let rebind = stack.post_as(token(&enrolling), "/v1/auth/mfa/totp", None).await;
    assert_eq!(rebind.status, 403, "{rebind:?}");
    let remove = stack.delete_as(token(&enrolling), "/v1/auth/mfa/totp").await;
    assert_eq!(remove.status, 403, "{remove:?}");
    let kinds = stack.audit_kinds(&claims.sub).await;
    assert!(kinds.contains(&(EventKind::MfaEnrol, Outcome::Failure)), "{kinds:?}");
    // The fresh sign-in that answered a code may start a new enrolment.
    let renewal = stack.post_as(token(&answered.body), "/v1/auth/mfa/totp", None).await;
    assert_eq!(renewal.status, 200, "{renewal:?}");

    // Turning MFA off from the fresh sign-in works and ends the other sessions.
    let off = stack.delete_as(token(&answered.body), "/v1/auth/mfa/totp").await;
    assert_eq!(off.status, 204, "{off:?}");
    assert_eq!(stack.get_as(token(&enrolling), "/v1/auth/me").await.status, 401);
    stack.login(&email, PASSWORD).await;
    let kinds = stack.audit_kinds(&claims.sub).await;
    assert!(kinds.contains(&(EventKind::MfaEnrol, Outcome::Success)), "{kinds:?}");
    assert!(kinds.contains(&(EventKind::MfaDisable, Outcome::Success)), "{kinds:?}");
    assert_eq!(stack.notices(&email), ["totp_enabled", "totp_disabled"]);
}

async fn password_reset_revokes_every_session(stack: &Stack) {
    let email = stack.user().await;
    let first = stack.login(&email, PASSWORD).await;
    let second = stack.login(&email, PASSWORD).await;
    let forgot = stack.post("/v1/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(forgot.status, 202);
    let code = stack.reset_code(&email);
    let weak = stack
        .post(
            "/v1/auth/password/reset",
            json!({"email": email, "code": code, "new_password": "qwerty123456"}),
        )
        .await;
    assert_eq!(weak.status, 422);
    assert_eq!(weak.body["errors"][0]["pointer"], "/new_password");
    let kept = stack.provider_session(&first).await;
    let reset = stack
        .post(
            "/v1/auth/password/reset",
            json!({"email": email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, 204, "{reset:?}");
    stack.assert_signed_out_at_provider(&first, &kept).await;
    for tokens in [&first, &second] {
        assert_eq!(stack.refresh(&tokens["refresh_token"]).await.status, 401);
        assert_eq!(stack.get_as(token(tokens), "/v1/auth/me").await.status, 401);
    }
    let old = stack
        .post("/v1/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(old.status, 401);
    stack.login(&email, NEW_PASSWORD).await;
}

async fn password_change_keeps_only_the_current_session(stack: &Stack) {
    let email = stack.user().await;
    let current = stack.login(&email, PASSWORD).await;
    let other = stack.login(&email, PASSWORD).await;
    let wrong = stack
        .post_as(
            token(&current),
            "/v1/auth/password/change",
            Some(json!({"current_password": "not the password at all", "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let changed = stack
        .post_as(
            token(&current),
            "/v1/auth/password/change",
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    assert_eq!(stack.get_as(token(&current), "/v1/auth/me").await.status, 200);
    assert_eq!(stack.get_as(token(&other), "/v1/auth/me").await.status, 401);
    stack.login(&email, NEW_PASSWORD).await;
}

async fn sessions_are_listed_and_revoked_by_their_owner_only(stack: &Stack) {
    let email = stack.user().await;
    let mine = stack.login(&email, PASSWORD).await;
    let other = stack.login(&email, PASSWORD).await;
    let list = stack.get_as(token(&mine), "/v1/auth/sessions").await;
    assert_eq!(list.status, 200);
    let sessions = list.body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{list:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], mine["session_id"]);
    assert_eq!(current[0]["client_ip"], "127.0.0.1");

    let stranger_email = stack.user().await;
    let stranger = stack.login(&stranger_email, PASSWORD).await;
    let path = format!("/v1/auth/sessions/{}", other["session_id"].as_str().expect("sid"));
    // Someone else's session looks exactly like one that does not exist.
    let theirs = stack.delete_as(token(&stranger), &path).await;
    let missing = stack.delete_as(token(&stranger), "/v1/auth/sessions/nonexistent").await;
    assert_eq!((theirs.status, missing.status), (404, 404));
    assert_eq!(theirs.body["detail"], missing.body["detail"]);
    assert_eq!(stack.get_as(token(&other), "/v1/auth/me").await.status, 200);

    assert_eq!(stack.delete_as(token(&mine), &path).await.status, 204);
    assert_eq!(stack.get_as(token(&other), "/v1/auth/me").await.status, 401);
    let after = stack.get_as(token(&mine), "/v1/auth/sessions").await;
    assert_eq!(after.body["sessions"].as_array().expect("sessions").len(), 1);

    let kept = stack.provider_session(&mine).await;
    assert_eq!(
        stack.post_as(token(&mine), "/v1/auth/logout/all", None).await.status,
        204
    );
    assert_eq!(stack.get_as(token(&mine), "/v1/auth/me").await.status, 401);
    stack.assert_signed_out_at_provider(&mine, &kept).await;
}

async fn failed_logins_back_off_per_account(stack: &Stack) {
    let email = stack.user().await;
    let guess = json!({"email": email, "password": "not the password at all"});
    for _ in 0..5 {
        assert_eq!(stack.post("/v1/auth/login", guess.clone()).await.status, 401);
    }
    let throttled = stack.post("/v1/auth/login", guess).await;
    assert_eq!(throttled.status, 429, "{throttled:?}");
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry_after));
    // While backing off, even the right password waits: the throttle is checked first.
    let right = stack
        .post("/v1/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(right.status, 429);
    // Another account from the same address is unaffected.
    let bystander = stack.user().await;
    stack.login(&bystander, PASSWORD).await;
    // After the back-off the right password works and resets the count.
    tokio::time::sleep(Duration::from_secs(retry_after + 1)).await;
    stack.login(&email, PASSWORD).await;
}

/// Fifteen wrong passwords from one address back that address off for the account; the
/// owner, signing in from another address, is not held up by them.
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out(stack: &Stack) {
    let email = stack.user().await;
    let guess = json!({"email": email, "password": "not the password at all"});
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(
            stack
                .post_from("203.0.113.66", "/v1/auth/login", guess.clone())
                .await
                .status,
        );
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let owner = stack
        .post_from(
            "198.51.100.7",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(owner.status, 200, "{owner:?}");
}

async fn parallel_guesses_cannot_outrun_the_throttle(stack: &Stack) {
    let email = stack.user().await;
    let statuses: Vec<u16> = stack
        .concurrently(
            12,
            "/v1/auth/login",
            json!({"email": email, "password": "not the password at all"}),
        )
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 12, "{statuses:?}");
    assert!(
        checked <= 5,
        "only five guesses may reach the password check: {statuses:?}"
    );
}

async fn disabled_user_loses_the_session_on_refresh(stack: &Stack) {
    let email = stack.user().await;
    let tokens = stack.login(&email, PASSWORD).await;
    stack.disable_at_provider(&email).await;
    assert_eq!(stack.refresh(&tokens["refresh_token"]).await.status, 401);
    // The session is revoked, not merely refused once.
    assert_eq!(stack.get_as(token(&tokens), "/v1/auth/sessions").await.status, 401);
    let login = stack
        .post("/v1/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(
        login.status, 401,
        "a disabled account looks like wrong credentials: {login:?}"
    );
}

/// The token endpoint as a standard OAuth 2.0 client uses it: a form-encoded refresh-token
/// grant, answered with RFC 6749 tokens and, for every refusal, an RFC 6749 error body.
async fn the_token_endpoint_speaks_rfc_6749(stack: &Stack) {
    let email = stack.user().await;
    let tokens = stack.login(&email, PASSWORD).await;
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
    let form = |body: String| {
        stack
            .http
            .post(format!("{}/v1/auth/token", stack.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let refreshed = stack
        .send(form(format!(
            "grant_type=refresh_token&refresh_token={refresh_token}&client_id=any&scope=core%3Aread"
        )))
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_eq!(refreshed.headers["cache-control"], "no-store");
    assert_eq!(refreshed.headers["pragma"], "no-cache");
    assert_eq!(refreshed.body["token_type"], "Bearer");
    let claims = stack.verify(token(&refreshed.body)).await;
    let me = stack.get_as(token(&refreshed.body), "/v1/auth/me").await;
    assert_eq!(
        me.body["sub"],
        claims.sub.as_str(),
        "userinfo names the token's subject"
    );
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["email_verified"], true);

    let refusals = [
        // The rotated-away token: reuse, which also ends the session.
        (
            format!("grant_type=refresh_token&refresh_token={refresh_token}"),
            "invalid_grant",
        ),
        (
            "grant_type=refresh_token&refresh_token=not-a-token".to_string(),
            "invalid_grant",
        ),
        (
            "grant_type=password&username=a&password=b".to_string(),
            "unsupported_grant_type",
        ),
        ("refresh_token=x".to_string(), "invalid_request"),
        ("grant_type=refresh_token".to_string(), "invalid_request"),
        (
            "grant_type=refresh_token&grant_type=refresh_token&refresh_token=x".to_string(),
            "invalid_request",
        ),
        (
            format!(
                "grant_type=refresh_token&refresh_token={}&scope=admin",
                refreshed.body["refresh_token"].as_str().expect("refresh token")
            ),
            "invalid_scope",
        ),
    ];
    for (body, error) in refusals {
        let reply = stack.send(form(body.clone())).await;
        assert_eq!(
            (reply.status, reply.body["error"].as_str()),
            (400, Some(error)),
            "{body}: {reply:?}"
        );
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(reply.headers["cache-control"], "no-store");
    }
    let json_body = stack
        .post(
            "/v1/auth/token",
            json!({"grant_type": "refresh_token", "refresh_token": "x"}),
        )
        .await;
    assert_eq!(
        (json_body.status, json_body.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// The owner is mailed on every password, second-factor and session-wide change, and when
/// someone registers their address again (the caller is answered as for a new address).
async fn owners_are_told_of_every_security_change(stack: &Stack) {
    let email = stack.user().await;
    assert!(stack.notices(&email).is_empty());
    let again = stack
        .post("/v1/auth/register", json!({"email": email, "password": NEW_PASSWORD}))
        .await;
    assert_eq!(again.status, 202, "{again:?}");
    let tokens = stack.login(&email, PASSWORD).await;
    stack
        .change_password_and_sign_out_everywhere(&tokens, PASSWORD, NEW_PASSWORD)
        .await;
    stack.reset_password(&email, PASSWORD).await;
    assert_eq!(
        stack.notices(&email),
        [
            "already_registered",
            "password_changed",
            "signed_out_everywhere",
            "password_reset"
        ]
    );
    // A first registration is no notice: the confirmation code is the mail.
    let fresh = format!("fresh{}@example.com", unique_suffix());
    stack
        .post("/v1/auth/register", json!({"email": fresh, "password": PASSWORD}))
        .await;
    assert!(stack.notices(&fresh).is_empty());
}

/// Disabling through Rampart does not wait for the next refresh: the access tokens the user
/// holds are refused at once here, and the revocation feed tells every verifier.
async fn disabling_a_user_ends_their_access_tokens_at_once(stack: &Stack) {
    let email = stack.user().await;
    let first = stack.login(&email, PASSWORD).await;
    let second = stack.login(&email, PASSWORD).await;
    let since = unix_now() * 1000 - 1000;
    assert_eq!(stack.get_as(token(&first), "/v1/auth/me").await.status, 200);
    let user_id = stack
        .app()
        .disable_user(&Email::parse(&email).expect("email"))
        .await
        .expect("disable")
        .expect("the account exists");
    for tokens in [&first, &second] {
        let me = stack.get_as(token(tokens), "/v1/auth/me").await;
        assert_eq!(me.status, 401, "an access token of a disabled user: {me:?}");
        assert_eq!(stack.refresh(&tokens["refresh_token"]).await.status, 401);
    }
    let feed = stack.get(&format!("/v1/auth/revocations?since={since}")).await;
    let cutoffs: Vec<&Value> = feed.body["revocations"]
        .as_array()
        .expect("revocations")
        .iter()
        .filter(|entry| entry["user_id"] == user_id.as_str())
        .collect();
    assert_eq!(cutoffs.len(), 1, "one user-wide entry in the feed: {feed:?}");
    assert!(cutoffs[0].get("except_session_id").is_none(), "no session is spared");
    let login = stack
        .post("/v1/auth/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(login.status, 401, "{login:?}");
    assert!(
        stack
            .audit_kinds(&user_id)
            .await
            .contains(&(EventKind::UserDisable, Outcome::Success))
    );
    let unknown = Email::parse(&format!("nobody{}@example.com", unique_suffix())).expect("email");
    assert_eq!(stack.app().disable_user(&unknown).await.expect("disable unknown"), None);
}

// --- edge cases that do not depend on the identity backend -----------------------------------

/// An unknown email and a wrong password must not be told apart by how long the answer takes:
/// the embedded provider verifies against a dummy argon2id hash for unknown emails. Samples are
/// interleaved so machine noise weighs on both alike; the bound is loose because skipping the
/// hash would make unknown emails some fifty times faster, not a few per cent.
#[tokio::test]
async fn unknown_email_and_wrong_password_take_about_as_long() {
    const ACCOUNTS: usize = 4;
    // Four failures per account stay under its back-off; 32 in all under the address's.
    const PER_ACCOUNT: usize = 4;
    let stack = Stack::embedded().await;
    let mut accounts = Vec::new();
    for _ in 0..ACCOUNTS {
        accounts.push(stack.user().await);
    }
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for round in 0..ACCOUNTS * PER_ACCOUNT {
        let nobody = format!("nobody{}@example.com", unique_suffix());
        for (email, samples) in [(&nobody, &mut unknown), (&accounts[round % ACCOUNTS], &mut wrong)] {
            let started = std::time::Instant::now();
            let reply = stack
                .post(
                    "/v1/auth/login",
                    json!({"email": email, "password": "not the password at all"}),
                )
                .await;
            samples.push(started.elapsed());
            assert_eq!(reply.status, 401, "{reply:?}");
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (unknown, wrong) = (median(&mut unknown), median(&mut wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.67..=1.5).contains(&ratio),
        "median unknown-email login {unknown:?} vs wrong-password login {wrong:?}"
    );
}

/// The local outbox, as slow as a mailer across a network: long enough that an answer which
/// waited for it would stand out.
#[derive(Debug)]
struct SlowMailer(rampart_mailer::OutboxMailer);

const MAIL_DELAY: Duration = Duration::from_millis(200);

#[async_trait::async_trait]
impl rampart_mailer::Mailer for SlowMailer {
    async fn send(&self, to: &str, notice: rampart_mailer::Notice) -> Result<(), rampart_mailer::MailError> {
        tokio::time::sleep(MAIL_DELAY).await;
        self.0.send(to, notice).await
    }

    async fn send_code(&self, to: &str, mail: &rampart_mailer::CodeMail) -> Result<(), rampart_mailer::MailError> {
        tokio::time::sleep(MAIL_DELAY).await;
        self.0.send_code(to, mail).await
    }
}

/// Forgot-password and resend mail only an address with an account, and sign-in mails an
/// unconfirmed one: with a mailer as slow as SES, the answers to an address that gets mail and
/// to one that does not still take the same time (all held to `mail.answer_floor_ms`: for
/// sign-in, every refused one).
#[tokio::test]
async fn whether_mail_was_sent_does_not_show_in_how_long_an_answer_takes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        http: behind_a_local_proxy(),
        ..rampart_testkit::embedded_settings(dir.path())
    };
    let mut backends = Backends::connect(&settings, None).await.expect("embedded backends");
    let outbox = dir.path().join(rampart_mailer::outbox::OUTBOX_FILE);
    backends.mailer = Arc::new(SlowMailer(rampart_mailer::OutboxMailer::new(outbox)));
    let floor = Duration::from_millis(settings.mail.answer_floor_ms);
    let stack = Stack::serve(backends, settings, Identity::Embedded, dir).await;

    let confirmed = stack.user().await;
    let mut unconfirmed = Vec::new();
    for _ in 0..2 {
        let email = format!("unconfirmed{}@example.com", unique_suffix());
        let registered = stack
            .post("/v1/auth/register", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(registered.status, 202);
        unconfirmed.push(email);
    }
    let nobody = || format!("nobody{}@example.com", unique_suffix());
    let wrong = "WRONGCODE9";
    // (what is asked, a request that mails or counts a wrong code, one that does neither; the
    // answer both get)
    let pairs = [
        (
            "/v1/auth/password/forgot",
            json!({"email": confirmed}),
            json!({"email": nobody()}),
            202,
        ),
        (
            "/v1/auth/confirm/resend",
            json!({"email": unconfirmed[0]}),
            json!({"email": nobody()}),
            202,
        ),
        (
            "/v1/auth/login",
            json!({"email": unconfirmed[1], "password": PASSWORD}),
            json!({"email": confirmed, "password": NEW_PASSWORD}),
            401,
        ),
        (
            "/v1/auth/confirm",
            json!({"email": unconfirmed[0], "code": wrong}),
            json!({"email": nobody(), "code": wrong}),
            422,
        ),
        (
            "/v1/auth/password/reset",
            json!({"email": confirmed, "code": wrong, "new_password": NEW_PASSWORD}),
            json!({"email": nobody(), "code": wrong, "new_password": NEW_PASSWORD}),
            422,
        ),
    ];
    for (path, mails, silent, status) in pairs {
        let mut timings = [Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (body, samples) in [(&mails, 0), (&silent, 1)] {
                let started = std::time::Instant::now();
                let reply = stack.post(path, body.clone()).await;
                timings[samples].push(started.elapsed());
                assert_eq!(reply.status, status, "{path}: {reply:?}");
            }
        }
        let [mut mailed, mut not_mailed] = timings;
        mailed.sort();
        not_mailed.sort();
        let (mailed, not_mailed) = (mailed[1], not_mailed[1]);
        let apart = mailed.abs_diff(not_mailed);
        assert!(
            apart < MAIL_DELAY / 2,
            "{path}: median {mailed:?} when mail was sent, {not_mailed:?} when not"
        );
        assert!(
            not_mailed >= floor,
            "{path}: {not_mailed:?} is under the floor {floor:?}"
        );
    }
}

/// The auth API reads a bearer token as the proxy and the authorizer do: `Bearer` in any case,
/// and exactly one `Authorization` header (a second one is refused, not ignored).
#[tokio::test]
async fn bearer_tokens_are_read_as_the_proxy_reads_them() {
    let stack = Stack::embedded().await;
    let email = stack.user().await;
    let tokens = stack.login(&email, PASSWORD).await;
    let me = |values: Vec<String>| {
        let mut request = stack.http.get(format!("{}/v1/auth/me", stack.base));
        for value in values {
            request = request.header("authorization", value);
        }
        stack.send(request)
    };
    let upper = me(vec![format!("BEARER {}", token(&tokens))]).await;
    assert_eq!(upper.status, 200, "{upper:?}");
    let twice = me(vec![format!("Bearer {}", token(&tokens)), "Bearer a.b.c".into()]).await;
    assert_eq!(twice.status, 401, "{twice:?}");
    assert_eq!(
        twice.headers["www-authenticate"],
        r#"Bearer realm="rampart", error="invalid_token""#
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_problem_naming_the_field_and_nothing_is_written() {
    let stack = Stack::embedded().await;
    let email = format!("bad{}@example.com", unique_suffix());
    let url = format!("{}/v1/auth/register", stack.base);
    let raw = |body: &'static str, content_type: &'static str| {
        stack.http.post(&url).header("content-type", content_type).body(body)
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (raw("{\"email\": ", "application/json"), 400, None),
        (
            raw("email=a@example.com", "application/x-www-form-urlencoded"),
            415,
            None,
        ),
        (
            stack
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"email\":\"{email}\",\"password\":\"{}\"}}",
                    "x".repeat(70 * 1024)
                )),
            413,
            None,
        ),
        (stack.http.post(&url).json(&json!({"email": email})), 422, None),
        (
            stack
                .http
                .post(&url)
                .json(&json!({"email": email, "password": PASSWORD, "admin": true})),
            422,
            None,
        ),
        (
            stack
                .http
                .post(&url)
                .json(&json!({"email": "not-an-email", "password": PASSWORD})),
            422,
            Some("/email"),
        ),
        (
            stack
                .http
                .post(&url)
                .json(&json!({"email": email, "password": "short"})),
            422,
            Some("/password"),
        ),
        (
            stack
                .http
                .post(&url)
                .json(&json!({"email": email, "password": "Qwerty123456"})),
            422,
            Some("/password"),
        ),
        (
            stack
                .http
                .post(&url)
                .json(&json!({"email": email, "password": 12345678901234_u64})),
            422,
            Some("/password"),
        ),
    ];
    for (request, status, pointer) in cases {
        let reply = stack.send(request).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
        assert!(reply.body["request_id"].is_string());
        if let Some(pointer) = pointer {
            assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{reply:?}");
        }
    }
    let missing = stack.post("/v1/auth/register", json!({"email": email})).await;
    assert!(missing.body["detail"].as_str().expect("detail").contains("password"));
    let extra = stack
        .post(
            "/v1/auth/register",
            json!({"email": email, "password": PASSWORD, "admin": true}),
        )
        .await;
    assert!(extra.body["detail"].as_str().expect("detail").contains("admin"));
    // None of it created an account.
    let parsed = Email::parse(&email).expect("email");
    assert!(stack.provider.find_user(&parsed).await.expect("lookup").is_none());
}

#[tokio::test]
async fn wrong_and_used_codes_are_refused_at_the_code_field() {
    let stack = Stack::embedded().await;
    let email = format!("c{}@example.com", unique_suffix());
    stack
        .post("/v1/auth/register", json!({"email": email, "password": PASSWORD}))
        .await;
    let code = stack.confirmation_code(&email);
    let wrong_code = if code == "00000000" { "11111111" } else { "00000000" };
    assert_eq!(code.len(), 8, "emailed codes are eight characters: {code}");
    for bad in [wrong_code, "12 34", ""] {
        let reply = stack
            .post("/v1/auth/confirm", json!({"email": email, "code": bad}))
            .await;
        assert_eq!(reply.status, 422, "{reply:?}");
        assert_eq!(reply.body["errors"][0]["pointer"], "/code");
    }
    assert_eq!(
        stack
            .post("/v1/auth/confirm", json!({"email": email, "code": code}))
            .await
            .status,
        204
    );
    let used = stack
        .post("/v1/auth/confirm", json!({"email": email, "code": code}))
        .await;
    assert_eq!(used.status, 422, "{used:?}");
}

#[tokio::test]
async fn forged_truncated_and_foreign_tokens_are_unauthorized() {
    let stack = Stack::embedded().await;
    let email = stack.user().await;
    let tokens = stack.login(&email, PASSWORD).await;
    let good = token(&tokens);
    let (head, signature) = good.rsplit_once('.').expect("JWS");
    let mut flipped = signature.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}.{}", String::from_utf8(flipped).expect("ascii"));
    // A token from another installation's key, otherwise perfectly formed.
    let other = Stack::embedded().await;
    let other_email = other.user().await;
    let foreign = other.login(&other_email, PASSWORD).await;
    for bad in [
        forged.as_str(),
        &good[..good.len() - 5],
        head,
        token(&foreign),
        "",
        "null",
    ] {
        let reply = stack.get_as(bad, "/v1/auth/me").await;
        assert_eq!(reply.status, 401, "{bad}: {reply:?}");
        assert_eq!(
            reply.headers["www-authenticate"],
            r#"Bearer realm="rampart", error="invalid_token""#
        );
        assert_eq!(reply.body["detail"], "The access token is invalid, expired or revoked.");
    }
    let no_header = stack.get("/v1/auth/me").await;
    assert_eq!(no_header.status, 401);
    assert_eq!(no_header.headers["www-authenticate"], r#"Bearer realm="rampart""#);
    assert_eq!(no_header.body["detail"], "A bearer access token is required.");
    // Refresh tokens are checked as strictly.
    for bad in [
        "",
        "x.y",
        &format!("{}.{}", tokens["session_id"].as_str().expect("sid"), "A".repeat(43)),
    ] {
        assert_eq!(stack.refresh(&json!(bad)).await.status, 401, "{bad}");
    }
}

#[tokio::test]
async fn discovery_documents_describe_this_issuer_and_every_route() {
    let stack = Stack::embedded().await;
    let discovery = stack.get("/.well-known/openid-configuration").await;
    assert_eq!(discovery.status, 200);
    let issuer = &stack.settings.tokens.issuer;
    assert_eq!(discovery.body["issuer"], issuer.as_str());
    assert_eq!(discovery.body["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        discovery.body["access_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    // Only what is true: the token endpoint's one grant, no ID tokens, no authorization endpoint.
    assert_eq!(discovery.body["token_endpoint"], format!("{issuer}/v1/auth/token"));
    assert_eq!(discovery.body["grant_types_supported"], json!(["refresh_token"]));
    assert_eq!(discovery.body["userinfo_endpoint"], format!("{issuer}/v1/auth/me"));
    for absent in ["authorization_endpoint", "id_token_signing_alg_values_supported"] {
        assert!(discovery.body.get(absent).is_none(), "{absent} is not advertised");
    }
    let rfc8414 = stack.get("/.well-known/oauth-authorization-server").await;
    assert_eq!((rfc8414.status, &rfc8414.body), (200, &discovery.body));
    assert!(
        discovery.headers["cache-control"]
            .to_str()
            .expect("ascii")
            .starts_with("public")
    );

    let openapi = stack.get("/v1/auth/openapi.json").await;
    assert_eq!(openapi.status, 200);
    assert!(openapi.body["openapi"].as_str().expect("version").starts_with("3."));
    let paths = openapi.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/v1/auth/register", "post"),
        ("/v1/auth/confirm", "post"),
        ("/v1/auth/confirm/resend", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/login/mfa", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/auth/logout/all", "post"),
        ("/v1/auth/password/forgot", "post"),
        ("/v1/auth/password/reset", "post"),
        ("/v1/auth/password/change", "post"),
        ("/v1/auth/mfa/totp", "post"),
        ("/v1/auth/mfa/totp", "delete"),
        ("/v1/auth/mfa/totp/verify", "post"),
        ("/v1/auth/me", "get"),
        ("/v1/auth/sessions", "get"),
        ("/v1/auth/sessions/{id}", "delete"),
        ("/v1/auth/revocations", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/v1/auth/token", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} documented"
        );
    }
    assert!(openapi.body["components"]["schemas"]["TokenResponse"].is_object());
    // What the edge and extractors answer is documented too, with the problem schema.
    let login = &paths["/v1/auth/login"]["post"]["responses"];
    for status in ["400", "413", "415", "422", "500", "503"] {
        assert_eq!(
            login[status]["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
            "login documents {status}"
        );
    }
    assert!(paths["/v1/auth/me"]["get"]["responses"]["401"].is_object());
    assert!(openapi.body["components"]["schemas"]["Problem"].is_object());
}

// --- attacks on the throttles (the counters live in the auth API, whatever the provider) ------

/// A client address of its own for the `n`th request, so only per-account budgets apply.
fn address(n: usize) -> String {
    format!("198.18.{}.{}", n / 250, n % 250 + 1)
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

/// Asking for a new reset code and guessing it again and again, from ever new addresses, runs
/// into one budget per account: the tenth wrong code, on whichever reissued code, is the last
/// checked before a back-off that a new code does not lift.
#[tokio::test]
async fn code_guesses_are_budgeted_across_reissued_codes() {
    let stack = Stack::embedded().await;
    let email = stack.user().await;
    let mut n = 0;
    let mut next = || {
        n += 1;
        address(n)
    };
    let guess = json!({"email": email, "code": "00000000", "new_password": NEW_PASSWORD});
    for _ in 0..2 {
        let forgot = stack
            .post_from(&next(), "/v1/auth/password/forgot", json!({"email": email}))
            .await;
        assert_eq!(forgot.status, 202);
        for _ in 0..5 {
            let reply = stack.post_from(&next(), "/v1/auth/password/reset", guess.clone()).await;
            assert_eq!(reply.status, 422, "{reply:?}");
        }
    }
    let forgot = stack
        .post_from(&next(), "/v1/auth/password/forgot", json!({"email": email}))
        .await;
    assert_eq!(forgot.status, 202);
    let refused = stack.post_from(&next(), "/v1/auth/password/reset", guess).await;
    assert_eq!(
        refused.status, 429,
        "a fresh code did not reset the budget: {refused:?}"
    );
    assert!((1..=60).contains(&retry_after(&refused)), "{refused:?}");
    // The budget is checked before the code: even the right one waits, so no guess is free.
    let code = stack.reset_code(&email);
    let right = stack
        .post_from(
            &next(),
            "/v1/auth/password/reset",
            json!({"email": email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(right.status, 429, "{right:?}");
    // Confirmation codes have a budget of their own.
    let other = format!("c{}@example.com", unique_suffix());
    stack
        .post("/v1/auth/register", json!({"email": other, "password": PASSWORD}))
        .await;
    let wrong = stack
        .post_from(&next(), "/v1/auth/confirm", json!({"email": other, "code": "00000000"}))
        .await;
    assert_eq!(wrong.status, 422, "{wrong:?}");
}

/// One address cannot send unbounded sign-ups, codes or code checks, whatever emails it names.
#[tokio::test]
async fn code_and_sign_up_requests_are_throttled_per_client_address() {
    let stack = Stack::embedded().await;
    let attacker = "203.0.113.99";
    let mut statuses = Vec::new();
    for round in 0..8 {
        let email = format!("spray{round}-{}@example.com", unique_suffix());
        for (path, body) in [
            ("/v1/auth/register", json!({"email": email, "password": PASSWORD})),
            ("/v1/auth/confirm/resend", json!({"email": email})),
            ("/v1/auth/password/forgot", json!({"email": email})),
            ("/v1/auth/confirm", json!({"email": email, "code": "00000000"})),
        ] {
            let reply = stack.post_from(attacker, path, body).await;
            statuses.push(reply.status);
            if reply.status == 429 {
                assert!(retry_after(&reply) >= 1);
                assert_eq!(reply.headers["content-type"], "application/problem+json");
            }
        }
    }
    assert!(statuses[..30].iter().all(|s| *s != 429), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another address is served as before.
    let bystander = stack
        .post_from(
            "198.51.100.20",
            "/v1/auth/password/forgot",
            json!({"email": "bystander@example.com"}),
        )
        .await;
    assert_eq!(bystander.status, 202);
}

/// Once strangers' failures engage the account-wide limit, a new client waits, but the client
/// that signed in before, presenting its device token, signs in at once. A spent token does not
/// work twice, and a token is good for its own account only.
#[tokio::test]
async fn a_known_device_signs_in_while_the_account_backs_off() {
    let stack = Stack::embedded().await;
    let email = stack.user().await;
    let first = stack.login(&email, PASSWORD).await;
    let device = first["device_token"].as_str().expect("a device token").to_string();
    let guess = json!({"email": email, "password": "not the password at all"});
    let mut statuses = Vec::new();
    for n in 0..101 {
        statuses.push(
            stack
                .post_from(&address(n), "/v1/auth/login", guess.clone())
                .await
                .status,
        );
    }
    assert!(statuses[..100].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[100], 429, "{statuses:?}");
    let right = json!({"email": email, "password": PASSWORD});
    let stranger = stack.post_from("198.51.100.30", "/v1/auth/login", right.clone()).await;
    assert_eq!(stranger.status, 429, "{stranger:?}");
    let known = stack
        .post_from(
            "198.51.100.31",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "device_token": device}),
        )
        .await;
    assert_eq!(known.status, 200, "{known:?}");
    let renewed = known.body["device_token"].as_str().expect("a new device token");
    assert_ne!(renewed, device);
    let spent = stack
        .post_from(
            "198.51.100.32",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "device_token": device}),
        )
        .await;
    assert_eq!(spent.status, 429, "a spent device token is not recognised: {spent:?}");
    // Another account's token: not recognised for this one.
    let other = stack.user().await;
    let theirs = stack.login(&other, PASSWORD).await;
    let foreign = stack
        .post_from(
            "198.51.100.33",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD, "device_token": theirs["device_token"]}),
        )
        .await;
    assert_eq!(foreign.status, 429, "{foreign:?}");
    // A password reset proves the mailbox and lifts the account-wide limit.
    stack
        .post_from("198.51.100.34", "/v1/auth/password/forgot", json!({"email": email}))
        .await;
    let code = stack.reset_code(&email);
    let reset = stack
        .post_from(
            "198.51.100.34",
            "/v1/auth/password/reset",
            json!({"email": email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, 204, "{reset:?}");
    let after = stack
        .post_from(
            "198.51.100.30",
            "/v1/auth/login",
            json!({"email": email, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(after.status, 200, "{after:?}");
}

/// A stolen access token guessing the current password at `password/change` backs off its own
/// session only: the owner's sign-ins and other sessions are unaffected.
#[tokio::test]
async fn a_wrong_current_password_counts_for_its_session_only() {
    let stack = Stack::embedded().await;
    let email = stack.user().await;
    let stolen = stack.login(&email, PASSWORD).await;
    let owners = stack.login(&email, PASSWORD).await;
    let guess = json!({"current_password": "not the password at all", "new_password": NEW_PASSWORD});
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            stack
                .post_as(token(&stolen), "/v1/auth/password/change", Some(guess.clone()))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    let owner_guess = stack
        .post_as(token(&owners), "/v1/auth/password/change", Some(guess))
        .await;
    assert_eq!(owner_guess.status, 401, "{owner_guess:?}");
    stack.login(&email, PASSWORD).await;
}

/// Served with no trusted proxy, the peer is the client whatever `X-Forwarded-For` claims: a
/// forged header neither escapes the per-address throttle nor lands in the session list.
#[tokio::test]
async fn a_forged_forwarded_for_is_not_believed_from_an_untrusted_peer() {
    let stack = Stack::embedded_with(Default::default()).await;
    let email = stack.user().await;
    let login = stack
        .post_from(
            "6.6.6.6",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    let sessions = stack.get_as(token(&login.body), "/v1/auth/sessions").await;
    assert_eq!(sessions.body["sessions"][0]["client_ip"], "127.0.0.1", "{sessions:?}");
    let mut statuses = Vec::new();
    for n in 0..31 {
        let reply = stack
            .post_from(
                &address(n),
                "/v1/auth/password/forgot",
                json!({"email": format!("f{n}@example.com")}),
            )
            .await;
        statuses.push(reply.status);
    }
    // The sign-up and confirmation above spent two of the address's 30 requests.
    assert!(statuses[..28].iter().all(|s| *s == 202), "{statuses:?}");
    assert!(statuses[28..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// The auth API runs on Lambda without the proxy in front: its own edge refuses the path forms
/// that servers read differently, on public routes too, before any handler runs.
#[tokio::test]
async fn confusing_path_forms_are_refused_on_public_routes() {
    let stack = Stack::embedded().await;
    for path in [
        "/v1/auth/login;jsessionid=x",
        "/v1/auth%2flogin",
        "/v1/auth/%252e%252e/me",
        "/.well-known/jwks.json%5c..",
    ] {
        let reply = stack.get(path).await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert_eq!(reply.headers["content-type"], "application/problem+json", "{path}");
        assert_eq!(reply.body["type"], "urn:rampart:problem:malformed-request", "{path}");
    }
    assert_eq!(stack.get("/.well-known/jwks.json").await.status, 200);
}

/// A sign-up flood, each request from an address of its own so that no per-address throttle
/// stops it, cannot take sign-in down: password hashing admits what the cores can do soon and
/// sheds the rest at once with 503 and `Retry-After` (which the proxy does not count against
/// the auth API's breaker). No request waits out the handler timeout, and the owner of an
/// account signs in as soon as the flood has been answered.
#[tokio::test]
async fn a_sign_up_flood_is_shed_at_once_not_queued_past_the_timeout() {
    let stack = Stack::embedded_with(rampart_kernel::config::HttpSettings {
        request_timeout_secs: 3,
        ..behind_a_local_proxy()
    })
    .await;
    let email = stack.user().await;
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..400 {
        let request = stack
            .http
            .post(format!("{}/v1/auth/register", stack.base))
            .header("x-forwarded-for", address(n))
            .json(&json!({"email": format!("flood{n}-{}@example.com", unique_suffix()), "password": PASSWORD}));
        flood.spawn(async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        });
    }
    let (mut served, mut shed) = (0, 0);
    for (status, retry_after, body) in flood.join_all().await {
        match status {
            202 => served += 1,
            503 => {
                assert_eq!(
                    retry_after.as_ref().map(|v| v.to_str().expect("ascii")),
                    Some("1"),
                    "a 503 without Retry-After is the handler timeout, not shedding: {body}"
                );
                assert!(body["detail"].as_str().expect("detail").contains("at once"), "{body}");
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(served > 0 && shed > 0, "served {served}, shed {shed}");
    stack.login(&email, PASSWORD).await;
}

/// Audit records expire `audit.retention_days` after their event, and a write the store
/// refuses (here: DynamoDB on moto without the audit table) is counted in the metrics, never
/// lost unseen.
#[tokio::test]
async fn audit_records_expire_after_the_retention_and_failed_writes_are_counted() {
    const AT_MS: i64 = 1_700_000_000_000; // 2023-11-14
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn ItemStore> =
        Arc::new(rampart_store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store"));
    // Ten years, so that this 2023 record is still there to read.
    let log = AuditLog::new(Arc::clone(&store), 3650);
    let event = rampart_auth_function::audit::Event::new(EventKind::Login, Outcome::Success, AT_MS);
    log.record(&event).await.expect("written");
    let items = store
        .query(rampart_store::Table::Audit, "day#2023-11-14", "", 10)
        .await
        .expect("query");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].expires_at, Some(AT_MS / 1000 + 3650 * 86_400));
    assert_eq!(log.failure_counter().get(), 0);

    let aws = rampart_testkit::aws().await;
    let missing_table = rampart_store::DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws.config), &aws.prefix);
    let log = AuditLog::new(Arc::new(missing_table), 30);
    let metrics = Registry::default();
    rampart_auth_function::metrics::SecurityMetrics::new(&metrics, log.failure_counter());
    assert!(log.record(&event).await.is_err());
    assert!(log.record(&event).await.is_err());
    assert_eq!(counted(&metrics, "rampart_auth_audit_write_failures_total"), 2);
}

/// Every security event is written, the failed and the repeated ones included, and no record
/// holds a password, a code or a token.
#[tokio::test]
async fn every_security_event_is_audited_and_no_record_holds_a_secret() {
    let stack = Stack::embedded().await;
    let email = format!("audit{}@example.com", unique_suffix());
    let wrong_code = "WRONGCODE9";
    assert_eq!(
        stack
            .post("/v1/auth/register", json!({"email": email, "password": PASSWORD}))
            .await
            .status,
        202
    );
    assert_eq!(
        stack
            .post("/v1/auth/confirm/resend", json!({"email": email}))
            .await
            .status,
        202
    );
    let reply = stack
        .post("/v1/auth/confirm", json!({"email": email, "code": wrong_code}))
        .await;
    assert_eq!(reply.status, 422);
    let confirm_code = stack.confirmation_code(&email);
    let reply = stack
        .post("/v1/auth/confirm", json!({"email": email, "code": confirm_code}))
        .await;
    assert_eq!(reply.status, 204);
    let reply = stack
        .post("/v1/auth/login", json!({"email": email, "password": NEW_PASSWORD}))
        .await;
    assert_eq!(reply.status, 401);
    let tokens = stack.login(&email, PASSWORD).await;
    let refreshed = stack.refresh(&tokens["refresh_token"]).await;
    assert_eq!(refreshed.status, 200);
    let reset_code = stack.reset_password(&email, NEW_PASSWORD).await;
    let reset = json!({"email": email, "code": wrong_code, "new_password": PASSWORD});
    assert_eq!(stack.post("/v1/auth/password/reset", reset).await.status, 422);
    let tokens_after = stack.login(&email, NEW_PASSWORD).await;
    stack
        .change_password_and_sign_out_everywhere(&tokens_after, NEW_PASSWORD, PASSWORD)
        .await;

    let records = AuditLog::new(Arc::clone(&stack.store), stack.settings.audit.retention_days)
        .on_day(unix_now() as i64 * 1000, 1000)
        .await
        .expect("audit");
    let user_id = stack.verify(token(&tokens)).await.sub;
    let ours: Vec<_> = records
        .iter()
        .filter(|e| e.email.as_deref() == Some(email.as_str()) || e.user_id.as_deref() == Some(user_id.as_str()))
        .collect();
    let seen = |kind: EventKind, outcome: Outcome| ours.iter().any(|e| e.kind == kind && e.outcome == outcome);
    for (kind, outcome) in [
        (EventKind::Register, Outcome::Success),
        (EventKind::ConfirmResend, Outcome::Success),
        (EventKind::Confirm, Outcome::Failure),
        (EventKind::Confirm, Outcome::Success),
        (EventKind::Login, Outcome::Failure),
        (EventKind::Login, Outcome::Success),
        (EventKind::Refresh, Outcome::Success),
        (EventKind::PasswordForgot, Outcome::Success),
        (EventKind::PasswordReset, Outcome::Failure),
        (EventKind::PasswordReset, Outcome::Success),
        (EventKind::PasswordChange, Outcome::Success),
        (EventKind::LogoutAll, Outcome::Success),
    ] {
        assert!(seen(kind, outcome), "no {kind:?} {outcome:?} among {ours:#?}");
    }
    let everything = serde_json::to_string(&records).expect("JSON");
    let secrets = [
        PASSWORD.to_string(),
        NEW_PASSWORD.to_string(),
        wrong_code.to_string(),
        confirm_code,
        reset_code,
        token(&tokens).to_string(),
        token(&tokens_after).to_string(),
        tokens["refresh_token"].as_str().expect("refresh").to_string(),
        refreshed.body["refresh_token"].as_str().expect("refresh").to_string(),
        // The secret half of a refresh token on its own, too.
        tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .split('.')
            .nth(1)
            .expect("secret")
            .to_string(),
    ];
    for secret in secrets {
        assert!(!everything.contains(&secret), "an audit record holds a secret");
    }
}
