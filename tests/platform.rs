//! The `rampart` binary as a user runs it: the local platform on random loopback ports, a clean
//! exit on SIGTERM and Ctrl-C, start-up refused on a bad setting, and bootstrap + up against moto.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::signal;

struct Platform {
    child: Child,
    proxy: String,
    auth: String,
    /// The proxy's admin `/metrics` URL.
    metrics: String,
    /// The data directory, deleted with the platform.
    data: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rampart() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rampart"));
    // Only what each test sets reaches the binary.
    for (name, _) in std::env::vars() {
        if name.starts_with("RAMPART_") {
            command.env_remove(name);
        }
    }
    command
}

/// Starts `rampart` (no arguments: `up`) and reads the URLs it prints.
fn start(envs: &[(&str, &str)]) -> Platform {
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = rampart()
        .env("RAMPART_DATA_DIR", data.path())
        .env("RAMPART_LISTEN__PROXY", "127.0.0.1:0")
        .env("RAMPART_LISTEN__ADMIN", "127.0.0.1:0")
        .env("RAMPART_LISTEN__AUTH", "127.0.0.1:0")
        .env("RAMPART_LISTEN__CORE", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rampart");
    let stdout = child.stdout.take().expect("stdout");
    let (mut proxy, mut auth, mut admin) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let url = line.split_whitespace().nth(1).map(str::to_owned);
        if line.starts_with("proxy ") {
            proxy = url;
        } else if line.starts_with("auth ") {
            auth = url;
        } else if line.starts_with("admin ") {
            admin = url;
        } else if line.starts_with("Ctrl-C") {
            break;
        }
    }
    Platform {
        child,
        proxy: proxy.expect("proxy URL printed"),
        auth: auth.expect("auth URL printed"),
        metrics: admin.expect("admin URL printed"),
        data,
    }
}

fn wait_exit(platform: &mut Platform) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = platform.child.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rampart did not exit within 30 s of the signal");
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn local_platform_serves_through_the_proxy_and_stops_cleanly_on_sigterm() {
    let mut platform = start(&[]);
    let (status, body) = get_json(&format!("{}/healthz", platform.proxy)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get_json(&format!("{}/v1/version", platform.proxy)).await;
    assert_eq!(
        (status, body["service"].as_str()),
        (200, Some("core")),
        "core is reached through the proxy"
    );
    let (status, body) = get_json(&format!("{}/v1/auth/version", platform.proxy)).await;
    assert_eq!(
        (status, body["service"].as_str()),
        (200, Some("auth")),
        "auth is reached through the proxy"
    );
    let (status, body) = get_json(&format!("{}/.well-known/jwks.json", platform.proxy)).await;
    assert_eq!(status, 200);
    assert_eq!(body["keys"][0]["alg"], "RS256");
    let (status, _) = get_json(&format!("{}/readyz", platform.auth)).await;
    assert_eq!(status, 200);
    // Core's other routes need a token; the proxy says so, and counts what it answered.
    let (status, body) = get_json(&format!("{}/v1/anything", platform.proxy)).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (401, Some("urn:rampart:problem:unauthorized"))
    );
    // One admin listener shows all three: the proxy's series and each service's requests.
    let metrics = reqwest::get(&platform.metrics).await.expect("metrics");
    assert!(metrics.headers().contains_key("x-request-id"));
    assert_eq!(metrics.headers()["x-content-type-options"], "nosniff");
    let metrics = metrics.text().await.expect("text");
    for series in [
        r#"rampart_proxy_requests_total{route="/v1/version",status="200"} 1"#,
        r#"rampart_http_requests_total{service="core",method="GET",route="/v1/version",status="200"} 1"#,
        r#"rampart_http_requests_total{service="auth",method="GET",route="/v1/auth/version",status="200"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    assert!(
        metrics.contains(r#"rampart_proxy_denials_total{reason="missing_token"} 1"#),
        "{metrics}"
    );

    signal(platform.child.id(), "TERM");
    assert!(wait_exit(&mut platform).success(), "exit code 0 after SIGTERM");
}

/// The README's Try-it section, run as written with bash and curl against `rampart up`: only the
/// proxy's address and the data directory are put in for the defaults it names.
#[tokio::test]
async fn the_readme_try_it_section_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let section = readme.split("\n## Try it\n").nth(1).expect("a Try it section");
    let section = section.split("\n## ").next().expect("its end");
    let script: String = section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().expect("a closed block"))
        .collect();
    let mut platform = start(&[]);
    let data = format!("{}/", platform.data.path().display());
    let script = script
        .replace("http://127.0.0.1:8080", &platform.proxy)
        .replace(".rampart/", &data);
    let output = tokio::process::Command::new("bash")
        .args(["-eu", "-c", &script])
        .output()
        .await
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "HTTP/1.1 200 OK",
        r#""service":"core""#,
        r#""service":"auth""#,
        r#""alg":"RS256""#,
        "urn:rampart:problem:not-found",
        "urn:rampart:problem:unauthorized",
        r#""email":"ada@example.com""#,
        r#""name":"Acme""#,
        r#""role":"owner""#,
        r#"{"items":[{"#,
        r#""title":"Rampart core API""#,
    ] {
        assert!(stdout.contains(expected), "{expected} not in\n{stdout}");
    }
    signal(platform.child.id(), "TERM");
    assert!(wait_exit(&mut platform).success(), "exit code 0 after SIGTERM");
}

