//! The proxy over real loopback HTTP, in front of the real auth router (embedded stack) and a
//! real upstream that echoes what it received: tokens the auth API issued pass with the right
//! identity headers, every JWT attack is refused, revoked sessions stop passing within the
//! bound, the issuer is not hammered by unknown `kid`s, and routes reload on SIGHUP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use rampart_auth_function::Backends;
use rampart_auth_proxy::{AuthProxy, ProxyConfig};
use rampart_kernel::Settings;
use rampart_kernel::config::SigningAlgorithm;
use rampart_kernel::metrics::Registry;
use rampart_tokens::Signer;
use rampart_tokens::jwt::AccessClaims;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ALLOWED_ORIGIN: &str = "https://app.example";

/// Telemetry as `main` installs it, once per test process, so trace headers really propagate;
/// at log level `warn`, because propagation must not depend on what is logged.
fn telemetry() {
    static GUARD: std::sync::OnceLock<Option<rampart_kernel::telemetry::TelemetryGuard>> = std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        let mut settings = Settings::default().telemetry;
        settings.log_level = "warn".into();
        rampart_kernel::telemetry::init("auth-proxy-test", &settings).ok()
    });
}

use rampart_testkit::spawn as start;
use rampart_testkit::{free_loopback_addr, signal};

/// An upstream that answers with the method, path and headers it received.
fn echo_upstream() -> Router {
    Router::new().fallback(any(|request: Request| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or_default())))
            .collect();
        let path = request.uri().path().to_owned();
        // Read to the end, as a service that acts on the whole body does.
        let Ok(body) = axum::body::to_bytes(request.into_body(), usize::MAX).await else {
            return (http::StatusCode::BAD_REQUEST, "the body broke off").into_response();
        };
        axum::Json(json!({ "path": path, "headers": headers, "body_bytes": body.len() })).into_response()
    }))
}

