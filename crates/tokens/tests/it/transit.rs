//! The Transit adapter against a real Vault (OpenBao's dev server, or `TEST_VAULT_ADDR`), each
//! test on a Transit engine of its own: tokens signed through Transit verify against the JWKS
//! the key ring publishes, in our verifier and in PyJWT, across a rotation; a service that may
//! only sign cannot rotate; references are checked; ES256 from an `ecdsa-p256` key.

use std::sync::Arc;

use rampart_keyring::{KeyError, KeyRing, PUBLISH_LEAD_SECS};
use rampart_secrets::{SecretString, VaultLogin, VaultSettings, VaultSource};
use rampart_testkit::TestVault;
use rampart_tokens::jwt::{KeySet, Rejection, issue, verify};
use rampart_tokens::{Algorithm, Jwk, KeySource, SignerError, TransitKeys, verify_signature};
use reqwest::Method;
use serde_json::json;

use crate::jwt::{NOW, claims, pyjwt_verify, validation};
use crate::signers::signs_verifiably;

const KEY: &str = "rampart-access-token";

/// A Transit engine mounted for one test, holding the key [`KEY`].
struct Transit {
    vault: TestVault,
    mount: String,
}

impl Transit {
    /// Mounts a Transit engine at a path no other test uses and creates [`KEY`] of `key_type`.
    async fn new(key_type: &str) -> Self {
        let vault = rampart_testkit::vault();
        let mount = format!("transit-{}", rampart_testkit::unique_suffix());
        vault
            .call(
                Method::POST,
                &format!("sys/mounts/{mount}"),
                Some(json!({"type": "transit"})),
            )
            .await;
        let transit = Self { vault, mount };
        transit.create_key(KEY, key_type).await;
        transit
    }

    async fn create_key(&self, name: &str, key_type: &str) {
        let path = format!("{}/keys/{name}", self.mount);
        self.vault
            .call(Method::POST, &path, Some(json!({"type": key_type})))
            .await;
    }

    /// The key's latest version, as Vault (read as root) says.
    async fn latest_version(&self) -> u64 {
        let answer = self
            .vault
            .call(Method::GET, &format!("{}/keys/{KEY}", self.mount), None)
            .await;
        answer["data"]["latest_version"].as_u64().expect("latest_version")
    }

    /// The key source a service logged in with `login` gets for [`KEY`] (and fails loudly if
    /// Vault is not there or refuses the login).
    async fn keys_as(&self, login: VaultLogin) -> TransitKeys {
        let settings = VaultSettings::new(
            self.vault.address.clone(),
            login,
            "unused-kv".to_owned(),
            "rampart-test".to_owned(),
        );
        let source = VaultSource::connect(settings).await.expect("log in to Vault");
        TransitKeys::new(Arc::new(source), &self.mount, KEY)
    }

    async fn root_keys(&self) -> TransitKeys {
        self.keys_as(VaultLogin::Token(
            SecretString::from(self.vault.root_token.clone()).into(),
        ))
        .await
    }
}

/// A key ring over a fresh embedded store, taking its keys from `keys`.
fn ring(keys: TransitKeys) -> (KeyRing, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = rampart_testkit::embedded_settings(dir.path());
    let store = rampart_store::connect(&settings, None).expect("store");
    (KeyRing::new(store, Arc::new(keys), &settings), dir)
}

fn jwks(keys: &[Jwk]) -> serde_json::Value {
    json!({ "keys": keys })
}

