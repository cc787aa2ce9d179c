//! The Vault adapter against a real Vault (OpenBao's dev server, or `VAULT_ADDR`): each login,
//! KV v2 versions, a policy that refuses, and a revoked token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rampart_secrets::{
    Credential, ExposeSecret, SecretError, SecretSink, SecretSource, SecretString, VaultLogin, VaultSettings,
    VaultSource,
};
use rampart_testkit::TestVault;
use reqwest::Method;
use serde_json::json;

fn settings(vault: &TestVault, kv_mount: &str, login: VaultLogin) -> VaultSettings {
    VaultSettings::new(
        vault.address.clone(),
        login,
        kv_mount.to_owned(),
        "rampart-test".to_owned(),
    )
}

async fn root_source(vault: &TestVault, kv_mount: &str) -> VaultSource {
    let login = VaultLogin::Token(SecretString::from(vault.root_token.clone()).into());
    VaultSource::connect(settings(vault, kv_mount, login))
        .await
        .expect("connect")
}

/// A policy that may read the secrets under `rampart-test/<service>/` of `kv_mount`, and
/// nothing else: what the playbook grants each service.
async fn service_policy(vault: &TestVault, kv_mount: &str, service: &str) -> String {
    vault
        .new_policy(&format!(
            r#"path "{kv_mount}/data/rampart-test/{service}/*" {{ capabilities = ["read"] }}
path "{kv_mount}/metadata/rampart-test/{service}/*" {{ capabilities = ["read"] }}"#
        ))
        .await
}

/// A new KV mount holding `core/cursor-key` = "value", and the policy that lets core read it.
async fn core_secret_and_policy(vault: &TestVault) -> (String, String) {
    let mount = vault.new_kv_mount().await;
    root_source(vault, &mount)
        .await
        .put("core/cursor-key", &SecretString::from("value"))
        .await
        .expect("seed");
    let policy = service_policy(vault, &mount, "core").await;
    (mount, policy)
}

/// An AppRole login for a role holding only `policy`, with tokens that live an hour.
async fn approle(vault: &TestVault, policy: &str) -> VaultLogin {
    approle_with_ttl(vault, policy, "1h", "24h").await
}

async fn approle_with_ttl(vault: &TestVault, policy: &str, ttl: &str, max_ttl: &str) -> VaultLogin {
    let role = vault.new_approle(policy, ttl, max_ttl).await;
    VaultLogin::AppRole {
        mount: role.mount,
        role_id: role.role_id,
        secret_id: SecretString::from(role.secret_id).into(),
    }
}

#[tokio::test]
async fn kv_v2_round_trips() {
    let vault = rampart_testkit::vault();
    let mount = vault.new_kv_mount().await;
    let source = root_source(&vault, &mount).await;
    crate::sources::round_trips(&source).await;
    assert!(
        !format!("{source:?}").contains(&vault.root_token),
        "Debug never shows the token"
    );
}

/// Each write is a new KV v2 version; the one it replaced is read as the previous value until a
/// newer write replaces it in turn, or an operator deletes it.
#[tokio::test]
async fn kv_v2_keeps_the_previous_version() {
    let vault = rampart_testkit::vault();
    let mount = vault.new_kv_mount().await;
    let source = root_source(&vault, &mount).await;
    let name = "core/cursor-key";
    let read = || async {
        let rotated = source.get_with_previous(name).await.expect("read");
        (
            rotated.current.expose_secret().to_owned(),
            rotated.previous.map(|p| p.expose_secret().to_owned()),
        )
    };

    source.put(name, &SecretString::from("one")).await.expect("v1");
    assert_eq!(read().await, ("one".to_owned(), None));
    source.put(name, &SecretString::from("two")).await.expect("v2");
    assert_eq!(read().await, ("two".to_owned(), Some("one".to_owned())));
    source.put(name, &SecretString::from("three")).await.expect("v3");
    assert_eq!(read().await, ("three".to_owned(), Some("two".to_owned())));
    assert_eq!(source.get(name).await.expect("latest").expose_secret(), "three");

    vault
        .call(
            Method::POST,
            &format!("{mount}/delete/rampart-test/{name}"),
            Some(json!({"versions": [2]})),
        )
        .await;
    // Read by a process that starts now (this one's values are fresh for another minute).
    let later = root_source(&vault, &mount).await;
    let rotated = later.get_with_previous(name).await.expect("read");
    assert_eq!(rotated.current.expose_secret(), "three");
    assert!(rotated.previous.is_none(), "a deleted version is not offered");
}