/// A raw connection to the proxy at `base`, for requests an HTTP client would not send as written.
async fn connect(base: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// A `[[route]]` section: a public route from `prefix` to `upstream`, plus `extra` keys.
fn public_route(prefix: &str, upstream: SocketAddr, extra: &str) -> String {
    format!("\n[[route]]\nprefix = \"{prefix}\"\nupstream = \"http://{upstream}\"\npublic = true\n{extra}")
}

/// POSTs `size` bytes to `path` in 4 KiB chunks (no Content-Length), over a raw connection;
/// returns the status and the whole answer.
async fn send_chunked(base: &str, path: &str, token: &str, size: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect(base).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in vec![b'x'; size].chunks(4096) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The proxy may answer and close before taking the rest: a failed write is not the test's end.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Counts JWKS fetches and, while closed, answers every auth request with 503.
#[derive(Clone, Default)]
struct Issuer {
    jwks_fetches: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

async fn observe(State(issuer): State<Issuer>, request: Request, next: Next) -> Response {
    if issuer.closed.load(Ordering::SeqCst) {
        return http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if request.uri().path() == "/.well-known/jwks.json" {
        issuer.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    }
    next.run(request).await
}

struct Stack {
    base: String,
    /// The admin listener's `/metrics`.
    metrics: String,
    http: reqwest::Client,
    settings: Settings,
    dir: tempfile::TempDir,
    issuer: Issuer,
    backends: Backends,
    config: String,
    proxy: AuthProxy,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Stack {
    async fn new(algorithm: SigningAlgorithm) -> Self {
        Self::with(algorithm, false).await
    }

    /// The auth API (embedded) and an echo upstream behind the proxy, configured from a TOML
    /// file. `closed`: the issuer answers 503 until opened.
    async fn with(algorithm: SigningAlgorithm, closed: bool) -> Self {
        Self::with_settings(algorithm, closed, |_| ()).await
    }

    /// As [`Self::with`], with settings `edit` changes.
    async fn with_settings(algorithm: SigningAlgorithm, closed: bool, edit: impl FnOnce(&mut Settings)) -> Self {
        telemetry();
        let shutdown = CancellationToken::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = rampart_testkit::embedded_settings(dir.path());
        settings.tokens.algorithm = algorithm;
        edit(&mut settings);
        settings.http.cors_allowed_origins = vec![ALLOWED_ORIGIN.into()];
        let backends = Backends::connect(&settings, None).await.expect("backends");
        let issuer = Issuer::default();
        issuer.closed.store(closed, Ordering::SeqCst);
        // One registry, as in `rampart up`: the admin listener shows auth's counters too.
        let registry = Registry::default();
        let auth = rampart_auth_function::router(backends.clone(), &settings, &registry)
            .layer(middleware::from_fn_with_state(issuer.clone(), observe));
        let auth = start(auth, &settings.http, &shutdown).await;
        let echo = start(echo_upstream(), &settings.http, &shutdown).await;
        let config = format!(
            r#"
[issuer]
issuer = "{issuer}"
audience = "{audience}"
jwks_url = "http://{auth}/.well-known/jwks.json"
revocations_url = "http://{auth}/v1/auth/revocations"
unknown_kid_refetch_secs = 30

[rate_limits.tight]
requests = 1
per_secs = 60
burst = 2

[forwarded]
trusted_proxies = ["127.0.0.1"]

[[route]]
prefix = "/v1/auth/"
upstream = "http://{auth}"
public = true

[[route]]
prefix = "/v1/echo"
upstream = "http://{echo}"
scopes = ["core:read"]

[[route]]
prefix = "/v1/admin"
upstream = "http://{echo}"
scopes = ["core:admin"]

[[route]]
prefix = "/v1/limited"
upstream = "http://{echo}"
rate_limit = "tight"

[[route]]
prefix = "/v1/public-limited"
upstream = "http://{echo}"
public = true
rate_limit = "tight"
"#,
            issuer = settings.tokens.issuer,
            audience = settings.tokens.audience,
        );
        let proxy =
            AuthProxy::start(ProxyConfig::parse(&config).expect("config"), &settings, &registry, None).expect("proxy");
        let base = format!("http://{}", start(proxy.service(), &settings.http, &shutdown).await);
        let metrics = format!(
            "http://{}/metrics",
            start(proxy.admin_router(), &settings.http, &shutdown).await
        );
        let stack = Self {
            base,
            metrics,
            http: reqwest::Client::new(),
            settings,
            dir,
            issuer,
            backends,
            config,
            proxy,
            shutdown,
        };
        if !closed {
            stack.wait_ready().await;
        }
        stack
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.get("/readyz", None).await.0 != 200 {
            assert!(Instant::now() < deadline, "the proxy did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
        let response = request.send().await.expect("response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (status, _, body) = self.get_full(path, token).await;
        (status, body)
    }

    async fn get_full(&self, path: &str, token: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// The routes file with one more route: `/v1/open`, public, to the echo upstream.
    fn config_with_open_route(&self) -> String {
        let echo = self
            .config
            .split("prefix = \"/v1/echo\"\nupstream = \"")
            .nth(1)
            .expect("echo route");
        let echo = echo.split('"').next().expect("echo upstream");
        format!(
            "{}\n[[route]]\nprefix = \"/v1/open\"\nupstream = \"{echo}\"\npublic = true\n",
            self.config
        )
    }

    /// Registers, confirms and signs in a new user through the proxy; returns the tokens.
    async fn sign_in(&self) -> Value {
        let outbox = self.dir.path().join(rampart_mailer::outbox::OUTBOX_FILE);
        rampart_testkit::sign_in(&self.http, &self.base, &outbox).await
    }

    /// The auth API's signing key, to forge tokens a real key signed.
    async fn signer(&self) -> Arc<dyn Signer> {
        let keys = &self.backends.keys;
        keys.open(keys.initial_ref()).await.expect("signing key")
    }
}

fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access token")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

/// A token with this header and these claims, signed by `signer`.
async fn signed(signer: &dyn Signer, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = signer.sign(input.as_bytes()).await.expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn a_valid_token_passes_with_identity_headers_and_spoofed_ones_never_arrive() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    let claims: AccessClaims =
        serde_json::from_value(decode(token.split('.').nth(1).expect("claims"))).expect("claims");
    let request = stack
        .http
        .get(format!("{}/v1/echo/things?x=1", stack.base))
        .bearer_auth(token)
        .header("X-Auth-Subject", "admin")
        .header("x_auth_subject", "admin")
        .header("X-AUTH-SCOPES", "core:admin")
        .header("x-rampart-session", "stolen")
        .header("X-Rampart-Anything", "1")
        .header("traceparent", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    let (status, _, body) = stack.send(request).await;
    assert_eq!(status, 200, "{body}");
    let seen = body["headers"].as_object().expect("headers");
    assert_eq!(body["path"], "/v1/echo/things");
    assert_eq!(seen["x-auth-subject"], claims.sub.as_str());
    assert_eq!(seen["x-auth-scopes"], claims.scope.as_str());
    assert_eq!(seen["x-auth-session-id"], claims.sid.as_str());
    assert_eq!(
        seen["authorization"],
        format!("Bearer {token}"),
        "forwarded for core to verify again"
    );
    let identity: Vec<&String> = seen
        .keys()
        .filter(|name| name.starts_with("x-auth") || name.starts_with("x-rampart") || name.starts_with("x_"))
        .collect();
    assert_eq!(identity.len(), 3, "only the proxy's own identity headers: {identity:?}");
    let traceparent = seen["traceparent"].as_str().expect("traceparent");
    assert!(
        traceparent.contains("5759e988bd862e3fe1be46a994272793"),
        "the caller's trace continues: {traceparent}"
    );
    assert!(
        seen["x-amzn-trace-id"]
            .as_str()
            .expect("x-amzn-trace-id")
            .starts_with("Root=1-5759e988-")
    );
    assert!(seen["x-request-id"].is_string());
    assert_eq!(seen["via"], "1.1 rampart", "the proxy names itself as a hop");

    // Without a token, and without the scope a route requires.
    let (status, headers, body) = stack.get_full("/v1/echo", None).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="rampart""#);
    assert_eq!(body["type"], "urn:rampart:problem:unauthorized");
    // The same words as the auth API's (and core's): one refusal, read the same everywhere.
    assert_eq!(body["detail"], "A bearer access token is required.");
    let (status, headers, _) = stack.get_full("/v1/admin/users", Some(token)).await;
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    // Unknown paths are 404 problems, token or not.
    let (status, headers, _) = stack.get_full("/elsewhere", Some(token)).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
}

/// Each attack gets 401 with `error="invalid_token"` and never reaches the upstream.
async fn assert_refused(stack: &Stack, attacks: &[(&str, String)]) {
    for (name, token) in attacks {
        let (status, headers, body) = stack.get_full("/v1/echo", Some(token)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(
            headers["www-authenticate"], r#"Bearer realm="rampart", error="invalid_token""#,
            "{name}"
        );
        assert_eq!(body["type"], "urn:rampart:problem:unauthorized", "{name}");
    }
}

#[tokio::test]
async fn every_jwt_attack_on_rs256_is_refused() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    let signer = stack.signer().await;
    let (header_b64, claims_b64, signature_b64) = {
        let mut parts = token.split('.');
        (
            parts.next().expect("h"),
            parts.next().expect("c"),
            parts.next().expect("s"),
        )
    };
    let header = decode(header_b64);
    let claims = decode(claims_b64);
    let now = claims["iat"].as_i64().expect("iat");
    let with_header = |changes: Value| {
        let mut header = header.clone();
        for (k, v) in changes.as_object().expect("object") {
            header[k] = v.clone();
        }
        header
    };
    let with_claims = |changes: Value| {
        let mut claims = claims.clone();
        for (k, v) in changes.as_object().expect("object") {
            claims[k] = v.clone();
        }
        claims
    };
    // HS256 with the RSA public key as the HMAC secret (algorithm confusion).
    let public_key = URL_SAFE_NO_PAD
        .decode(signer.public_key().n.as_deref().expect("n"))
        .expect("n");
    let hs_input = format!("{}.{claims_b64}", b64(&with_header(json!({"alg": "HS256"}))));
    let hs = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &public_key), hs_input.as_bytes());
    let mut flipped = URL_SAFE_NO_PAD.decode(signature_b64).expect("sig");
    flipped[10] ^= 0x01;
    // A key the issuer never published, under a kid it did not issue.
    let stranger_dir = tempfile::tempdir().expect("tempdir");
    let stranger =
        rampart_tokens::LocalKeySigner::load_or_create(stranger_dir.path(), rampart_tokens::Algorithm::RS256)
            .expect("key");

    let attacks = vec![
        (
            "alg none",
            format!("{}.{claims_b64}.", b64(&with_header(json!({"alg": "none"})))),
        ),
        (
            "HS256 with the RSA public key",
            format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(hs.as_ref())),
        ),
        (
            "unknown kid",
            signed(&stranger, &with_header(json!({"kid": "made-up"})), &claims).await,
        ),
        (
            "expired",
            signed(
                &*signer,
                &header,
                &with_claims(json!({"exp": now - 3600, "iat": now - 4500, "nbf": now - 4500})),
            )
            .await,
        ),
        (
            "not yet valid",
            signed(
                &*signer,
                &header,
                &with_claims(json!({"nbf": now + 3600, "exp": now + 4500})),
            )
            .await,
        ),
        (
            "wrong iss",
            signed(&*signer, &header, &with_claims(json!({"iss": "https://evil.example"}))).await,
        ),
        (
            "wrong aud",
            signed(&*signer, &header, &with_claims(json!({"aud": "someone-else"}))).await,
        ),
        (
            "truncated signature",
            format!("{header_b64}.{claims_b64}.{}", &signature_b64[..20]),
        ),
        ("no signature", format!("{header_b64}.{claims_b64}")),
        (
            "bit-flipped signature",
            format!("{header_b64}.{claims_b64}.{}", URL_SAFE_NO_PAD.encode(&flipped)),
        ),
        (
            "claims swapped under a valid signature",
            format!(
                "{header_b64}.{}.{signature_b64}",
                b64(&with_claims(json!({"sub": "admin"})))
            ),
        ),
        (
            "oversized",
            signed(&*signer, &header, &with_claims(json!({"pad": "x".repeat(10_000)}))).await,
        ),
    ];
    // Headers a real key signed: each is refused for what the header says.
    let mut attacks = attacks;
    for (name, changes) in [
        ("kid path traversal", json!({"kid": "../../keys/signing-key.pk8"})),
        (
            "jku pointing elsewhere",
            json!({"jku": "https://evil.example/jwks.json"}),
        ),
        (
            "x5u pointing elsewhere",
            json!({"x5u": "https://evil.example/cert.pem"}),
        ),
        ("embedded jwk", json!({"jwk": stranger.public_key()})),
        ("an ID token (typ JWT)", json!({"typ": "JWT"})),
    ] {
        attacks.push((name, signed(&*signer, &with_header(changes), &claims).await));
    }
    assert_refused(&stack, &attacks).await;
    // The genuine token still passes: nothing above poisoned the proxy's state.
    assert_eq!(stack.get("/v1/echo", Some(token)).await.0, 200);

    // Each refusal was counted under its reason; the clients saw none of them.
    let metrics = stack.metrics_text().await;
    let count = |reason: &str| -> u64 {
        let prefix = format!("rampart_proxy_denials_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.parse().expect("count"))
    };
    for (reason, expected) in [
        ("unsupported_alg", 2),
        ("unknown_kid", 2),
        ("forbidden_header", 3),
        ("wrong_typ", 1),
        ("expired", 1),
        ("not_yet_valid", 1),
        ("wrong_iss", 1),
        ("wrong_aud", 1),
        ("malformed", 1),
        ("bad_signature", 3),
        ("oversized", 1),
    ] {
        assert_eq!(count(reason), expected, "{reason} in\n{metrics}");
    }
}

#[tokio::test]
async fn ecdsa_signatures_with_r_and_s_zero_are_refused() {
    let stack = Stack::new(SigningAlgorithm::ES256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    let input = token.rsplit_once('.').expect("dot").0;
    let attacks = vec![
        ("r = s = 0", format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]))),
        (
            "DER instead of JOSE",
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])
            ),
        ),
    ];
    assert_refused(&stack, &attacks).await;
    assert_eq!(stack.get("/v1/echo", Some(token)).await.0, 200);
    assert_eq!(
        stack
            .metric("rampart_proxy_denials_total{reason=\"bad_signature\"} ")
            .await
            .as_deref(),
        Some("2")
    );
}

#[tokio::test]
async fn a_revoked_session_stops_passing_within_the_default_bound() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    // Verified once, so the proxy now remembers the token: revocation must still win.
    assert_eq!(stack.get("/v1/echo", Some(token)).await.0, 200);
    assert_eq!(stack.post("/v1/auth/logout", json!({}), Some(token)).await.0, 204);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = stack.get("/v1/echo", Some(token)).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "the revoked session still passed after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A session the user did not revoke is unaffected.
    let other = stack.sign_in().await;
    assert_eq!(stack.get("/v1/echo", Some(access_token(&other))).await.0, 200);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    let (header_b64, rest) = token.split_once('.').expect("dot");
    let before = stack.issuer.jwks_fetches.load(Ordering::SeqCst);
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..60 {
        let mut header = decode(header_b64);
        header["kid"] = json!(format!("random-{i}"));
        let request = stack
            .http
            .get(format!("{}/v1/echo", stack.base))
            .bearer_auth(format!("{}.{rest}", b64(&header)));
        flood.spawn(async move { request.send().await.expect("response").status().as_u16() });
    }
    let statuses = flood.join_all().await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // The first unknown kid looks once (the issuer may have published a new key); the rest of
    // the flood waits for the interval.
    let fetched = stack.issuer.jwks_fetches.load(Ordering::SeqCst) - before;
    assert_eq!(fetched, 1, "JWKS fetches for one flood");
    assert_eq!(stack.get("/v1/echo", Some(token)).await.0, 200);
}

#[tokio::test]
async fn not_ready_and_protected_routes_unavailable_until_the_issuer_answers() {
    let stack = Stack::with(SigningAlgorithm::RS256, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = stack.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    let (status, headers, body) = stack.get_full("/v1/echo", Some("a.b.c")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "1");
    stack.issuer.closed.store(false, Ordering::SeqCst);
    stack.wait_ready().await;
    let tokens = stack.sign_in().await;
    assert_eq!(stack.get("/v1/echo", Some(access_token(&tokens))).await.0, 200);
}

#[tokio::test]
async fn routes_reload_on_sighup_and_a_bad_file_keeps_the_running_ones() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let path = stack.dir.path().join("routes.toml");
    std::fs::write(&path, &stack.config).expect("write");
    stack.proxy.reload_on_sighup(path.clone()).expect("SIGHUP handler");
    let hangup = || signal(std::process::id(), "HUP");
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    assert_eq!(stack.get("/v1/open/x", None).await.0, 404);

    // A new public route appears.
    let added = stack.config_with_open_route();
    // Waits until the reload counter for `result` reaches `count`: the handler has acted.
    let reloads = |result: &'static str, count: usize| {
        let stack = &stack;
        async move {
            let line = format!("rampart_proxy_config_reloads_total{{result=\"{result}\"}} ");
            let deadline = Instant::now() + Duration::from_secs(5);
            while stack.metric(&line).await != Some(count.to_string()) {
                assert!(Instant::now() < deadline, "no {result} reload #{count}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    std::fs::write(&path, &added).expect("write");
    hangup();
    reloads("applied", 1).await;
    assert_eq!(stack.get("/v1/open/x", None).await.0, 200, "the new route is served");

    // A file with a mistake, or one changing the issuer, is refused whole.
    for (n, bad) in [
        added.replace("public = true\n", "public = true\nretries = yes\n"),
        added.replace(&stack.settings.tokens.audience, "another-audience"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&path, bad).expect("write");
        hangup();
        reloads("refused", n + 1).await;
        assert_eq!(stack.get("/v1/open/x", None).await.0, 200);
        assert_eq!(stack.get("/v1/echo", Some(token)).await.0, 200);
    }
    assert_eq!(
        stack
            .metric("rampart_proxy_config_reloads_total{result=\"applied\"} ")
            .await
            .as_deref(),
        Some("1"),
        "neither bad file was applied"
    );
}

/// The proxy as its own process, as EKS runs it: `rampart-auth-proxy` with its routes file
/// (`RAMPART_PROXY_ROUTES`, the environment form of `--routes`, which the settings loader must
/// not refuse as an unknown key) and listeners from the environment proxies in front of the auth
/// API and an upstream, serves its metrics inside the shared edge, takes a new route on SIGHUP,
/// and on SIGTERM drains and exits 0.
#[tokio::test]
async fn the_binary_proxies_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let routes = stack.dir.path().join("binary-routes.toml");
    std::fs::write(&routes, &stack.config).expect("write routes");
    let (proxy, admin) = (free_loopback_addr(), free_loopback_addr());
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rampart-auth-proxy"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("RAMPART_")) {
        command.env_remove(name);
    }
    let mut child = command
        .env("RAMPART_PROXY_ROUTES", &routes)
        .env("RAMPART_LISTEN__PROXY", proxy.to_string())
        .env("RAMPART_LISTEN__ADMIN", admin.to_string())
        .env("RAMPART_DATA_DIR", stack.dir.path())
        .env("RAMPART_TELEMETRY__LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start rampart-auth-proxy");
    let pid = child.id().expect("pid");
    let base = format!("http://{proxy}");
    let get = |url: String, token: Option<String>| {
        let http = stack.http.clone();
        async move {
            let mut request = http.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await
        }
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = get(format!("{base}/readyz"), None).await
            && response.status() == 200
        {
            break;
        }
        assert!(child.try_wait().expect("wait").is_none(), "the binary exited at start");
        assert!(Instant::now() < deadline, "the binary did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // It proxies: sign-in through its public route, then a protected route with the token.
    let outbox = stack.dir.path().join(rampart_mailer::outbox::OUTBOX_FILE);
    let tokens = rampart_testkit::sign_in(&stack.http, &base, &outbox).await;
    let token = access_token(&tokens).to_owned();
    let echoed = get(format!("{base}/v1/echo/x"), Some(token.clone()))
        .await
        .expect("echo");
    assert_eq!(echoed.status(), 200);
    let echoed: Value = echoed.json().await.expect("json");
    assert!(echoed["headers"]["x-auth-subject"].is_string(), "{echoed}");
    assert_eq!(
        get(format!("{base}/v1/echo/x"), None).await.expect("echo").status(),
        401
    );

    // Its metrics listener answers inside the shared edge, errors included.
    let metrics = get(format!("http://{admin}/metrics"), None).await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers().contains_key("x-request-id"));
    assert_eq!(metrics.headers()["x-content-type-options"], "nosniff");
    assert!(
        metrics
            .text()
            .await
            .expect("text")
            .contains("rampart_proxy_requests_total")
    );
    let missing = get(format!("http://{admin}/nothing"), None).await.expect("404");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    assert_eq!(missing.headers()["content-type"], "application/problem+json");

    // SIGHUP: a route added to the file is served.
    assert_eq!(
        get(format!("{base}/v1/open/x"), None).await.expect("open").status(),
        404
    );
    let added = stack.config_with_open_route();
    std::fs::write(&routes, added).expect("write routes");
    signal(pid, "HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(format!("{base}/v1/open/x"), None).await.expect("open").status() != 200 {
        assert!(Instant::now() < deadline, "the new route was not served after SIGHUP");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // SIGTERM: it drains and exits 0.
    signal(pid, "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exited within the drain")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_dead_upstream_is_a_502_problem() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let config = format!(
        "{}\n[[route]]\nprefix = \"/v1/dead\"\nupstream = \"http://{dead}\"\npublic = true\n",
        stack.config
    );
    stack
        .proxy
        .reload(ProxyConfig::parse(&config).expect("config"))
        .expect("reload");
    let (status, body) = stack.get("/v1/dead/x", None).await;
    assert_eq!(status, 502);
    assert_eq!(body["type"], "urn:rampart:problem:bad-gateway");
}

/// An upstream's 4xx body is its API's contract and reaches the client as sent (an RFC 6749
/// token error is JSON, not problem+json); a 5xx body, which may name internals, is replaced.
#[tokio::test]
async fn upstream_client_errors_pass_through_and_server_errors_are_masked() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let upstream = Router::new()
        .route(
            "/v1/errors/token",
            any(|| async {
                (
                    http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                )
            }),
        )
        .route(
            "/v1/errors/crash",
            any(|| async {
                (
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "panicked at src/db.rs:42: pool poisoned",
                )
            }),
        );
    let upstream = start(upstream, &stack.settings.http, &stack.shutdown).await;
    stack.extend_config("", &public_route("/v1/errors", upstream, ""));
    let (status, headers, body) = stack.get_full("/v1/errors/token", None).await;
    assert_eq!((status, &body), (400, &json!({"error": "invalid_grant"})));
    assert_eq!(headers["content-type"], "application/json");
    let (status, headers, body) = stack.get_full("/v1/errors/crash", None).await;
    assert_eq!(status, 500);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(!body.to_string().contains("db.rs"), "{body}");
}

#[tokio::test]
async fn rate_limits_apply_per_subject_or_per_client_address_with_headers() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let alice = stack.sign_in().await;
    let bob = stack.sign_in().await;
    let limited = |token: &str, forwarded_for: Option<&str>, path: &str| {
        let mut request = stack.http.get(format!("{}{path}", stack.base));
        if !token.is_empty() {
            request = request.bearer_auth(token.to_owned());
        }
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        request
    };
    // Signed in: two at once, then 429 with the headers that say when to come back.
    for remaining in ["1", "0"] {
        let (status, headers, body) = stack.send(limited(access_token(&alice), None, "/v1/limited")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["ratelimit-limit"], "2");
        assert_eq!(headers["ratelimit-remaining"], remaining);
    }
    let (status, headers, body) = stack.send(limited(access_token(&alice), None, "/v1/limited")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["type"], "urn:rampart:problem:too-many-requests");
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");
    // Another subject has its own budget, even from the same address.
    assert_eq!(
        stack.send(limited(access_token(&bob), None, "/v1/limited")).await.0,
        200
    );

    // Anonymous: keyed by the client address, read from X-Forwarded-For only because the peer
    // (loopback) is a trusted proxy in this configuration.
    let anonymous = |forwarded_for| stack.send(limited("", Some(forwarded_for), "/v1/public-limited"));
    for _ in 0..2 {
        let (status, _, body) = anonymous("198.51.100.1").await;
        assert_eq!(status, 200);
        assert_eq!(body["headers"]["x-forwarded-for"], "198.51.100.1");
    }
    assert_eq!(anonymous("198.51.100.1").await.0, 429);
    // Prepending a forged address does not buy a new budget: the rightmost untrusted hop counts.
    assert_eq!(anonymous("203.0.113.66, 198.51.100.1").await.0, 429);
    assert_eq!(anonymous("198.51.100.2").await.0, 200);
}

/// The routes file's `[forwarded]` section with the header named: the edge's
/// `CloudFront-Viewer-Address` believed from `trusted` peers.
fn forwarded_section(trusted: &str) -> String {
    format!("trusted_proxies = [\"{trusted}\"]\nclient_address_header = \"CloudFront-Viewer-Address\"")
}

impl Stack {
    /// Reloads the configuration with `forwarded` as the `[forwarded]` section's keys.
    fn reload_forwarded(&self, forwarded: &str) {
        let config = self.config.replace("trusted_proxies = [\"127.0.0.1\"]", forwarded);
        self.proxy
            .reload(ProxyConfig::parse(&config).expect("config"))
            .expect("reload");
    }

    /// A request to the anonymous rate-limited route as API Gateway's load balancer forwards
    /// it: every viewer through the same CloudFront edge and API Gateway hop, with
    /// `viewer_addresses` as `CloudFront-Viewer-Address` lines.
    fn through_the_edge(&self, viewer_addresses: &[&str]) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .get(format!("{}/v1/public-limited", self.base))
            .header("x-forwarded-for", "130.176.88.4, 10.10.3.7");
        for viewer in viewer_addresses {
            request = request.header("cloudfront-viewer-address", (*viewer).to_owned());
        }
        request
    }
}

/// Behind API Gateway and its load balancer, the proxy's peer and the last `X-Forwarded-For`
/// hop are AWS's, and the viewer's address is in CloudFront's `CloudFront-Viewer-Address`
/// (`[forwarded] client_address_header` in the routes file). From a trusted peer that header is
/// the address rate-limited and forwarded, ahead of `X-Forwarded-For`; it never reaches the
/// upstream itself.
#[tokio::test]
async fn from_a_trusted_peer_the_viewer_address_header_is_the_rate_limited_address() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    stack.reload_forwarded(&forwarded_section("127.0.0.1"));
    let through_the_edge = |viewer: &str| stack.through_the_edge(&[viewer]);
    for _ in 0..2 {
        let (status, _, body) = stack.send(through_the_edge("198.51.100.1:50123")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["headers"]["x-forwarded-for"], "198.51.100.1");
        assert!(body["headers"].get("cloudfront-viewer-address").is_none(), "{body}");
    }
    assert_eq!(stack.send(through_the_edge("198.51.100.1:50124")).await.0, 429);
    // Another viewer of the same edge has its own budget, IPv6 (CloudFront's: no brackets) too.
    let (status, _, body) = stack.send(through_the_edge("2001:db8::1:443")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-forwarded-for"], "2001:db8::1");
    assert_eq!(stack.send(through_the_edge("198.51.100.2:443")).await.0, 200);

    // From a peer that is not a trusted proxy the header is the client's own word: ignored, and
    // not passed on. The peer (loopback) is the client, whatever address the header names.
    stack.reload_forwarded(&forwarded_section("10.0.0.0/8"));
    for viewer in ["203.0.113.10:1", "203.0.113.11:1"] {
        let (status, _, body) = stack.send(through_the_edge(viewer)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
        assert!(body["headers"].get("cloudfront-viewer-address").is_none(), "{body}");
    }
    assert_eq!(
        stack.send(through_the_edge("203.0.113.12:1")).await.0,
        429,
        "a new address in the header buys no new budget"
    );
}

/// Not named in the routes file, the header is nobody's word, and it is still stripped: an
/// upstream might believe it. A reload that names it makes the proxy believe it at once.
#[tokio::test]
async fn the_viewer_address_header_is_read_from_the_routes_file_and_always_stripped() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let (status, _, body) = stack.send(stack.through_the_edge(&["198.51.100.1:443"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["headers"]["x-forwarded-for"], "10.10.3.7",
        "the walk stops at the first untrusted hop"
    );
    assert!(body["headers"].get("cloudfront-viewer-address").is_none(), "{body}");
    stack.reload_forwarded(&forwarded_section("127.0.0.1"));
    let (status, _, body) = stack.send(stack.through_the_edge(&["198.51.100.1:443"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-forwarded-for"], "198.51.100.1");
}

/// With the header named and the peer trusted, a request whose header is absent, repeated or
/// unreadable is unattributed: all such requests share one budget, whatever X-Forwarded-For
/// says (behind CloudFront, origin-facing addresses that change per connection), the upstream
/// is told no address, and each is counted.
#[tokio::test]
async fn without_one_readable_viewer_address_a_trusted_peers_request_is_unattributed() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    stack.reload_forwarded(&forwarded_section("127.0.0.1"));
    let from_edge = |edge: &str, viewers: &[&str]| {
        let mut request = stack
            .http
            .get(format!("{}/v1/public-limited", stack.base))
            .header("x-forwarded-for", edge.to_owned());
        for viewer in viewers {
            request = request.header("cloudfront-viewer-address", (*viewer).to_owned());
        }
        request
    };
    let (status, _, body) = stack.send(from_edge("130.176.88.10", &[])).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["headers"].get("x-forwarded-for").is_none(),
        "no address is vouched for: {body}"
    );
    assert_eq!(stack.send(from_edge("130.176.88.11", &["garbage"])).await.0, 200);
    // A new edge address, or a forged line before the edge's, buys no new budget.
    assert_eq!(
        stack
            .send(from_edge("130.176.88.12", &["203.0.113.66:1", "198.51.100.9:443"]))
            .await
            .0,
        429
    );
    assert_eq!(stack.send(from_edge("130.176.88.13", &[])).await.0, 429);
    // A viewer the edge named keeps its own budget.
    assert_eq!(
        stack.send(from_edge("130.176.88.14", &["198.51.100.9:443"])).await.0,
        200
    );
    assert_eq!(
        stack
            .metric("rampart_proxy_unattributed_clients_total{reason=\"absent\"} ")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        stack
            .metric("rampart_proxy_unattributed_clients_total{reason=\"repeated\"} ")
            .await
            .as_deref(),
        Some("1")
    );
}

/// An IPv6 client is limited by its /64, wherever its address comes from: another address in
/// the /64 shares the budget, another /64 has its own.
#[tokio::test]
async fn ipv6_clients_are_rate_limited_by_their_64() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    // From X-Forwarded-For (a trusted peer, no client address header).
    let forwarded_for = |address: &str| {
        stack
            .http
            .get(format!("{}/v1/public-limited", stack.base))
            .header("x-forwarded-for", address.to_owned())
    };
    for _ in 0..2 {
        assert_eq!(stack.send(forwarded_for("2001:db8:9:9::1")).await.0, 200);
    }
    let (status, _, body) = stack.send(forwarded_for("2001:db8:9:9:ffff::2")).await;
    assert_eq!(status, 429, "the same /64 shares the budget: {body}");
    assert_eq!(stack.send(forwarded_for("2001:db8:9:a::1")).await.0, 200);
    // From the viewer address header; the full address still goes to the upstream.
    stack.reload_forwarded(&forwarded_section("127.0.0.1"));
    for _ in 0..2 {
        let (status, _, body) = stack.send(stack.through_the_edge(&["2001:db8:1:2::1:443"])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["headers"]["x-forwarded-for"], "2001:db8:1:2::1");
    }
    assert_eq!(
        stack
            .send(stack.through_the_edge(&["2001:db8:1:2:aaaa::7:443"]))
            .await
            .0,
        429
    );
    assert_eq!(
        stack.send(stack.through_the_edge(&["2001:db8:1:3::1:443"])).await.0,
        200
    );
    // An IPv4-mapped address is its IPv4 address.
    for _ in 0..2 {
        assert_eq!(stack.send(stack.through_the_edge(&["198.51.100.77:443"])).await.0, 200);
    }
    assert_eq!(
        stack
            .send(stack.through_the_edge(&["::ffff:198.51.100.77:443"]))
            .await
            .0,
        429
    );
}

/// An upstream that answers 503 while `failing`, or for the next `fail_next` requests, and
/// 503 with `Retry-After` (load shed on purpose) while `shedding`.
#[derive(Clone, Default)]
struct Flaky {
    failing: Arc<AtomicBool>,
    shedding: Arc<AtomicBool>,
    fail_next: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
}

impl Flaky {
    async fn start(&self, shutdown: &CancellationToken) -> SocketAddr {
        let flaky = self.clone();
        let app = Router::new().fallback(any(move || {
            let flaky = flaky.clone();
            async move {
                flaky.hits.fetch_add(1, Ordering::SeqCst);
                let once = flaky
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if flaky.shedding.load(Ordering::SeqCst) {
                    (
                        http::StatusCode::SERVICE_UNAVAILABLE,
                        [(http::header::RETRY_AFTER, "1")],
                    )
                        .into_response()
                } else if once || flaky.failing.load(Ordering::SeqCst) {
                    http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    "ok".into_response()
                }
            }
        }));
        start(app, &Settings::default().http, shutdown).await
    }
}

impl Stack {
    /// Adds `sections` (before the routes) and `routes` (after them) to the running configuration.
    fn extend_config(&self, sections: &str, routes: &str) {
        let config = self.config.replacen("[[route]]", &format!("{sections}\n[[route]]"), 1) + routes;
        self.proxy
            .reload(ProxyConfig::parse(&config).expect("config"))
            .expect("reload");
    }

    /// The admin listener's `/metrics` page.
    async fn metrics_text(&self) -> String {
        let response = self.http.get(&self.metrics).send().await.expect("metrics");
        response.text().await.expect("text")
    }

    async fn metric(&self, line_prefix: &str) -> Option<String> {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix).map(str::to_owned))
    }
}

#[tokio::test]
async fn the_breaker_opens_on_a_failing_upstream_and_recovers() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let flaky = Flaky::default();
    let upstream = flaky.start(&stack.shutdown).await;
    stack.extend_config(
        "[breaker]\nmin_requests = 4\nopen_ms = 300\n",
        &public_route("/v1/flaky", upstream, ""),
    );
    flaky.failing.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        assert_eq!(stack.get("/v1/flaky", None).await.0, 503);
    }
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 4);
    // Open: answered at once, without calling the upstream, saying why.
    let (status, headers, body) = stack.get_full("/v1/flaky", None).await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "urn:rampart:problem:service-unavailable");
    assert!(
        body["detail"].as_str().expect("detail").contains("circuit open"),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 4);
    let gauge = format!("rampart_proxy_breaker_state{{upstream=\"{upstream}\"}} ");
    assert_eq!(stack.metric(&gauge).await.as_deref(), Some("1"));

    // The upstream recovers; after open_ms one probe closes the breaker.
    flaky.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(stack.get_full("/v1/flaky", None).await.0, 200);
    assert_eq!(stack.get_full("/v1/flaky", None).await.0, 200);
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 6);
    assert_eq!(stack.metric(&gauge).await.as_deref(), Some("0"));
}

