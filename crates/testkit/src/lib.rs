//! Test support shared by every crate's integration tests.
//!
//! [`aws`] gives a test an AWS configuration and a resource prefix of its own. It uses the
//! endpoint in `AWS_ENDPOINT_URL` when set (the test command starts one moto server for the
//! whole run), and otherwise starts `moto_server` on a free loopback port for this test process.
//! [`vault`] does the same for Vault: `TEST_VAULT_ADDR` and `TEST_VAULT_TOKEN` when set, otherwise an
//! OpenBao dev server (`bao server -dev`, the open-source Vault) started for this test process.
//! It never skips: if no emulator can be reached or started, the test fails and says why.

pub mod events;
mod moto;
mod server;
mod tls;
mod vault;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use axum::extract::Request;
use axum::response::Response;
pub use moto::Moto;
use rampart_kernel::Settings;
use rampart_kernel::config::HttpSettings;
pub use tls::{HttpsClient, KeptConnection, https_client, https_get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
pub use vault::{OPENBAO_VERSION, OpenBao, TestVault, vault};

/// The embedded platform's settings with its files in `dir`, everything else at its default.
pub fn embedded_settings(dir: &Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    }
}

/// Serves `service` (a router, or any service over axum's types) on a free loopback port, as
/// `rampart up` serves it (`rampart_kernel::serve` with `http`), until `shutdown` is cancelled.
/// Returns the address it listens on.
pub async fn spawn<S>(service: S, http: &HttpSettings, shutdown: &CancellationToken) -> SocketAddr
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let listener = rampart_kernel::serve::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a loopback port");
    spawn_on(listener, service, http, shutdown)
}

/// [`spawn`] on a listener the test bound itself, for a service that must know its own address
/// before it is built (an issuer whose `tokens.issuer` is the URL it serves).
pub fn spawn_on<S>(listener: TcpListener, service: S, http: &HttpSettings, shutdown: &CancellationToken) -> SocketAddr
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let addr = listener.local_addr().expect("the bound address");
    let (http, shutdown) = (http.clone(), shutdown.clone());
    tokio::spawn(async move { rampart_kernel::serve::serve(listener, service, &http, shutdown).await });
    addr
}

/// A loopback address free when asked, for the listeners of a process a test starts.
pub fn free_loopback_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// Sends the signal `name` (`TERM`, `HUP`, `INT`) to the process `pid`, as an operator would.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// AWS access for one test: unique resource names on a shared emulator.
#[derive(Debug)]
pub struct TestAws {
    pub config: SdkConfig,
    /// A `resource_prefix` no other test uses.
    pub prefix: String,
    pub endpoint: String,
}

/// A short random suffix for names that must not collide between parallel tests.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The emulator endpoint: `AWS_ENDPOINT_URL`, or a moto server started once for this process.
pub fn endpoint() -> String {
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        && !endpoint.is_empty()
    {
        return endpoint;
    }
    static SHARED: OnceLock<String> = OnceLock::new();
    server::once_per_process(&SHARED, Moto::start, |moto| moto.endpoint().to_owned())
}

/// SDK configuration for an emulator at `endpoint`, with fixed dummy credentials, and the
/// platform's timeouts and traced calls.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(rampart_kernel::aws::timeouts())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rampart-testkit",
        ))
        .load()
        .await;
    rampart_kernel::aws::traced(config)
}

/// Everything a test needs to talk to the emulator with names of its own.
pub async fn aws() -> TestAws {
    aws_at(endpoint()).await
}

/// Like [`aws`], for the emulator at `endpoint` (a test's own [`Moto`]).
pub async fn aws_at(endpoint: String) -> TestAws {
    TestAws {
        config: sdk_config(&endpoint).await,
        prefix: format!("t{}", unique_suffix()),
        endpoint,
    }
}

/// The latest code the auth API mailed to `email` for `purpose` (`confirm_sign_up`,
/// `reset_password`), read from the local mailer's outbox file as the user would.
pub fn outbox_code(outbox: &std::path::Path, email: &str, purpose: &str) -> Option<String> {
    let text = std::fs::read_to_string(outbox).ok()?;
    let needle = format!("to={email} purpose={purpose} code=");
    text.lines().rev().find_map(|line| {
        line.split_once(&needle)
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default().to_owned())
    })
}

/// Registers, confirms and signs in a new user at the auth API under `base` (directly or
/// through the proxy), as a client would; the confirmation code comes from the local mailer's
/// `outbox`. Returns the token response.
pub async fn sign_in(http: &reqwest::Client, base: &str, outbox: &std::path::Path) -> serde_json::Value {
    let email = format!("u{}@example.com", unique_suffix());
    let credentials = serde_json::json!({"email": email, "password": "violet kettle harbour"});
    let post = |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).json(&body).send();
    let registered = post("/v1/auth/register", credentials.clone()).await.expect("register");
    assert_eq!(registered.status(), 202, "register");
    let code = outbox_code(outbox, &email, "confirm_sign_up").expect("a confirmation code in the outbox");
    let confirmed = post("/v1/auth/confirm", serde_json::json!({"email": email, "code": code}))
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), 204, "confirm");
    let login = post("/v1/auth/login", credentials).await.expect("login");
    assert_eq!(login.status(), 200, "login");
    login.json().await.expect("token response")
}