/// A service logged in with AppRole reads its own secrets; any other path is refused with an
/// error that says so (and is not mistaken for a missing secret or an outage). A wrong secret id
/// is refused at connect.
#[tokio::test]
async fn approle_login_reads_only_what_its_policy_allows() {
    let vault = rampart_testkit::vault();
    let mount = vault.new_kv_mount().await;
    let root = root_source(&vault, &mount).await;
    root.put("core/cursor-key", &SecretString::from("core's"))
        .await
        .expect("seed");
    root.put("auth/cognito-client-secret", &SecretString::from("auth's"))
        .await
        .expect("seed");

    let policy = service_policy(&vault, &mount, "core").await;
    let login = approle(&vault, &policy).await;
    let core = VaultSource::connect(settings(&vault, &mount, login.clone()))
        .await
        .expect("AppRole login");
    assert_eq!(
        core.get("core/cursor-key").await.expect("own secret").expose_secret(),
        "core's"
    );
    let refused = core
        .get("auth/cognito-client-secret")
        .await
        .expect_err("another service's secret");
    assert!(matches!(refused, SecretError::Denied(_)), "{refused:?}");
    assert!(refused.to_string().contains("auth/cognito-client-secret"), "{refused}");
    assert!(!refused.to_string().contains("auth's"), "{refused}");
    let written = core
        .put("core/cursor-key", &SecretString::from("x"))
        .await
        .expect_err("read-only");
    assert!(matches!(written, SecretError::Denied(_)), "{written:?}");
    assert_eq!(
        core.status().logins,
        1,
        "a policy's refusal is no reason to log in again"
    );

    let VaultLogin::AppRole {
        mount: auth_mount,
        role_id,
        ..
    } = login
    else {
        unreachable!("an AppRole login")
    };
    let wrong = VaultLogin::AppRole {
        mount: auth_mount,
        role_id,
        secret_id: SecretString::from("not-the-secret-id").into(),
    };
    let refused = VaultSource::connect(settings(&vault, &mount, wrong))
        .await
        .expect_err("a wrong secret id");
    assert!(matches!(refused, SecretError::Denied(_)), "{refused:?}");
    assert!(!refused.to_string().contains("not-the-secret-id"), "{refused}");
}

/// When an operator revokes every token the service's login made, the next read logs in again
/// and succeeds: no restart, no failed read.
#[tokio::test]
async fn a_revoked_token_is_replaced_by_a_new_login() {
    let vault = rampart_testkit::vault();
    let (mount, policy) = core_secret_and_policy(&vault).await;
    let login = approle(&vault, &policy).await;
    let VaultLogin::AppRole { mount: auth_mount, .. } = &login else {
        unreachable!("an AppRole login")
    };
    let revoke_all = format!("sys/leases/revoke-prefix/auth/{auth_mount}/login");
    let mut settings = settings(&vault, &mount, login.clone());
    settings.refresh = Duration::ZERO;
    let core = Arc::new(VaultSource::connect(settings).await.expect("login"));
    assert_eq!(
        core.get("core/cursor-key").await.expect("read").expose_secret(),
        "value"
    );

    vault.call(Method::PUT, &revoke_all, None).await;
    let reads: Vec<_> = (0..10)
        .map(|_| {
            let core = Arc::clone(&core);
            tokio::spawn(async move { core.get("core/cursor-key").await })
        })
        .collect();
    for read in reads {
        let value = read.await.expect("task").expect("read after revocation");
        assert_eq!(value.expose_secret(), "value");
    }
    assert_eq!(
        core.status().logins,
        2,
        "ten reads refused together make one login between them"
    );
}