/// An upstream shedding load answers at once and is healthy: its 503s with `Retry-After` reach
/// the client as they are and never open its breaker, so a flood aimed at one expensive route
/// (sign-up) cannot make the proxy refuse every other request to that upstream.
#[tokio::test]
async fn an_upstream_shedding_load_does_not_open_its_breaker() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let flaky = Flaky::default();
    let upstream = flaky.start(&stack.shutdown).await;
    stack.extend_config(
        "[breaker]\nmin_requests = 4\nopen_ms = 60000\n",
        &public_route("/v1/flaky", upstream, ""),
    );
    flaky.shedding.store(true, Ordering::SeqCst);
    for _ in 0..8 {
        let (status, headers, _) = stack.get_full("/v1/flaky", None).await;
        assert_eq!(status, 503);
        assert_eq!(headers["retry-after"], "1");
    }
    assert_eq!(
        flaky.hits.load(Ordering::SeqCst),
        8,
        "every request reached the upstream"
    );
    let gauge = format!("rampart_proxy_breaker_state{{upstream=\"{upstream}\"}} ");
    assert_eq!(stack.metric(&gauge).await.as_deref(), Some("0"));
    flaky.shedding.store(false, Ordering::SeqCst);
    assert_eq!(stack.get("/v1/flaky", None).await.0, 200);
}

