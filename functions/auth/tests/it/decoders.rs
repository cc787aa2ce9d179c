//! Property tests on the request decoders: whatever bytes arrive, the answer is a success or a
//! 4xx problem+json, never a 5xx or a panic.

use axum::body::Body;
use http_body_util::BodyExt;
use proptest::prelude::*;
use rampart_auth_function::{Backends, router};
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = rampart_testkit::embedded_settings(dir.path());
        let backends = runtime
            .block_on(Backends::connect(&settings, None))
            .expect("embedded backends");
        Self {
            app: router(backends, &settings, &Default::default()),
            runtime,
            _dir: dir,
        }
    }

    /// POSTs `body` as JSON to `path`; returns the status and content type.
    fn post(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.expect("response");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let _ = response.into_body().collect().await.expect("body");
            (status, content_type)
        })
    }
}

const PATHS: [&str; 7] = [
    "/v1/auth/register",
    "/v1/auth/confirm",
    "/v1/auth/login",
    "/v1/auth/login/mfa",
    "/v1/auth/refresh",
    "/v1/auth/password/forgot",
    "/v1/auth/password/reset",
];

fn assert_client_error_or_success(path: &str, (status, content_type): (u16, String)) {
    assert!(status < 500, "{path} answered {status}");
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json", "{path} {status}");
    }
}

/// Strings that probe the validators: empty, huge, control and non-ASCII characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        "[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,4}",
        "[\\x00-\\x1f\"\\\\]{0,8}",
        Just("x".repeat(5000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_cause_a_server_error(bytes in proptest::collection::vec(any::<u8>(), 0..512), path in 0..PATHS.len()) {
        let harness = harness();
        assert_client_error_or_success(PATHS[path], harness.post(PATHS[path], bytes));
    }

    #[test]
    fn arbitrary_field_values_never_cause_a_server_error(
        email in text(), password in text(), code in text(), extra in proptest::option::of("[a-z]{1,8}"), path in 0..PATHS.len(),
    ) {
        let mut body = serde_json::json!({
            "email": email, "password": password, "new_password": password, "code": code,
            "challenge": code, "refresh_token": code,
        });
        if let Some(extra) = extra {
            body[extra] = serde_json::Value::Bool(true);
        }
        let harness = harness();
        let bytes = serde_json::to_vec(&body).expect("json");
        assert_client_error_or_success(PATHS[path], harness.post(PATHS[path], bytes));
    }
}

/// One embedded stack shared by every case (each case is cheap; the stack is not).
fn harness() -> &'static Harness {
    static HARNESS: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    HARNESS.get_or_init(Harness::new)
}

/// Every request type that carries a password, code or token prints it as redacted through
/// `Debug`, so no `?request` in a log line or panic message can leak one.
#[test]
fn request_types_never_print_their_secrets() {
    use rampart_auth_function::{account, oauth, signin, signup};
    const SECRET: &str = "Sekret-Marker-4821";
    fn debug_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: serde_json::Value) -> String {
        format!("{:?}", serde_json::from_value::<T>(body).expect("decodes"))
    }
    let printed = [
        debug_of::<signup::RegisterRequest>(serde_json::json!({"email": "a@example.com", "password": SECRET})),
        debug_of::<signup::ConfirmRequest>(serde_json::json!({"email": "a@example.com", "code": SECRET})),
        debug_of::<signup::ResetPasswordRequest>(
            serde_json::json!({"email": "a@example.com", "code": SECRET, "new_password": SECRET}),
        ),
        debug_of::<signin::LoginRequest>(
            serde_json::json!({"email": "a@example.com", "password": SECRET, "device_token": SECRET}),
        ),
        debug_of::<signin::MfaRequest>(
            serde_json::json!({"email": "a@example.com", "challenge": SECRET, "code": SECRET, "device_token": SECRET}),
        ),
        debug_of::<signin::RefreshRequest>(serde_json::json!({"refresh_token": SECRET})),
        debug_of::<account::ChangePasswordRequest>(
            serde_json::json!({"current_password": SECRET, "new_password": SECRET}),
        ),
        debug_of::<account::CodeRequest>(serde_json::json!({"code": SECRET})),
        debug_of::<oauth::TokenRequest>(serde_json::json!({"grant_type": "refresh_token", "refresh_token": SECRET})),
    ];
    for text in printed {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }
}