#[tokio::test]
async fn a_token_signed_through_transit_verifies_against_the_jwks_the_ring_publishes() {
    let transit = Transit::new("rsa-2048").await;
    let keys = transit.root_keys().await;
    assert_eq!(keys.initial_ref(), format!("transit:{KEY}:v1"));
    let (ring, _dir) = ring(keys);

    let signer = ring.signer(NOW).await.expect("the ring opens version 1");
    let token = issue(signer.as_ref(), &claims()).await.expect("sign through Transit");

    let published = ring.published(NOW).await.expect("published");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0], *signer.public_key());
    assert_eq!(published[0].alg, Algorithm::RS256);
    // The JWKS as served (JSON), read back and checked with the crate's verifier.
    let served: Vec<Jwk> = serde_json::from_value(jwks(&published)["keys"].clone()).expect("JWKS JSON");
    assert_eq!(verify(&token, &KeySet::new(served), &validation(), NOW), Ok(claims()));
    let ring_keys = ring.verification_keys(NOW).await.expect("key set");
    assert_eq!(verify(&token, &ring_keys, &validation(), NOW), Ok(claims()));

    // Another Transit key's signature under this kid does not verify.
    transit.create_key("other", "rsa-2048").await;
    let other = transit
        .root_keys()
        .await
        .open("transit:other:v1")
        .await
        .expect("other key");
    let (input, _) = token.rsplit_once('.').expect("dot");
    let forged = other.sign(input.as_bytes()).await.expect("sign");
    assert!(!verify_signature(signer.public_key(), input.as_bytes(), &forged));
}

/// PyJWT, given only the JWKS the ring publishes, verifies what Transit signed: before a
/// rotation, during its publish lead (Vault's latest version is already the new one, but the
/// ring still signs with the old: only the version pinned in each sign request keeps those
/// signatures under the old kid), once the new version signs, and old tokens until their key
/// retires.
#[tokio::test]
async fn pyjwt_verifies_transit_tokens_from_the_jwks_alone_across_a_rotation() {
    let transit = Transit::new("rsa-2048").await;
    let (ring, _dir) = ring(transit.root_keys().await);

    let first = ring.signer(NOW).await.expect("version 1");
    let before = issue(first.as_ref(), &claims()).await.expect("issue");
    let published = ring.published(NOW).await.expect("published");
    assert_eq!(pyjwt_verify(&jwks(&published), &before), "user-1");

    let state = ring.rotate(NOW).await.expect("rotate through Transit");
    assert_eq!(transit.latest_version().await, 2, "Vault rotated the key");
    let refs: Vec<&str> = state.keys.iter().map(|k| k.key_ref.as_str()).collect();
    assert_eq!(refs, [format!("transit:{KEY}:v1"), format!("transit:{KEY}:v2")]);

    // The publish lead: both versions published, version 1 still signing.
    let lead = NOW + 1;
    let still_first = ring.signer(lead).await.expect("signer");
    assert_eq!(still_first.public_key().kid, first.public_key().kid);
    let during = issue(still_first.as_ref(), &claims()).await.expect("issue");
    let published = ring.published(lead).await.expect("published");
    assert_eq!(published.len(), 2);
    for token in [&before, &during] {
        assert_eq!(pyjwt_verify(&jwks(&published), token), "user-1");
    }

    // Version 2 signs; version 1's tokens still verify while it is published.
    let active = NOW + PUBLISH_LEAD_SECS;
    let second = ring.signer(active).await.expect("signer");
    assert_ne!(second.public_key().kid, first.public_key().kid);
    let after = issue(second.as_ref(), &claims()).await.expect("issue");
    let published = ring.published(active).await.expect("published");
    for token in [&before, &during, &after] {
        assert_eq!(pyjwt_verify(&jwks(&published), token), "user-1");
        assert_eq!(
            verify(token, &KeySet::new(published.clone()), &validation(), NOW),
            Ok(claims())
        );
    }

    // Once version 1 retires it is no longer published, and its tokens no longer verify.
    let retires_at = state.keys[0].retires_at.expect("version 1 retires");
    let published = ring.published(retires_at).await.expect("published");
    assert_eq!(published, [second.public_key().clone()]);
    assert_eq!(
        verify(&before, &KeySet::new(published.clone()), &validation(), NOW),
        Err(Rejection::UnknownKey)
    );
    assert_eq!(pyjwt_verify(&jwks(&published), &after), "user-1");
}