#[tokio::test]
async fn ctrl_c_stops_the_platform_with_exit_code_zero() {
    let mut platform = start(&[]);
    assert_eq!(get_json(&format!("{}/healthz", platform.proxy)).await.0, 200);
    signal(platform.child.id(), "INT");
    assert!(wait_exit(&mut platform).success(), "exit code 0 after SIGINT");
}

#[test]
fn malformed_setting_stops_start_up_naming_the_key() {
    let output = rampart()
        .env("RAMPART_LISTEN__PROXY", "not-an-address")
        .output()
        .expect("run rampart");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen.proxy"), "{stderr}");
    assert!(stderr.contains("RAMPART_LISTEN__PROXY"), "{stderr}");
}

/// With mTLS on (the default), a routes file sending core's route over plain HTTP could never
/// be answered: start-up stops and names the route.
#[test]
fn a_routes_file_reaching_core_in_plaintext_stops_start_up() {
    let data = tempfile::tempdir().expect("tempdir");
    let core = rampart_testkit::free_loopback_addr();
    let routes = data.path().join("routes.toml");
    std::fs::write(
        &routes,
        format!(
            "[issuer]\nissuer = \"http://127.0.0.1:8080\"\naudience = \"rampart\"\n\
             jwks_url = \"http://127.0.0.1:8081/.well-known/jwks.json\"\n\
             revocations_url = \"http://127.0.0.1:8081/v1/auth/revocations\"\n\
             [[route]]\nprefix = \"/v1/\"\nupstream = \"http://{core}\"\n"
        ),
    )
    .expect("routes file");
    let output = rampart()
        .args(["up", "--routes"])
        .arg(&routes)
        .env("RAMPART_DATA_DIR", data.path())
        .env("RAMPART_LISTEN__PROXY", "127.0.0.1:0")
        .env("RAMPART_LISTEN__ADMIN", "127.0.0.1:0")
        .env("RAMPART_LISTEN__AUTH", "127.0.0.1:0")
        .env("RAMPART_LISTEN__CORE", core.to_string())
        .output()
        .expect("run rampart");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("route /v1/") && stderr.contains(&format!("https://{core}")),
        "{stderr}"
    );
}

