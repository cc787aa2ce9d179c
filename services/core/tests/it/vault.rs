//! core with `secrets.source = "vault"`, against a real OpenBao: it logs in with AppRole from
//! credential files, reads its keys from KV v2, follows a rotation of the cursor key without
//! refusing a cursor made with the key replaced, and says in `/readyz` and its metrics how long
//! its token has left and what it serves stale while Vault is away.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rampart_kernel::config::{SecretsSource, VaultLoginMethod};
use rampart_testkit::{OpenBao, TestVault};
use reqwest::Method;
use serde_json::{Value, json};

use crate::stack::{Stack, User};

/// Writes `value` as a new version of the secret `name` under `prefix`.
async fn write(vault: &TestVault, mount: &str, prefix: &str, name: &str, value: &str) {
    let body = json!({ "data": { "value": value } });
    vault
        .call(Method::POST, &format!("{mount}/data/{prefix}/{name}"), Some(body))
        .await;
}

/// A cursor key of 64 characters, different for each `n`.
fn cursor_key(n: u8) -> String {
    STANDARD.encode([n; 48])
}

/// The cursor of the second page of the caller's organisations, one per page.
async fn second_page_cursor(stack: &Stack, user: &User) -> String {
    let page = stack.get(user, "/v1/orgs?limit=1").await;
    assert_eq!(page.status, 200, "{page:?}");
    page.body["next_cursor"].as_str().expect("a next page").to_owned()
}

/// Until the cursor core makes for the same page changes: core reads keys from Vault again.
async fn cursor_after_rotation(stack: &Stack, user: &User, before: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let cursor = second_page_cursor(stack, user).await;
        if cursor != before {
            return cursor;
        }
        assert!(Instant::now() < deadline, "core did not take the rotated cursor key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn page_status(stack: &Stack, user: &User, cursor: &str) -> u16 {
    stack
        .get(user, &format!("/v1/orgs?limit=1&cursor={cursor}"))
        .await
        .status
}

async fn readyz(stack: &Stack) -> Value {
    let ready = stack
        .http
        .get(format!("{}/readyz", stack.core))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "ready while values can be served");
    ready.json().await.expect("json")
}

#[tokio::test]
async fn core_reads_its_keys_from_vault_follows_a_rotation_and_reports_an_outage() {
    let bao = OpenBao::start().expect("OpenBao");
    let vault = bao.vault().clone();
    let mount = vault.new_kv_mount().await;
    let prefix = rampart_kernel::Settings::default().resource_prefix;
    // The embedded platform's local keys, kept in Vault rather than in data_dir.
    for name in ["envelope/local-kek", "seal/local-key"] {
        write(&vault, &mount, &prefix, name, &STANDARD.encode([7u8; 32])).await;
    }
    write(&vault, &mount, &prefix, "core/cursor-key", &cursor_key(1)).await;
    let policy = vault
        .new_policy(&format!(
            r#"path "{mount}/data/{prefix}/*" {{ capabilities = ["read"] }}
path "{mount}/metadata/{prefix}/*" {{ capabilities = ["read"] }}"#
        ))
        .await;
    let role = vault.new_approle(&policy, "1h", "4h").await;
    let credentials = tempfile::tempdir().expect("tempdir");
    let (role_id, secret_id) = (credentials.path().join("role-id"), credentials.path().join("secret-id"));
    std::fs::write(&role_id, &role.role_id).expect("role id file");
    std::fs::write(&secret_id, &role.secret_id).expect("secret id file");

    let stack = Stack::embedded_configured(|settings| {
        settings.secrets.source = SecretsSource::Vault;
        settings.secrets.refresh_secs = 1;
        let client = &mut settings.secrets.vault;
        client.address = Some(vault.address.clone());
        client.kv_mount = mount.clone();
        client.login = VaultLoginMethod::AppRole;
        client.auth_mount = Some(role.mount.clone());
        client.role_id_file = Some(role_id);
        client.secret_id_file = Some(secret_id);
        client.max_stale_secs = 60;
    })
    .await;
    assert!(
        !stack.dir.path().join("secrets.json").exists(),
        "no secret is kept in data_dir"
    );
    let ada = stack.user().await;
    for name in ["Acme", "Globex", "Initech"] {
        stack.org(&ada, name).await;
    }

    // Rotated once: new cursors use the new key, and one made with the key it replaced opens.
    let first = second_page_cursor(&stack, &ada).await;
    write(&vault, &mount, &prefix, "core/cursor-key", &cursor_key(2)).await;
    let second = cursor_after_rotation(&stack, &ada, &first).await;
    assert_eq!(
        page_status(&stack, &ada, &first).await,
        200,
        "the previous key still opens"
    );
    // Rotated again: the key two rotations back no longer does.
    write(&vault, &mount, &prefix, "core/cursor-key", &cursor_key(3)).await;
    let third = cursor_after_rotation(&stack, &ada, &second).await;
    assert_eq!(page_status(&stack, &ada, &second).await, 200);
    assert_eq!(
        page_status(&stack, &ada, &first).await,
        400,
        "two rotations back is refused"
    );

    let ready = readyz(&stack).await;
    let left = ready["checks"]["secrets"]["credential_expires_in_secs"]
        .as_u64()
        .expect("the token's time left");
    assert!((3000..=3600).contains(&left), "{ready}");
    assert_eq!(ready["checks"]["secrets"]["stale"], json!([]), "{ready}");
    let metrics = stack.metrics.render();
    assert!(metrics.contains("rampart_secrets_logins_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("rampart_secrets_credential_expires_in_seconds "),
        "{metrics}"
    );

    // Vault away: core keeps serving with the keys it read, and says for how long it may.
    bao.pause();
    let deadline = Instant::now() + Duration::from_secs(20);
    let stale = loop {
        let ready = readyz(&stack).await;
        if let Some(stale) = ready["checks"]["secrets"]["stale"].as_array().filter(|s| !s.is_empty()) {
            break stale.clone();
        }
        assert!(Instant::now() < deadline, "the outage never showed: {ready}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(stale[0]["secret"], "core/cursor-key", "{stale:?}");
    let served_for = stale[0]["served_for_secs"].as_u64().expect("time left");
    assert!((1..=60).contains(&served_for), "{stale:?}");
    assert!(
        stack
            .metrics
            .render()
            .contains("rampart_secrets_stale_served_for_seconds{secret=\"core/cursor-key\"}"),
        "the metrics say so too"
    );
    assert_eq!(page_status(&stack, &ada, &third).await, 200, "still served");

    // Back: the next read is fresh, without a restart.
    bao.resume();
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(&stack).await["checks"]["secrets"]["stale"] != json!([]) {
        assert!(Instant::now() < deadline, "still stale after Vault came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
