//! The authorizer answering the event JSON API Gateway sends (the documented samples, in
//! `crates/testkit/events/`), against the real auth API (embedded stack) on loopback: the decision and
//! identity each format carries back, scopes, revocation within the bound, and failing closed
//! when the issuer cannot be reached.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_auth_function::Backends;
use rampart_authorizer_function::{Authorizer, AuthorizerError};
use rampart_kernel::Settings;
use rampart_kernel::serve::bind;
use rampart_tokens::jwt::AccessClaims;
use rampart_verifier::IssuerConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use rampart_testkit::events::{AUTHORIZER_HTTP_API, AUTHORIZER_REST_REQUEST, AUTHORIZER_REST_TOKEN, with_token};

const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request";

/// The auth API on loopback, its issuer set to the address it serves, as in a deployment where
/// `tokens.issuer` is the public URL of the API.
struct Issuer {
    settings: Settings,
    http: reqwest::Client,
    base: String,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Issuer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut settings = rampart_testkit::embedded_settings(dir.path());
        settings.tokens.issuer = base.clone();
        let backends = Backends::connect(&settings, None).await.expect("backends");
        let app = rampart_auth_function::router(backends, &settings, &Default::default());
        let shutdown = CancellationToken::new();
        rampart_testkit::spawn_on(listener, app, &settings.http, &shutdown);
        Self {
            settings,
            http: reqwest::Client::new(),
            base,
            dir,
            shutdown,
        }
    }

    async fn access_token(&self) -> String {
        let outbox = self.dir.path().join(rampart_mailer::outbox::OUTBOX_FILE);
        let tokens = rampart_testkit::sign_in(&self.http, &self.base, &outbox).await;
        tokens["access_token"].as_str().expect("access token").to_owned()
    }

    fn authorizer(&self, required_scopes: &[&str]) -> Authorizer {
        let mut settings = self.settings.clone();
        settings.authorizer.required_scopes = required_scopes.iter().map(|s| (*s).to_owned()).collect();
        Authorizer::from_settings(&settings).expect("authorizer")
    }
}

fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims")
}

/// The same token with one bit of its signature flipped.
fn tampered(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').expect("signature");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    signature[7] ^= 0x01;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn assert_unauthorized(answer: Result<Value, AuthorizerError>, what: &str) {
    match answer {
        Err(AuthorizerError::Unauthorized) => {}
        other => panic!("{what}: expected the 401 error, got {other:?}"),
    }
}

#[tokio::test]
async fn rest_events_allow_a_valid_token_on_the_whole_stage_with_the_callers_identity() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&[]);
    let token = issuer.access_token().await;
    let claims = claims_of(&token);
    for sample in [AUTHORIZER_REST_TOKEN, AUTHORIZER_REST_REQUEST] {
        let policy = authorizer.handle(with_token(sample, &token)).await.expect("a policy");
        assert_eq!(policy["principalId"], claims.sub.as_str());
        let statement = &policy["policyDocument"]["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "execute-api:Invoke");
        assert_eq!(
            statement["Resource"],
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
        );
        assert_eq!(policy["context"]["sub"], claims.sub.as_str());
        assert_eq!(policy["context"]["scope"], claims.scope.as_str());
        assert_eq!(policy["context"]["sessionId"], claims.sid.as_str());
        assert_eq!(policy["context"]["amr"], claims.amr.join(" ").as_str());
    }
}

#[tokio::test]
async fn http_api_simple_responses_say_whether_the_caller_may_pass() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&[]);
    let token = issuer.access_token().await;
    let answer = authorizer
        .handle(with_token(AUTHORIZER_HTTP_API, &token))
        .await
        .expect("an answer");
    assert_eq!(answer["isAuthorized"], true);
    assert_eq!(answer["context"]["sub"], claims_of(&token).sub.as_str());

    let mut without = with_token(AUTHORIZER_HTTP_API, &token);
    without["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("authorization");
    for (what, refused) in [
        ("tampered", with_token(AUTHORIZER_HTTP_API, &tampered(&token))),
        ("alg none", with_token(AUTHORIZER_HTTP_API, &none_alg(&token))),
        ("no Authorization", without),
    ] {
        let answer = authorizer.handle(refused).await.expect("an answer");
        assert_eq!(answer, serde_json::json!({"isAuthorized": false}), "{what}");
    }
}

/// The token's header switched to `alg: none` and its signature dropped.
fn none_alg(token: &str) -> String {
    let claims = token.split('.').nth(1).expect("claims");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    format!("{header}.{claims}.")
}