#[tokio::test]
async fn only_idempotent_requests_are_retried_and_only_where_the_route_allows() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let flaky = Flaky::default();
    let upstream = flaky.start(&stack.shutdown).await;
    stack.extend_config(
        "",
        &(public_route("/v1/retried", upstream, "retries = true\n") + &public_route("/v1/once", upstream, "")),
    );
    let hits = || flaky.hits.load(Ordering::SeqCst);
    // A GET that fails once succeeds on its retry.
    flaky.fail_next.store(1, Ordering::SeqCst);
    assert_eq!(stack.get("/v1/retried/x", None).await.0, 200);
    assert_eq!(hits(), 2);
    // A POST is never replayed: the upstream may have acted on it.
    flaky.fail_next.store(1, Ordering::SeqCst);
    assert_eq!(stack.post("/v1/retried/x", json!({}), None).await.0, 503);
    assert_eq!(hits(), 3);
    // Nor is anything on a route without `retries`.
    flaky.fail_next.store(1, Ordering::SeqCst);
    assert_eq!(stack.get("/v1/once/x", None).await.0, 503);
    assert_eq!(hits(), 4);
    // A GET failing twice is tried twice, not more.
    flaky.fail_next.store(5, Ordering::SeqCst);
    assert_eq!(stack.get("/v1/retried/x", None).await.0, 503);
    assert_eq!(hits(), 6);
}

