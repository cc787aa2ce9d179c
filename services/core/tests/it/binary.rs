//! core as EKS runs it: `rampart-core` with its listeners from the environment, following an
//! auth API's keys and revocation feed, becomes ready, serves its API,
//! counts each request by matched route on its admin listener (inside the shared edge), and on
//! SIGTERM drains and exits 0.

use std::time::{Duration, Instant};

use rampart_testkit::{free_loopback_addr, signal};

#[tokio::test]
async fn the_binary_serves_counts_its_requests_on_the_admin_listener_and_exits_cleanly() {
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http.get(format!("http://{api}/readyz")).send().await, Ok(r) if r.status() == 200) {
        assert!(child.try_wait().expect("wait").is_none(), "the binary exited at start");
        assert!(Instant::now() < deadline, "the binary did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..2 {
        let version = http
            .get(format!("http://{api}/v1/version"))
            .send()
            .await
            .expect("version");
        assert_eq!(version.status(), 200);
    }

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
    // The admin listener is not the API: nothing else is served there, and errors are problems.
    let missing = http
        .get(format!("http://{admin}/v1/version"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    assert_eq!(missing.headers()["content-type"], "application/problem+json");

    signal(child.id().expect("pid"), "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited within the drain")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}
