//! The auth router served through `lambda_http`, fed real API Gateway event JSON.

use http_body_util::BodyExt;
use lambda_http::request::from_str;
use rampart_auth_function::{Backends, from_api_gateway, router};
use rampart_testkit::events;
use tower::ServiceExt;

/// The router wrapped exactly as `main` hands it to `lambda_http::run`.
async fn app(
    dir: &std::path::Path,
) -> impl tower::Service<
    http::Request<axum::body::Body>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
> {
    let settings = rampart_testkit::embedded_settings(dir);
    let router = router(
        Backends::connect(&settings, None).await.expect("embedded backends"),
        &settings,
        &Default::default(),
    );
    tower::ServiceExt::map_request(router, from_api_gateway)
}

async fn call(event: &str) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    call_in(dir.path(), event).await
}

/// Sends `event` to the auth router on the embedded stack in `dir`.
async fn call_in(dir: &std::path::Path, event: &str) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let request = from_str(event).expect("valid API Gateway event");
    let response = app(dir)
        .await
        .oneshot(request.map(axum::body::Body::new))
        .await
        .expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).expect("json"),
    )
}

#[tokio::test]
async fn http_api_v2_event_reaches_the_jwks_route() {
    let (status, headers, body) = call(events::HTTP_API_JWKS).await;
    assert_eq!(status, 200);
    assert_eq!(headers[http::header::CACHE_CONTROL], "public, max-age=300");
    assert_eq!(body["keys"][0]["kty"], "RSA");
    assert_eq!(headers["x-request-id"], "client-req-1");
}

#[tokio::test]
async fn rest_api_v1_event_for_unknown_path_is_problem_json() {
    let (status, headers, body) = call(events::REST_PROXY_UNKNOWN_PATH).await;
    assert_eq!(status, 404);
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], "urn:rampart:problem:not-found");
}

#[tokio::test]
async fn http_api_v2_post_registers_and_audits_the_api_gateway_source_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, headers, body) = call_in(dir.path(), events::HTTP_API_REGISTER).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
    assert!(body["detail"].as_str().expect("detail").contains("confirmation code"));
    // The client address comes from the API Gateway request context, not from a header.
    let store = rampart_store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store");
    let audit = rampart_auth_function::audit::AuditLog::new(std::sync::Arc::new(store), 400);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut events = audit.on_day(now_ms, 10).await.expect("audit");
    // In case the test straddles midnight UTC.
    events.extend(audit.on_day(now_ms - 60_000, 10).await.expect("audit"));
    let event = events.first().expect("one event");
    assert_eq!(event.kind, rampart_auth_function::audit::EventKind::Register);
    assert_eq!(event.client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(event.user_agent.as_deref(), Some("rampart-tests/1.0"));
}

#[tokio::test]
async fn rest_api_v1_post_with_wrong_credentials_is_a_401_problem() {
    let (status, headers, body) = call(events::REST_PROXY_LOGIN).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(headers[http::header::WWW_AUTHENTICATE], r#"Bearer realm="rampart""#);
    assert_eq!(body["type"], "urn:rampart:problem:unauthorized");
    assert_eq!(body["detail"], "Incorrect email or password.");
}

#[tokio::test]
async fn the_invocation_trace_replaces_the_forwarded_one() {
    let event = events::HTTP_API_JWKS;
    let mut context = lambda_http::Context::default();
    context.xray_trace_id = Some("Root=1-6740a1b2-0123456789abcdef01234567;Parent=1111222233334444;Sampled=1".into());
    let request = lambda_http::RequestExt::with_lambda_context(from_str(event).expect("event"), context);
    let prepared = from_api_gateway(request);
    assert_eq!(
        prepared.headers()["x-amzn-trace-id"],
        "Root=1-6740a1b2-0123456789abcdef01234567;Parent=1111222233334444;Sampled=1"
    );
    // Without a Lambda context (local runs) the caller's header stands.
    let untouched = from_api_gateway(from_str(event).expect("event"));
    assert_eq!(
        untouched.headers()["x-amzn-trace-id"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    );
}