#[tokio::test]
async fn edge_limits_security_headers_and_cors_apply_to_proxied_traffic() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let tokens = stack.sign_in().await;
    let token = access_token(&tokens);
    // An oversized body is refused at the proxy, before the upstream sees any of it.
    let limit = stack.settings.http.body_limit_bytes;
    let request = stack
        .http
        .post(format!("{}/v1/echo", stack.base))
        .bearer_auth(token)
        .body(vec![b'x'; limit + 1]);
    let (status, headers, body) = stack.send(request).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    // So is a body of undeclared length (chunked) once it grows past the limit: it is cut off
    // there, and the client gets a 413 rather than a gateway error.
    let (status, body) = send_chunked(&stack.base, "/v1/echo", token, limit + 1).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload-too-large"), "{body}");
    let (status, _) = send_chunked(&stack.base, "/v1/echo", token, limit).await;
    assert_eq!(status, 200, "a chunked body within the limit passes");
    // Proxied answers carry the security headers, whatever the upstream sent.
    let (status, headers, _) = stack.get_full("/v1/echo", Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(
        headers["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    // CORS: the allowed origin gets a preflight answer exposing the rate-limit headers; others none.
    let preflight = |origin: &str| {
        stack
            .http
            .request(http::Method::OPTIONS, format!("{}/v1/limited", stack.base))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let (_, headers, _) = stack.send(preflight(ALLOWED_ORIGIN)).await;
    assert_eq!(headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    let (_, headers, _) = stack.send(preflight("https://evil.example")).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let request = stack
        .http
        .get(format!("{}/v1/limited", stack.base))
        .bearer_auth(token)
        .header("origin", ALLOWED_ORIGIN);
    let (status, headers, _) = stack.send(request).await;
    assert_eq!(status, 200);
    let exposed = headers["access-control-expose-headers"].to_str().expect("ascii");
    assert!(exposed.contains("ratelimit-remaining"), "{exposed}");
}

/// An upstream that never answers `/never`, and answers `/stall` with its status, headers and a
/// first chunk, then falls silent.
fn stalling_upstream() -> Router {
    struct Stalled(bool);
    impl http_body::Body for Stalled {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"partial")))))
            }
        }
    }
    Router::new()
        .route("/v1/slow/never", any(std::future::pending::<Response>))
        .route(
            "/v1/slow/stall",
            any(|| async { Response::new(axum::body::Body::new(Stalled(false))) }),
        )
}