#[test]
fn malformed_setting_in_the_config_file_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, "[tokens]\naccess_token_ttl_secs = 3600\n").expect("write");
    let output = rampart()
        .args(["--config", file.to_str().expect("utf-8"), "config", "check"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tokens.access_token_ttl_secs"), "{stderr}");
}

/// `rampart users disable`, run beside a running platform on the same data, ends the user's
/// access at once: their access token is refused on the next request.
#[tokio::test]
async fn users_disable_ends_a_signed_in_users_access_at_once() {
    let platform = start(&[]);
    let http = reqwest::Client::new();
    let api = format!("{}/v1/auth", platform.proxy);
    let (email, password) = ("ada@example.com", "violet kettle harbour");
    let credentials = serde_json::json!({"email": email, "password": password});
    let post = |path: &str, body: serde_json::Value| http.post(format!("{api}{path}")).json(&body).send();
    assert_eq!(
        post("/register", credentials.clone()).await.expect("register").status(),
        202
    );
    let code = rampart_testkit::outbox_code(&platform.data.path().join("outbox.log"), email, "confirm_sign_up")
        .expect("code in the outbox");
    let confirmed = post("/confirm", serde_json::json!({"email": email, "code": code})).await;
    assert_eq!(confirmed.expect("confirm").status(), 204);
    let tokens: serde_json::Value = post("/login", credentials)
        .await
        .expect("login")
        .json()
        .await
        .expect("JSON");
    let me = || {
        http.get(format!("{api}/me"))
            .bearer_auth(tokens["access_token"].as_str().expect("token"))
            .send()
    };
    assert_eq!(me().await.expect("me").status(), 200);

    let disable = |email: &str| {
        rampart()
            .args(["users", "disable", email])
            .env("RAMPART_DATA_DIR", platform.data.path())
            .output()
            .expect("rampart users disable")
    };
    let output = disable(email);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(me().await.expect("me").status(), 401, "refused at once");
    let output = disable("nobody@example.com");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no account"));
}

#[tokio::test]
async fn bootstrap_then_up_serves_from_aws_adapters() {
    let aws = rampart_testkit::aws().await;
    let aws_env = [
        ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("RAMPART_RESOURCE_PREFIX", aws.prefix.as_str()),
        ("RAMPART_MAIL__SENDER", "no-reply@example.com"),
    ];
    let output = rampart().arg("bootstrap").envs(aws_env).output().expect("bootstrap");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let exports: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .flat_map(|line| line.split_whitespace())
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert!(
        exports.iter().any(|(k, _)| k == "RAMPART_AWS__USER_POOL_ID"),
        "{stdout}"
    );

    let mut envs: Vec<(&str, &str)> = aws_env.to_vec();
    envs.extend(exports.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut platform = start(&envs);
    let (status, _) = get_json(&format!("{}/readyz", platform.auth)).await;
    assert_eq!(status, 200, "auth is ready: its DynamoDB table answers");
    let (status, body) = get_json(&format!("{}/.well-known/jwks.json", platform.proxy)).await;
    assert_eq!(status, 200);
    assert_eq!(body["keys"][0]["kty"], "RSA", "the KMS key is published");
    signal(platform.child.id(), "TERM");
    assert!(wait_exit(&mut platform).success());
}

/// The proxy-to-core hop under load while both sides renew 2 s certificates: every request is
/// answered by core, none fails. Refused POSTs (415: core answers before reading their body, so
/// the connection closes) keep the proxy opening new connections, so handshakes happen all
/// along the renewals, not only at the start.
#[tokio::test]
async fn requests_through_the_proxy_to_core_survive_certificate_renewals() {
    let platform = start(&[("RAMPART_MTLS__CERTIFICATE_TTL_SECS", "2")]);
    let http = reqwest::Client::new();
    let tokens = rampart_testkit::sign_in(&http, &platform.auth, &platform.data.path().join("outbox.log")).await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (http, token, orgs) = (http.clone(), token.clone(), format!("{}/v1/orgs", platform.proxy));
        workers.push(tokio::spawn(async move {
            let (mut answered, mut failed) = (0u32, Vec::new());
            while Instant::now() < deadline {
                let (request, expected) = if worker % 4 == 0 {
                    let wrong_type = http
                        .post(&orgs)
                        .header("content-type", "text/plain")
                        .body("x".repeat(64));
                    (wrong_type, 415)
                } else {
                    (http.get(&orgs), 200)
                };
                match request.bearer_auth(&token).send().await {
                    Ok(response) if response.status() == expected => answered += 1,
                    Ok(response) => failed.push(format!("{}: {:?}", response.status(), response.text().await)),
                    Err(error) => failed.push(error.to_string()),
                }
            }
            (answered, failed)
        }));
    }
    let mut answered = 0;
    for worker in workers {
        let (done, failed) = worker.await.expect("worker");
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        answered += done;
    }
    assert!(answered > 200, "the load ran: {answered} requests");
    let metrics = reqwest::get(&platform.metrics)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for service in ["core", "auth-proxy"] {
        let renewals = metrics
            .lines()
            .find(|line| {
                line.starts_with(&format!(
                    "rampart_mtls_certificate_renewals_total{{service=\"{service}\"}}"
                ))
            })
            .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no renewal count for {service} in\n{metrics}"));
        assert!(renewals >= 3, "{service} renewed {renewals} times");
    }
}
