//! Signing-key rotation on both key sources (local key files; KMS on moto): a new key is
//! published before it signs, tokens of the old key keep verifying until they have expired,
//! and a retired key is no longer published or accepted.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use rampart_auth_function::{Backends, router};
use rampart_identity::{Email, Password, SignUpOutcome};
use rampart_kernel::Settings;
use rampart_keyring::{KeyRing, PUBLISH_LEAD_SECS};
use rampart_tokens::{KeySource, KmsKeys, LocalKeys};
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "violet kettle harbour";

struct Stack {
    backends: Backends,
    settings: Settings,
    email: String,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// The embedded identity and store with `keys`, and one confirmed user.
    async fn new(keys: impl FnOnce(&std::path::Path) -> Arc<dyn KeySource>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = rampart_testkit::embedded_settings(dir.path());
        let mut backends = Backends::connect(&settings, None).await.expect("embedded backends");
        backends.keys = keys(dir.path());
        let identity = &backends.identity;
        let email = format!("k{}@example.com", rampart_testkit::unique_suffix());
        let parsed = Email::parse(&email).expect("email");
        let SignUpOutcome::Created { user_id } = identity
            .sign_up(&parsed, &Password::parse(PASSWORD).expect("password"))
            .await
            .expect("sign up")
        else {
            panic!("a new address is created");
        };
        identity.confirm_user(&user_id).await.expect("confirm");
        Self {
            backends,
            settings,
            email,
            _dir: dir,
        }
    }

    async fn local() -> Self {
        Self::new(|dir| Arc::new(LocalKeys::new(dir.join("keys"), Default::default()))).await
    }

    async fn kms() -> Self {
        let aws = rampart_testkit::aws().await;
        let kms = aws_sdk_kms::Client::new(&aws.config);
        rampart_tokens::kms::provision_keys(&kms, &aws.prefix)
            .await
            .expect("keys");
        Self::new(|_| Arc::new(KmsKeys::new(kms, &aws.prefix))).await
    }

    /// Rotates as `rampart keys rotate` would, `ago` seconds in the past.
    async fn rotate(&self, ago: i64) {
        KeyRing::new(
            Arc::clone(&self.backends.store),
            Arc::clone(&self.backends.keys),
            &self.settings,
        )
        .rotate(now() - ago)
        .await
        .expect("rotate");
    }

    /// A request to a freshly started instance (which reads the ring anew).
    async fn call(&self, request: http::Request<Body>) -> (u16, Value) {
        let response = router(self.backends.clone(), &self.settings, &Default::default())
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn published_kids(&self) -> Vec<String> {
        let (_, jwks) = self
            .call(
                http::Request::get("/.well-known/jwks.json")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_string())
            .collect()
    }

    /// Signs in and returns the access token.
    async fn token(&self) -> String {
        let body = json!({"email": self.email, "password": PASSWORD}).to_string();
        let request = http::Request::post("/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let (status, reply) = self.call(request).await;
        assert_eq!(status, 200, "{reply}");
        reply["access_token"].as_str().expect("token").to_string()
    }

    async fn accepted(&self, token: &str) -> bool {
        let request = http::Request::get("/v1/auth/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        self.call(request).await.0 == 200
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let header: Value = serde_json::from_slice(&bytes).expect("json");
    header["kid"].as_str().expect("kid").to_string()
}

async fn rotation_publishes_first_signs_later_and_retires_after_the_last_token(stack: Stack) {
    let first = stack.token().await;
    let first_kid = kid(&first);
    assert_eq!(stack.published_kids().await, std::slice::from_ref(&first_kid));

    // Just rotated: the new key is published but the old one still signs.
    stack.rotate(0).await;
    let published = stack.published_kids().await;
    assert_eq!(published.len(), 2);
    assert_eq!(kid(&stack.token().await), first_kid);

    // Once the lead has passed, the newest key signs; the old key's tokens still verify.
    stack.rotate(PUBLISH_LEAD_SECS + 5).await;
    let current = stack.token().await;
    assert_ne!(kid(&current), first_kid);
    assert!(stack.published_kids().await.contains(&kid(&current)));
    assert!(stack.accepted(&first).await, "old key's token inside its window");
    assert!(stack.accepted(&current).await);

    // A rotation long enough ago has retired the first key: no longer published or accepted.
    stack.rotate(10 * 3600).await;
    let published = stack.published_kids().await;
    assert!(!published.contains(&first_kid), "{published:?}");
    assert!(!stack.accepted(&first).await);
    assert!(stack.accepted(&stack.token().await).await);
}

#[tokio::test]
async fn local_keys_rotate() {
    rotation_publishes_first_signs_later_and_retires_after_the_last_token(Stack::local().await).await;
}

#[tokio::test]
async fn kms_keys_rotate_on_moto() {
    rotation_publishes_first_signs_later_and_retires_after_the_last_token(Stack::kms().await).await;
}
