//! Login latency against the cost of its password hash.
//!
//! Builds the embedded stack in a temporary directory, registers and confirms one user, then
//! times `N` full logins (`POST /v1/auth/login` through the router: throttle, identity lookup,
//! argon2id verification, session, access-token signing, audit) and `N` argon2id hashes alone
//! at the embedded adapter's parameters, and prints p50, p95 and mean of each and the ratio of
//! the p95s. The samples are interleaved (one of each kind per round) so that noise from the
//! rest of the machine weighs on every kind alike.
//!
//! Diagnostic rows break the login down: the identity step alone, an argon2id verification with
//! the argon2 crate (what login runs, rather than a hash), and the hash on tokio's blocking pool
//! (where the adapter runs it) with a fresh allocation per call, as the argon2 crate does, and
//! with the adapter's pooled working memory (`rampart_identity::argon`).
//!
//! Run with `cargo bench -p rampart-auth-function --bench login`. `LOGIN_BENCH_N` changes the
//! number of samples of each kind (default 200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use http_body_util::BodyExt;
use rampart_auth_function::{Backends, router};
use rampart_identity::argon::{self, hasher};
use rampart_identity::{Email, LoginOutcome, Password};
use rampart_mailer::outbox::OUTBOX_FILE;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "violet kettle harbour";
const EMAIL: &str = "bench@example.com";
const WARM_UP: usize = 5;

/// p50 and p95 (nearest rank), mean, min and max of a sample.
struct Summary {
    p50: Duration,
    p95: Duration,
    mean: Duration,
    min: Duration,
    max: Duration,
}

impl Summary {
    fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort();
        // Nearest rank: the smallest sample with at least a fraction q of the sample at or below it.
        let rank = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        let total: Duration = sorted.iter().sum();
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            mean: total / u32::try_from(sorted.len()).unwrap_or(u32::MAX),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    fn print(&self, name: &str, n: usize) {
        println!(
            "{name:<32} n={n:<4} p50={:>7.2} ms  p95={:>7.2} ms  mean={:>7.2} ms  min={:>7.2} ms  max={:>7.2} ms",
            ms(self.p50),
            ms(self.p95),
            ms(self.mean),
            ms(self.min),
            ms(self.max),
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

async fn post(app: &axum::Router, path: &str, body: &Value) -> (http::StatusCode, Value) {
    let request = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(body).expect("json")))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (parts.status, value)
}

async fn login(app: &axum::Router) {
    let (status, body) = post(app, "/v1/auth/login", &json!({"email": EMAIL, "password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "authenticated", "{body}");
}

/// An argon2id hash on the calling thread, as the embedded adapter computes it.
fn hash_once() -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(PASSWORD.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// Times `run` once and appends the duration to `samples`.
async fn timed<T>(samples: &mut Vec<Duration>, run: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let value = run.await;
    samples.push(start.elapsed());
    value
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments of its own.
    let n: usize = std::env::var("LOGIN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);

    let dir = tempfile::tempdir().expect("tempdir");
    let settings = rampart_testkit::embedded_settings(dir.path());
    let backends = Backends::connect(&settings, None).await.expect("embedded backends");
    let identity = Arc::clone(&backends.identity);
    let app = router(backends, &settings, &Default::default());

    let (status, body) = post(
        &app,
        "/v1/auth/register",
        &json!({"email": EMAIL, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let code =
        rampart_testkit::outbox_code(&dir.path().join(OUTBOX_FILE), EMAIL, "confirm_sign_up").expect("code in outbox");
    let (status, body) = post(&app, "/v1/auth/confirm", &json!({"email": EMAIL, "code": code})).await;
    assert_eq!(status, 204, "{body}");

    let email = Email::parse(EMAIL).expect("email");
    let password = Password::for_sign_in(PASSWORD).expect("password");
    let stored = hash_once();
    for _ in 0..WARM_UP {
        login(&app).await;
    }
    println!(
        "login bench: {n} interleaved samples of each after {WARM_UP} warm-up logins; argon2id {}; token algorithm {}",
        stored.split('$').nth(3).unwrap_or("?"),
        settings.tokens.algorithm.name()
    );

    let mut logins = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut authentications = Vec::with_capacity(n);
    let mut verifies = Vec::with_capacity(n);
    let mut pooled = Vec::with_capacity(n);
    let mut reused = Vec::with_capacity(n);
    for _ in 0..n {
        // The whole login through the router.
        timed(&mut logins, login(&app)).await;

        // The hash alone, on this thread.
        std::hint::black_box(timed(&mut hashes, async { hash_once() }).await);

        // The identity step alone, as the login handler calls it: SQLite lookup, argon2id
        // verification on the blocking pool, TOTP check.
        let outcome = timed(&mut authentications, identity.authenticate(&email, &password)).await;
        assert!(matches!(outcome, Ok(LoginOutcome::Authenticated(_))));

        // What login runs instead of a hash: parse the stored PHC string and verify against it.
        let matched = timed(&mut verifies, async {
            let parsed = PasswordHash::new(&stored).expect("phc");
            hasher().verify_password(PASSWORD.as_bytes(), &parsed).is_ok()
        })
        .await;
        assert!(matched);

        // The hash on the blocking pool, allocating its memory per call as the adapter does...
        let hash = timed(&mut pooled, tokio::task::spawn_blocking(hash_once)).await;
        std::hint::black_box(hash.expect("join"));
        // ... and with the adapter's pooled memory.
        let hash = timed(
            &mut reused,
            tokio::task::spawn_blocking(|| argon::hash(PASSWORD.as_bytes()).expect("hash")),
        )
        .await;
        std::hint::black_box(hash.expect("join"));
    }

    let login = Summary::of(&logins);
    let hash = Summary::of(&hashes);
    login.print("login (POST /v1/auth/login, 200)", n);
    hash.print("argon2id hash alone", n);
    println!(
        "ratio login_p95 / hash_p95 = {:.3} (target <= 1.3); login_p50 / hash_p50 = {:.3}",
        ratio(login.p95, hash.p95),
        ratio(login.p50, hash.p50),
    );
    println!("diagnostics:");
    Summary::of(&authentications).print("identity.authenticate", n);
    Summary::of(&verifies).print("argon2id verify alone", n);
    Summary::of(&pooled).print("hash on blocking pool", n);
    Summary::of(&reused).print("hash on pool, pooled memory", n);
}