/// What the Ansible playbook grants the auth service: sign with the key (SHA-256) and read its
/// public keys; rotation is an operator's.
#[tokio::test]
async fn a_service_that_may_only_sign_signs_but_cannot_rotate() {
    let transit = Transit::new("rsa-2048").await;
    let mount = &transit.mount;
    let policy = transit
        .vault
        .new_policy(&format!(
            r#"path "{mount}/sign/{KEY}/sha2-256" {{ capabilities = ["update"] }}
path "{mount}/keys/{KEY}" {{ capabilities = ["read"] }}"#
        ))
        .await;
    let role = transit.vault.new_approle(&policy, "1h", "24h").await;
    let keys = transit
        .keys_as(VaultLogin::AppRole {
            mount: role.mount,
            role_id: role.role_id,
            secret_id: SecretString::from(role.secret_id).into(),
        })
        .await;

    let signer = keys.open(keys.initial_ref()).await.expect("open as the service");
    signs_verifiably(signer.as_ref(), Algorithm::RS256).await;

    let error = keys.create().await.expect_err("rotation is refused");
    let SignerError::Denied(message) = &error else {
        panic!("expected a denial, got {error:?}");
    };
    assert!(
        message.contains(&format!("rotating Transit key {mount}/{KEY}")) && message.contains("403"),
        "{message}"
    );
    assert_eq!(transit.latest_version().await, 1, "nothing rotated");

    // Through the ring, as `rampart keys rotate` would run: refused, and the ring unchanged.
    let (ring, _dir) = ring(keys);
    let refused = ring.rotate(NOW).await.expect_err("refused");
    assert!(
        matches!(refused, KeyError::Signer(SignerError::Denied(_))),
        "{refused:?}"
    );
    let signer = ring.signer(NOW + PUBLISH_LEAD_SECS).await.expect("still signs");
    assert_eq!(signer.public_key(), &ring.published(NOW).await.expect("published")[0]);
}

#[tokio::test]
async fn an_invalid_key_reference_is_refused() {
    let transit = Transit::new("rsa-2048").await;
    transit.create_key("symmetric", "aes256-gcm96").await;
    transit.create_key("p384", "ecdsa-p384").await;
    let keys = transit.root_keys().await;
    for bad in [
        // Not a Transit reference, or not a well-formed one: refused before Vault is asked.
        "signing-key.pk8".to_owned(),
        "alias/rampart-token-signing".to_owned(),
        format!("transit:{KEY}"),
        format!("transit:{KEY}:v0"),
        format!("transit:{KEY}:v01"),
        format!("transit:{KEY}:v-1"),
        "transit:../sys:v1".to_owned(),
        format!("transit:{KEY}/../other:v1"),
        format!("transit:{KEY}:v1/sha2-256"),
        // Well formed, but naming what does not exist or cannot sign tokens.
        format!("transit:{KEY}:v2"),
        "transit:missing:v1".to_owned(),
        "transit:symmetric:v1".to_owned(),
        "transit:p384:v1".to_owned(),
    ] {
        match keys.open(&bad).await {
            Err(SignerError::InvalidKey(_)) => {}
            other => panic!("{bad}: expected InvalidKey, got {other:?}"),
        }
    }
    keys.open(&format!("transit:{KEY}:v1"))
        .await
        .expect("the real one opens");
}

#[tokio::test]
async fn an_ecdsa_p256_transit_key_signs_es256_in_the_jose_form() {
    let transit = Transit::new("ecdsa-p256").await;
    let (ring, _dir) = ring(transit.root_keys().await);
    let signer = ring.signer(NOW).await.expect("version 1");
    assert_eq!(signer.public_key().alg, Algorithm::ES256);
    // 64-byte r || s (JWS marshaling), verifying only for its message and only whole.
    signs_verifiably(signer.as_ref(), Algorithm::ES256).await;

    let token = issue(signer.as_ref(), &claims()).await.expect("issue");
    let published = ring.published(NOW).await.expect("published");
    assert_eq!(
        verify(&token, &KeySet::new(published.clone()), &validation(), NOW),
        Ok(claims())
    );
    assert_eq!(pyjwt_verify(&jwks(&published), &token), "user-1");

    ring.rotate(NOW).await.expect("rotate");
    let second = ring.signer(NOW + PUBLISH_LEAD_SECS).await.expect("version 2");
    let after = issue(second.as_ref(), &claims()).await.expect("issue");
    let published = ring.published(NOW + PUBLISH_LEAD_SECS).await.expect("published");
    for token in [&token, &after] {
        assert_eq!(pyjwt_verify(&jwks(&published), token), "user-1");
    }
}
