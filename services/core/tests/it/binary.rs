//! core as EKS runs it: `rampart-core` with its listeners from the environment, following an
//! auth API's keys and revocation feed, becomes ready, serves its API to the auth-proxy alone
//! over mutual TLS (nothing in plaintext), counts each request by matched route on its admin
//! listener (inside the shared edge), answers the kubelet's probes there too, and on SIGTERM
//! drains and exits 0.

use std::time::{Duration, Instant};

use std::path::Path;
use std::sync::Arc;

use rampart_pki::{CertificateIssuer, LocalCa, MutualTls, SpiffeId};
use rampart_testkit::{free_loopback_addr, signal};

/// The auth-proxy's mTLS identity from the CA in `dir`, once the binary has made it.
async fn proxy_identity(dir: &Path) -> Option<Arc<MutualTls>> {
    // Opened only once there (opening makes one where there is none).
    if !dir.join("intermediate.key").exists() {
        return None;
    }
    let ca = LocalCa::open(dir).ok()?;
    let (proxy, core) = (
        SpiffeId::new("rampart", "auth-proxy").ok()?,
        SpiffeId::new("rampart", "core").ok()?,
    );
    let issued = ca.issue(&proxy, Duration::from_secs(600)).await.ok()?;
    MutualTls::new(proxy, core, issued, vec![ca.root()]).ok()
}

#[tokio::test]
async fn the_binary_serves_counts_its_requests_and_is_probed_on_the_admin_listener_and_exits_cleanly() {
    // The issuer core follows: an auth API of its own on loopback.
    let issuer = tempfile::tempdir().expect("tempdir");
    let settings = rampart_testkit::embedded_settings(issuer.path());
    let backends = rampart_auth_function::Backends::connect(&settings, None)
        .await
        .expect("backends");
    let auth = rampart_auth_function::router(backends, &settings, &Default::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let auth = rampart_testkit::spawn(auth, &settings.http, &shutdown).await;
    let data = tempfile::tempdir().expect("tempdir");
    let (api, admin) = (free_loopback_addr(), free_loopback_addr());
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rampart-core"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("RAMPART_")) {
        command.env_remove(name);
    }
    let mut child = command
        .env("RAMPART_LISTEN__CORE", api.to_string())
        .env("RAMPART_LISTEN__ADMIN", admin.to_string())
        .env("RAMPART_DATA_DIR", data.path())
        .env("RAMPART_CORE__AUTH_URL", format!("http://{auth}"))
        .env("RAMPART_TELEMETRY__LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start rampart-core");
    let http = reqwest::Client::new();
    // The auth-proxy's identity, from the CA the binary made under its data directory.
    let deadline = Instant::now() + Duration::from_secs(20);
    let proxy = loop {
        if let Some(proxy) = proxy_identity(&data.path().join("pki")).await {
            break rampart_testkit::https_client(proxy.client_config());
        }
        assert!(child.try_wait().expect("wait").is_none(), "the binary exited at start");
        assert!(Instant::now() < deadline, "the binary made no CA");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while rampart_testkit::https_get(&proxy, &format!("https://{api}/readyz"))
        .await
        .is_err()
    {
        assert!(child.try_wait().expect("wait").is_none(), "the binary exited at start");
        assert!(Instant::now() < deadline, "the binary did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..2 {
        let version = rampart_testkit::https_get(&proxy, &format!("https://{api}/v1/version")).await;
        assert!(version.is_ok(), "{version:?}");
    }
    assert!(
        http.get(format!("http://{api}/v1/version")).send().await.is_err(),
        "nothing is served in plaintext"
    );

    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers().contains_key("x-request-id"));
    assert_eq!(metrics.headers()["x-content-type-options"], "nosniff");
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(r#"rampart_http_requests_total{service="core",method="GET",route="/v1/version",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"rampart_http_request_duration_seconds_count{service="core",method="GET",route="/v1/version"} 2"#
        ),
        "{text}"
    );
    // The kubelet's probes, which cannot present the proxy's certificate: the same health
    // routes as the API port's, answered the same, in plaintext on the admin listener.
    for path in ["/healthz", "/readyz"] {
        let probed = http.get(format!("http://{admin}{path}")).send().await.expect("probe");
        assert_eq!(probed.status(), 200, "{path}");
        assert!(probed.headers().contains_key("x-request-id"), "{path}");
        let probed: serde_json::Value = probed.json().await.expect("json");
        let api_answer = rampart_testkit::https_get(&proxy, &format!("https://{api}{path}"))
            .await
            .expect("the API port answers it too");
        let api_answer: serde_json::Value = serde_json::from_str(&api_answer).expect("json");
        assert_eq!(probed, api_answer, "{path}");
    }
    let ready: serde_json::Value = http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    // The admin listener is not the API: no business route is served there, and errors are
    // problems.
    for path in ["/v1/version", "/v1/orgs", "/v1/openapi.json"] {
        let missing = http.get(format!("http://{admin}{path}")).send().await.expect("404");
        assert_eq!(missing.status(), 404, "{path}");
        assert!(missing.headers().contains_key("x-request-id"));
        assert_eq!(missing.headers()["content-type"], "application/problem+json");
    }

    signal(child.id().expect("pid"), "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited within the drain")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}
