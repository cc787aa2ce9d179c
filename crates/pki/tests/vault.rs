//! Certificates from Vault's PKI (a real OpenBao), laid out as the Ansible playbook lays it out:
//! a root mount that signed an intermediate mount, whose role per service issues one-hour
//! leaves for that service's SPIFFE ID alone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod common;

use common::serve;
use rampart_pki::{CertificateIssuer, MutualTls, SpiffeId, VaultPki, spiffe_id_of};
use rampart_secrets::{SecretString, VaultLogin, VaultSettings, VaultSource};
use rampart_testkit::{TestVault, https_client, https_get};
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn id(domain: &str, service: &str) -> SpiffeId {
    SpiffeId::new(domain, service).expect("id")
}

/// A root mount, an intermediate mount it signed, and a role per service on the intermediate.
/// Returns (intermediate mount, root mount).
async fn pki(vault: &TestVault) -> (String, String) {
    let suffix = rampart_testkit::unique_suffix();
    let (root, intermediate) = (format!("pki-{suffix}"), format!("pki-int-{suffix}"));
    for (mount, ttl) in [(&root, "87600h"), (&intermediate, "8760h")] {
        let body = json!({"type": "pki", "config": {"max_lease_ttl": ttl}});
        vault
            .call(Method::POST, &format!("sys/mounts/{mount}"), Some(body))
            .await;
    }
    let body = json!({"common_name": "Test Root CA", "ttl": "87600h"});
    vault
        .call(Method::POST, &format!("{root}/root/generate/internal"), Some(body))
        .await;
    let body = json!({"common_name": "Test Intermediate CA"});
    let csr = vault
        .call(
            Method::POST,
            &format!("{intermediate}/intermediate/generate/internal"),
            Some(body),
        )
        .await["data"]["csr"]
        .as_str()
        .expect("csr")
        .to_owned();
    let body = json!({"csr": csr, "format": "pem_bundle", "ttl": "8760h"});
    let signed = vault
        .call(Method::POST, &format!("{root}/root/sign-intermediate"), Some(body))
        .await["data"]["certificate"]
        .as_str()
        .expect("certificate")
        .to_owned();
    let body = json!({"certificate": signed});
    vault
        .call(
            Method::POST,
            &format!("{intermediate}/intermediate/set-signed"),
            Some(body),
        )
        .await;
    for service in ["core", "auth-proxy"] {
        let body = json!({
            "allowed_domains": [service, "localhost"],
            "allow_bare_domains": true,
            "allow_localhost": true,
            "allowed_uri_sans": [format!("spiffe://rampart/{service}")],
            "allow_ip_sans": true,
            "max_ttl": 3600,
            "key_type": "ec",
            "key_bits": 256,
            "server_flag": true,
            "client_flag": true,
            "no_store": true,
        });
        vault
            .call(Method::POST, &format!("{intermediate}/roles/{service}"), Some(body))
            .await;
    }
    (intermediate, root)
}

async fn issuer(vault: &TestVault) -> Arc<VaultPki> {
    let (intermediate, root) = pki(vault).await;
    let login = VaultLogin::Token(SecretString::from(vault.root_token.clone()).into());
    let settings = VaultSettings::new(vault.address.clone(), login, "unused".into(), "rampart-test".into());
    let source = VaultSource::connect(settings).await.expect("Vault");
    Arc::new(VaultPki::new(Arc::new(source), &intermediate, &root))
}

#[tokio::test]
async fn vault_issues_short_leaves_for_the_roles_identity_only() {
    let vault = rampart_testkit::vault();
    let pki = issuer(&vault).await;
    let issued = pki
        .issue(&id("rampart", "core"), Duration::from_secs(120))
        .await
        .expect("issue");
    assert_eq!(issued.chain.len(), 2, "the leaf and the intermediate");
    assert_eq!(spiffe_id_of(&issued.chain[0]).as_deref(), Some("spiffe://rampart/core"));
    let left = issued.not_after.duration_since(SystemTime::now()).expect("future");
    assert!(
        left <= Duration::from_secs(120) && left > Duration::from_secs(100),
        "{left:?}"
    );
    assert_eq!(pki.trust_anchors().await.expect("root").len(), 1);
    // The role issues its service's SPIFFE ID and no other.
    let foreign = pki.issue(&id("elsewhere", "core"), Duration::from_secs(120)).await;
    assert!(foreign.is_err(), "another trust domain's identity was issued");
}

#[tokio::test]
async fn services_holding_vault_certificates_talk_over_mutual_tls_through_renewals() {
    let vault = rampart_testkit::vault();
    let pki: Arc<dyn CertificateIssuer> = issuer(&vault).await;
    let ttl = Duration::from_secs(3);
    let core = MutualTls::start(pki.clone(), id("rampart", "core"), id("rampart", "auth-proxy"), ttl)
        .await
        .expect("core");
    let proxy = MutualTls::start(pki, id("rampart", "auth-proxy"), id("rampart", "core"), ttl)
        .await
        .expect("proxy");
    let shutdown = CancellationToken::new();
    let url = serve(&core, &shutdown).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < deadline {
        // A new connection, so a handshake, each time.
        let answer = https_get(&https_client(proxy.client_config()), &url).await;
        assert_eq!(answer.as_deref(), Ok("spiffe://rampart/auth-proxy"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(core.renewals() >= 1 && proxy.renewals() >= 1, "renewed from Vault");
    shutdown.cancel();
}