/// The secret id is read from its file at each login: one rewritten there (the one the service
/// started with destroyed, as when it expires) is what the next login presents.
#[tokio::test]
async fn a_secret_id_rewritten_in_its_file_is_used_at_the_next_login() {
    let vault = rampart_testkit::vault();
    let (mount, policy) = core_secret_and_policy(&vault).await;
    let role = vault.new_approle(&policy, "1h", "24h").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret-id");
    std::fs::write(&file, &role.secret_id).expect("secret id file");
    let login = VaultLogin::AppRole {
        mount: role.mount.clone(),
        role_id: role.role_id.clone(),
        secret_id: Credential::File(file.clone()),
    };
    let mut settings = settings(&vault, &mount, login);
    settings.refresh = Duration::ZERO;
    let core = VaultSource::connect(settings).await.expect("login");

    let secret_ids = format!("auth/{}/role/service/secret-id", role.mount);
    let fresh = vault.call(Method::POST, &secret_ids, None).await["data"]["secret_id"]
        .as_str()
        .expect("secret id")
        .to_owned();
    std::fs::write(&file, fresh).expect("rewrite");
    let destroy = json!({"secret_id": role.secret_id});
    vault
        .call(Method::POST, &format!("{secret_ids}/destroy"), Some(destroy))
        .await;
    let revoke_all = format!("sys/leases/revoke-prefix/auth/{}/login", role.mount);
    vault.call(Method::PUT, &revoke_all, None).await;

    let value = core.get("core/cursor-key").await.expect("read after a new login");
    assert_eq!(value.expose_secret(), "value");
    assert_eq!(core.status().logins, 2, "logged in again, with the new secret id");
}

/// An ES256 key pair: the test signs service-account tokens with it, and Vault's `jwt` auth
/// method checks them against its public key, as it checks EKS's against the cluster's OIDC
/// keys.
struct Issuer {
    key: aws_lc_rs::signature::EcdsaKeyPair,
}

impl Issuer {
    fn new() -> Self {
        let key = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("key");
        Self { key }
    }

    fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer as _;
        use aws_lc_rs::signature::KeyPair as _;
        let der = self.key.public_key().as_der().expect("der");
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<_> = body.as_bytes().chunks(64).map(|l| String::from_utf8_lossy(l)).collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn token(&self, subject: &str) -> String {
        let encode =
            |value: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let signing_input = format!(
            "{}.{}",
            encode(json!({"alg": "ES256", "typ": "JWT"})),
            encode(json!({
                "iss": "https://oidc.eks.example/id/TEST",
                "sub": subject,
                "aud": ["vault"],
                "iat": now,
                "exp": now + 600,
            }))
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, signing_input.as_bytes()).expect("sign");
        format!(
            "{signing_input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// A pod's service-account token, read from its file at login, gets the role's policy; a token
/// for another service account is refused.
#[tokio::test]
async fn jwt_login_with_a_service_account_token() {
    let vault = rampart_testkit::vault();
    let (mount, policy) = core_secret_and_policy(&vault).await;
    let issuer = Issuer::new();
    let auth_mount = vault.new_auth_mount("jwt").await;
    vault
        .call(
            Method::POST,
            &format!("auth/{auth_mount}/config"),
            Some(json!({
                "jwt_validation_pubkeys": [issuer.public_pem()],
                "bound_issuer": "https://oidc.eks.example/id/TEST",
            })),
        )
        .await;
    vault
        .call(
            Method::POST,
            &format!("auth/{auth_mount}/role/core"),
            Some(json!({
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": ["vault"],
                "bound_subject": "system:serviceaccount:rampart:core",
                "token_policies": [policy],
                "token_ttl": "1h",
            })),
        )
        .await;

    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    let login = VaultLogin::Jwt {
        mount: auth_mount,
        role: "core".to_owned(),
        token_file: token_file.clone(),
    };
    std::fs::write(&token_file, issuer.token("system:serviceaccount:rampart:core")).expect("token");
    let core = VaultSource::connect(settings(&vault, &mount, login.clone()))
        .await
        .expect("JWT login");
    assert_eq!(
        core.get("core/cursor-key").await.expect("read").expose_secret(),
        "value"
    );

    std::fs::write(&token_file, issuer.token("system:serviceaccount:rampart:auth-proxy")).expect("token");
    let refused = VaultSource::connect(settings(&vault, &mount, login))
        .await
        .expect_err("another service account");
    assert!(matches!(refused, SecretError::Denied(_)), "{refused:?}");
}

/// A token that lives 2 s, at most 5 s: the client renews it before it runs out, and logs in
/// again once Vault caps the renewal at the max TTL. Its token never runs out meanwhile, and
/// every read in between succeeds.
#[tokio::test]
async fn the_token_is_renewed_then_got_anew_at_its_max_ttl() {
    let vault = rampart_testkit::vault();
    let (mount, policy) = core_secret_and_policy(&vault).await;
    let login = approle_with_ttl(&vault, &policy, "2s", "5s").await;
    let mut settings = settings(&vault, &mount, login);
    settings.refresh = Duration::ZERO;
    let core = Arc::new(VaultSource::connect(settings).await.expect("login"));
    let renewer = core.keep_token_alive();

    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let status = core.status();
        let left = status.credential_expires_in.expect("a token with a TTL");
        assert!(!left.is_zero(), "the token ran out: {status:?}");
        assert_eq!(
            core.get("core/cursor-key").await.expect("read").expose_secret(),
            "value"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = core.status();
    assert!(status.renewals >= 1, "renewed before it ran out: {status:?}");
    assert!(status.logins >= 2, "logged in again at the max TTL: {status:?}");
    drop(core);
    tokio::time::timeout(Duration::from_secs(5), renewer)
        .await
        .expect("the renewer ends with the source")
        .expect("no panic");
}

/// Vault stopped mid-run: the last good value is served (stale-if-error) and the outage shown in
/// the status; Vault is then asked at most once per back-off window, so a second read answers at
/// once; a secret never read fails clearly. Once Vault is back, a read sees the new value, with
/// no restart.
#[tokio::test]
async fn vault_stopped_mid_run_serves_the_last_good_value_then_recovers() {
    let bao = rampart_testkit::OpenBao::start().expect("an OpenBao of this test's own");
    let vault = bao.vault().clone();
    let mount = vault.new_kv_mount().await;
    let root = root_source(&vault, &mount).await;
    root.put("core/cursor-key", &SecretString::from("before"))
        .await
        .expect("seed");
    let login = VaultLogin::Token(SecretString::from(vault.root_token.clone()).into());
    let mut settings = settings(&vault, &mount, login);
    settings.timeout = Duration::from_millis(500);
    settings.refresh = Duration::ZERO;
    settings.retry_every = Duration::from_secs(2);
    let source = VaultSource::connect(settings).await.expect("connect");
    assert_eq!(
        source.get("core/cursor-key").await.expect("read").expose_secret(),
        "before"
    );

    bao.pause();
    let stale = source.get("core/cursor-key").await.expect("the last good value");
    assert_eq!(stale.expose_secret(), "before");
    let status = source.status();
    assert_eq!(status.stale.len(), 1, "{status:?}");
    assert_eq!(status.stale[0].0, "core/cursor-key");
    assert!(status.stale[0].1 > Duration::from_secs(3500), "{status:?}");

    let asked = Instant::now();
    let again = source.get("core/cursor-key").await.expect("still the last good value");
    assert_eq!(again.expose_secret(), "before");
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "Vault was asked again within the back-off window: {:?}",
        asked.elapsed()
    );
    let never_read = source.get("core/other").await.expect_err("nothing to serve");
    assert!(matches!(never_read, SecretError::Unavailable(_)), "{never_read:?}");

    bao.resume();
    root.put("core/cursor-key", &SecretString::from("after"))
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        source.get("core/cursor-key").await.expect("read").expose_secret(),
        "after"
    );
    assert!(source.status().stale.is_empty());
}