#[tokio::test]
async fn rest_events_without_a_valid_token_get_the_401_error() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&[]);
    let token = issuer.access_token().await;
    for sample in [AUTHORIZER_REST_TOKEN, AUTHORIZER_REST_REQUEST] {
        assert_unauthorized(
            authorizer.handle(with_token(sample, &tampered(&token))).await,
            "tampered",
        );
        assert_unauthorized(
            authorizer.handle(with_token(sample, &none_alg(&token))).await,
            "alg none",
        );
    }
    let mut empty = with_token(AUTHORIZER_REST_TOKEN, &token);
    empty["authorizationToken"] = Value::from("");
    assert_unauthorized(authorizer.handle(empty).await, "empty authorizationToken");
    let mut basic = with_token(AUTHORIZER_REST_TOKEN, &token);
    basic["authorizationToken"] = Value::from("Basic dXNlcjpwYXNz");
    assert_unauthorized(authorizer.handle(basic).await, "another scheme");
    // Two Authorization headers: which one API Gateway keeps in `headers` must not matter.
    let mut twice = with_token(AUTHORIZER_REST_REQUEST, &token);
    twice["multiValueHeaders"]["Authorization"] =
        serde_json::json!([format!("Bearer {token}"), format!("Bearer {}", tampered(&token))]);
    assert_unauthorized(authorizer.handle(twice).await, "two Authorization headers");
}

#[tokio::test]
async fn a_missing_scope_is_an_explicit_deny() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&["core:admin"]);
    let token = issuer.access_token().await;
    assert!(!claims_of(&token).scope.split(' ').any(|s| s == "core:admin"));
    let policy = authorizer
        .handle(with_token(AUTHORIZER_REST_TOKEN, &token))
        .await
        .expect("a policy");
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert!(
        policy.get("context").is_none(),
        "a denied caller's identity is not passed on"
    );
    let answer = authorizer
        .handle(with_token(AUTHORIZER_HTTP_API, &token))
        .await
        .expect("an answer");
    assert_eq!(answer["isAuthorized"], false);
}

#[tokio::test]
async fn a_revoked_session_is_refused_within_the_bound_though_its_token_was_allowed_before() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&[]);
    let token = issuer.access_token().await;
    assert!(
        authorizer
            .handle(with_token(AUTHORIZER_REST_TOKEN, &token))
            .await
            .is_ok(),
        "allowed before logout"
    );
    let logout = issuer
        .http
        .post(format!("{}/v1/auth/logout", issuer.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 204);
    let revoked = Instant::now();
    let bound = Duration::from_secs(
        IssuerConfig::for_platform(&issuer.settings, &issuer.base)
            .expect("issuer")
            .revocation_bound_secs,
    );
    loop {
        match authorizer.handle(with_token(AUTHORIZER_REST_TOKEN, &token)).await {
            Err(AuthorizerError::Unauthorized) => break,
            Ok(_) => assert!(
                revoked.elapsed() < bound,
                "still allowed {:?} after logout",
                revoked.elapsed()
            ),
            Err(other) => panic!("unexpected failure: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_unreachable_issuer_fails_closed() {
    // A port nothing listens on: neither keys nor revocations can be read.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", unused.local_addr().expect("addr"));
    drop(unused);
    let issuer = IssuerConfig::for_platform(&Settings::default(), &base).expect("issuer");
    let authorizer = Authorizer::new(&issuer, Vec::new()).expect("authorizer");
    let token = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.e30.c2ln";
    for sample in [AUTHORIZER_REST_TOKEN, AUTHORIZER_REST_REQUEST, AUTHORIZER_HTTP_API] {
        match authorizer.handle(with_token(sample, token)).await {
            Err(AuthorizerError::Unavailable) => {}
            other => panic!("expected a failure API Gateway answers with 500, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn events_of_other_kinds_are_errors_not_allowances() {
    let issuer = Issuer::start().await;
    let authorizer = issuer.authorizer(&[]);
    for unknown in [
        serde_json::json!({"type": "COGNITO", "methodArn": METHOD_ARN}),
        serde_json::json!({"httpMethod": "GET"}),
        serde_json::json!([]),
    ] {
        match authorizer.handle(unknown.clone()).await {
            Err(AuthorizerError::UnknownEvent(_)) => {}
            other => panic!("{unknown}: expected an unknown-event error, got {other:?}"),
        }
    }
}