#[tokio::test]
async fn a_silent_upstream_is_a_504_and_a_stalled_answer_is_cut_off() {
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let upstream = start(stalling_upstream(), &stack.settings.http, &stack.shutdown).await;
    stack.extend_config("", &public_route("/v1/slow/", upstream, "timeout_ms = 300\n"));
    let started = Instant::now();
    let (status, body) = stack.get("/v1/slow/never", None).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["type"], "urn:rampart:problem:gateway-timeout");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // The answer has begun, so its status stands; but the client is not held open while the
    // upstream says nothing more.
    let response = stack
        .http
        .get(format!("{}/v1/slow/stall", stack.base))
        .send()
        .await
        .expect("response head");
    assert_eq!(response.status(), 200);
    let rest = tokio::time::timeout(Duration::from_secs(3), response.bytes()).await;
    assert!(
        matches!(rest, Ok(Err(_))),
        "the stalled answer was not cut off: {rest:?}"
    );
}

/// Opens a raw connection and sends a POST to `path` that declares `declared` body bytes but
/// carries only `sent`; returns the open stream.
async fn start_upload(base: &str, path: &str, declared: usize, sent: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = connect(base).await;
    let head = format!("POST {path} HTTP/1.1\r\nhost: proxy\r\ncontent-length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&vec![b'x'; sent]).await.expect("part of the body");
    stream
}

#[tokio::test]
async fn clients_that_break_off_or_dawdle_over_their_bodies_do_not_open_the_breaker() {
    use tokio::io::AsyncReadExt;
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    let echo = start(echo_upstream(), &stack.settings.http, &stack.shutdown).await;
    stack.extend_config(
        "[breaker]\nmin_requests = 4\nopen_ms = 60000\n",
        &public_route("/v1/uploads", echo, "timeout_ms = 300\n"),
    );
    // Slow uploads: the route's time runs out while the body is still coming. The client is
    // told so (408); the upstream did nothing wrong.
    for _ in 0..4 {
        let mut stream = start_upload(&stack.base, "/v1/uploads", 1000, 10).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer to a slow upload");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request-timeout"), "{answer}");
    }
    // Broken-off uploads: the client goes away mid-body.
    let answered_before = stack
        .metric("rampart_proxy_requests_total{route=\"/v1/uploads\",status=\"400\"} ")
        .await;
    assert_eq!(answered_before, None);
    for _ in 0..4 {
        drop(start_upload(&stack.base, "/v1/uploads", 1000, 10).await);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while stack
        .metric("rampart_proxy_requests_total{route=\"/v1/uploads\",status=\"400\"} ")
        .await
        .as_deref()
        != Some("4")
    {
        assert!(
            Instant::now() < deadline,
            "the broken-off uploads were not all answered:\n{}",
            stack.metrics_text().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Eight faults, all the clients': the upstream's breaker is still closed.
    let (status, body) = stack.post("/v1/uploads", json!({ "fine": true }), None).await;
    assert_eq!(status, 200, "{body}");
    let gauge = format!("rampart_proxy_breaker_state{{upstream=\"{echo}\"}} ");
    assert_eq!(stack.metric(&gauge).await.as_deref(), Some("0"));
}

#[tokio::test]
async fn paths_that_servers_read_differently_are_refused_before_routing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::new(SigningAlgorithm::RS256).await;
    // Each would match the public auth route here, and could name something else once an
    // upstream resolves dots, decodes once more, takes a backslash or `%2f` for a slash, or
    // strips a `;` parameter.
    for path in [
        "/v1/auth/../echo",
        "/v1/auth/%2e%2e/echo",
        "/v1/auth/./x",
        "/v1/auth/.%2E/echo",
        "/v1/auth/%252e%252e/echo",
        "/v1/auth/..%2fecho",
        "/v1/auth%2f..%2fecho",
        "/v1/auth/..%5cecho",
        "/v1/auth\\..\\echo",
        "/v1/auth/..;/echo",
        "/v1/auth;/../echo",
    ] {
        let mut stream = connect(&stack.base).await;
        let request = format!("GET {path} HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("application/problem+json"), "{path}: {answer}");
    }
    assert_eq!(
        stack.get("/v1/auth/version", None).await.0,
        200,
        "resolved paths still pass"
    );
}
