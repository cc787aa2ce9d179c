//! The auth router served through `lambda_http`, fed real API Gateway event JSON.

use http_body_util::BodyExt;
use lambda_http::request::from_str;
use rampart_auth_function::{Backends, router};
use rampart_kernel::Settings;
use tower::ServiceExt;

async fn app(dir: &std::path::Path) -> axum::Router {
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    };
    router(
        Backends::connect(&settings, None).await.expect("embedded backends"),
        &settings,
    )
}

async fn call(event: &str) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let request = from_str(event).expect("valid API Gateway event");
    let response = app(dir.path())
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
    let (status, headers, body) = call(include_str!("events/apigw_v2_jwks.json")).await;
    assert_eq!(status, 200);
    assert_eq!(headers[http::header::CACHE_CONTROL], "public, max-age=300");
    assert_eq!(body["keys"][0]["kty"], "RSA");
    assert_eq!(headers["x-request-id"], "client-req-1");
}

#[tokio::test]
async fn rest_api_v1_event_for_unknown_path_is_problem_json() {
    let (status, headers, body) = call(include_str!("events/apigw_v1_unknown.json")).await;
    assert_eq!(status, 404);
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["type"], "urn:rampart:problem:not-found");
}
