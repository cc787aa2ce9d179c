//! The auth API and core served on loopback, wired as `rampart up` wires them, on the
//! embedded backends or on DynamoDB, KMS and Cognito on moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_auth_function::Backends;
use rampart_core::Core;
use rampart_kernel::metrics::Registry;
use rampart_kernel::{Backend, Settings};
use rampart_store::ItemStore;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub http: reqwest::Client,
    pub auth: String,
    pub core: String,
    pub store: Arc<dyn ItemStore>,
    /// The emulator's configuration, on the AWS stack.
    pub aws: Option<aws_types::SdkConfig>,
    pub prefix: String,
    #[allow(
        dead_code,
        reason = "read by the trace test (tests/trace.rs), which shares this stack"
    )]
    pub settings: Settings,
    /// What core and the auth API count, as their admin listener would serve it.
    pub metrics: Registry,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A signed-in user: their id and access token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// An answer: status, headers and JSON body (`Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Stack {
    pub async fn embedded() -> Self {
        Self::embedded_with(|store| store).await
    }

    /// On the embedded backends, the store seen through `wrap` (to inject its faults).
    pub async fn embedded_with(wrap: impl FnOnce(Arc<dyn ItemStore>) -> Arc<dyn ItemStore>) -> Self {
        Self::embedded_from(|_| {}, wrap).await
    }

    /// On the embedded backends, with `adjust` applied to the settings.
    pub async fn embedded_configured(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::embedded_from(adjust, |store| store).await
    }

    async fn embedded_from(
        adjust: impl FnOnce(&mut Settings),
        wrap: impl FnOnce(Arc<dyn ItemStore>) -> Arc<dyn ItemStore>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = rampart_testkit::embedded_settings(dir.path());
        adjust(&mut settings);
        let mut backends = Backends::connect(&settings, None).await.expect("embedded backends");
        backends.store = wrap(backends.store);
        Self::serve(settings, None, backends, dir).await
    }

    pub async fn aws() -> Self {
        Self::aws_on(rampart_testkit::aws().await, |_| {}).await
    }

    /// On the emulator `aws` names, with `adjust` applied to the settings.
    pub async fn aws_on(aws: rampart_testkit::TestAws, adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = Backends::provision(&aws.config, &aws.prefix).await.expect("provision");
        let mut settings = Settings {
            backend: Backend::Aws,
            resource_prefix: aws.prefix.clone(),
            ..rampart_testkit::embedded_settings(dir.path())
        };
        settings.aws.user_pool_id = Some(made.pool.user_pool_id);
        settings.aws.user_pool_client_id = Some(made.pool.client_id);
        settings.mail.sender = Some("auth@example.com".into());
        adjust(&mut settings);
        let backends = Backends {
            // Codes go to the outbox, where the test reads them (SES is tested in crates/mailer).
            mailer: Arc::new(rampart_mailer::OutboxMailer::new(dir.path().join("outbox.log"))),
            ..Backends::connect(&settings, Some(&aws.config))
                .await
                .expect("AWS backends")
        };
        Self::serve(settings, Some(aws.config), backends, dir).await
    }

    async fn serve(
        settings: Settings,
        aws: Option<aws_types::SdkConfig>,
        backends: Backends,
        dir: tempfile::TempDir,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let metrics = Registry::default();
        let (store, secrets) = (Arc::clone(&backends.store), Arc::clone(&backends.secrets));
        let auth_router = rampart_auth_function::router(backends, &settings, &metrics);
        let auth = format!(
            "http://{}",
            rampart_testkit::spawn(auth_router, &settings.http, &shutdown).await
        );
        let mut core_settings = settings.clone();
        core_settings.core.auth_url = Some(auth.clone());
        let core = Core::connect(&core_settings, aws.as_ref(), Arc::clone(&store), Arc::clone(&secrets))
            .await
            .expect("core");
        let core_router = rampart_core::router(core, &settings, &metrics);
        let core = format!(
            "http://{}",
            rampart_testkit::spawn(core_router, &settings.http, &shutdown).await
        );
        let stack = Self {
            // What core answers, redirects included (a 303 is an answer the tests check).
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            auth,
            core,
            store,
            aws,
            prefix: settings.resource_prefix.clone(),
            settings,
            metrics,
            dir,
            shutdown,
        };
        stack.wait_ready().await;
        stack
    }

    /// Until core has the issuer's keys and revocation feed.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self.http.get(format!("{}/readyz", self.core)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "core did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new user, registered, confirmed and signed in at the auth API.
    pub async fn user(&self) -> User {
        let outbox = self.dir.path().join(rampart_mailer::outbox::OUTBOX_FILE);
        let tokens = rampart_testkit::sign_in(&self.http, &self.auth, &outbox).await;
        let token = tokens["access_token"].as_str().expect("access token").to_owned();
        let me = self
            .http
            .get(format!("{}/v1/auth/me", self.auth))
            .bearer_auth(&token)
            .send()
            .await
            .expect("me");
        let me: Value = me.json().await.expect("me json");
        User {
            id: me["sub"].as_str().expect("sub").to_owned(),
            token,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    pub async fn call(&self, user: &User, method: http::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.core))
            .bearer_auth(&user.token);
        if let Some(body) = body {
            let content_type = if method == http::Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request.header("content-type", content_type).body(body.to_string());
        }
        self.send(request).await
    }

    pub async fn get(&self, user: &User, path: &str) -> Reply {
        self.call(user, http::Method::GET, path, None).await
    }

    /// A new organisation of `owner`'s; returns its id.
    pub async fn org(&self, owner: &User, name: &str) -> String {
        let created = self
            .call(
                owner,
                http::Method::POST,
                "/v1/orgs",
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        created.body["id"].as_str().expect("id").to_owned()
    }

    /// A new project in `org`, made by `owner`; returns the path of its documents.
    pub async fn documents_of_new_project(&self, owner: &User, org: &str) -> String {
        let project = self
            .call(
                owner,
                http::Method::POST,
                &format!("/v1/orgs/{org}/projects"),
                Some(serde_json::json!({"name": "P"})),
            )
            .await;
        assert_eq!(project.status, 201, "{project:?}");
        format!(
            "/v1/orgs/{org}/projects/{}/documents",
            project.body["id"].as_str().expect("id")
        )
    }

    /// Adds `member` to `org` with `role`, as `by`.
    pub async fn add(&self, by: &User, org: &str, member: &User, role: &str) -> Reply {
        let body = serde_json::json!({"user_id": member.id, "role": role});
        self.call(by, http::Method::POST, &format!("/v1/orgs/{org}/members"), Some(body))
            .await
    }
}
