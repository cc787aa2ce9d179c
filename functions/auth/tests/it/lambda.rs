//! The auth router served through `lambda_http`, fed real API Gateway event JSON.

use http_body_util::BodyExt;
use lambda_http::request::from_str;
use rampart_auth_function::{Backends, from_api_gateway, router, with_repeated_headers};
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

// --- the client's address behind CloudFront ------------------------------------------------
//
// Deployed, a request reaches API Gateway from a CloudFront edge: `sourceIp` is the edge's
// address, shared by every viewer of that edge. CloudFront writes the viewer's own address in
// `CloudFront-Viewer-Address` (`address:port`), which `http.client_address_header` names.

/// A CloudFront edge (in CloudFront's origin-facing range) and two viewers behind it.
const EDGE: &str = "130.176.88.4";
const VIEWER: &str = "198.51.100.23";
const OTHER_VIEWER: &str = "192.0.2.80";

type LambdaApp =
    tower::util::MapRequest<axum::Router, fn(http::Request<axum::body::Body>) -> http::Request<axum::body::Body>>;

/// The router as `main` wraps it, on the embedded stack in `dir`, with
/// `http.client_address_header` set to `header`.
async fn app_reading(dir: &std::path::Path, header: Option<&str>) -> LambdaApp {
    let mut settings = rampart_testkit::embedded_settings(dir);
    settings.http.client_address_header =
        header.map(|name| rampart_kernel::forwarded::ClientAddressHeader::parse(name).expect("header name"));
    let router = router(
        Backends::connect(&settings, None).await.expect("embedded backends"),
        &settings,
        &Default::default(),
    );
    tower::ServiceExt::map_request(router, from_api_gateway as fn(_) -> _)
}

/// The request lambda_http builds from `event` as `main` runs it: repeated REST header lines
/// kept (`with_repeated_headers`).
fn request_as_main_builds_it(event: &serde_json::Value) -> lambda_http::Request {
    let event: lambda_http::request::LambdaRequest =
        serde_json::from_value(event.clone()).expect("valid API Gateway event");
    with_repeated_headers(event).into()
}

async fn status_of(app: &LambdaApp, event: &serde_json::Value) -> u16 {
    let request = request_as_main_builds_it(event);
    let response = app
        .clone()
        .oneshot(request.map(axum::body::Body::new))
        .await
        .expect("response");
    response.status().as_u16()
}

/// A REST API (payload v1) sign-in for `email` from `viewer_addresses` (each a
/// `CloudFront-Viewer-Address` line, in arrival order) through the edge. API Gateway lists
/// every line in `multiValueHeaders` and keeps the last in `headers`.
fn rest_login_through_the_edge(email: &str, viewer_addresses: &[&str]) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(events::REST_PROXY_LOGIN).expect("event");
    event["requestContext"]["identity"]["sourceIp"] = EDGE.into();
    let forwarded_for = format!("{VIEWER}, {EDGE}");
    event["headers"]["X-Forwarded-For"] = forwarded_for.clone().into();
    event["multiValueHeaders"]["X-Forwarded-For"] = serde_json::json!([forwarded_for]);
    if let Some(last) = viewer_addresses.last() {
        event["headers"]["CloudFront-Viewer-Address"] = (*last).into();
        event["multiValueHeaders"]["CloudFront-Viewer-Address"] = serde_json::json!(viewer_addresses);
    }
    event["body"] = serde_json::json!({"email": email, "password": "violet kettle harbour"})
        .to_string()
        .into();
    event
}

/// An HTTP API (payload v2) sign-up through the edge; API Gateway joins repeated header lines
/// with commas into one value.
fn http_api_register_through_the_edge(email: &str, viewer_addresses: &[&str]) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(events::HTTP_API_REGISTER).expect("event");
    event["requestContext"]["http"]["sourceIp"] = EDGE.into();
    if !viewer_addresses.is_empty() {
        event["headers"]["cloudfront-viewer-address"] = viewer_addresses.join(",").into();
    }
    event["body"] = serde_json::json!({"email": email, "password": "violet kettle harbour"})
        .to_string()
        .into();
    event
}

/// The client addresses of today's audit events in `dir`.
async fn audited_addresses(dir: &std::path::Path) -> Vec<Option<String>> {
    let store = rampart_store::SqliteStore::open(&dir.join("store.sqlite")).expect("store");
    let audit = rampart_auth_function::audit::AuditLog::new(std::sync::Arc::new(store), 400);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut events = audit.on_day(now_ms, 100).await.expect("audit");
    // In case the test straddles midnight UTC.
    const DAY_MS: i64 = 86_400_000;
    if (now_ms - 60_000) / DAY_MS != now_ms / DAY_MS {
        events.extend(audit.on_day(now_ms - 60_000, 100).await.expect("audit"));
    }
    events.into_iter().map(|event| event.client_ip).collect()
}

/// With the header named, a viewer's failed sign-ins back off that viewer only: another viewer
/// of the same edge still signs in to the same account, and the audit log names the viewers.
#[tokio::test]
async fn rest_api_sign_in_throttle_and_audit_count_the_viewer_not_the_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), Some("cloudfront-viewer-address")).await;
    let victim = "victim@example.com";
    let guess = rest_login_through_the_edge(victim, &[&format!("{VIEWER}:51234")]);
    let mut statuses = Vec::new();
    // Five free guesses, then a back-off (1 s, then doubling) the guesser runs into.
    while statuses.last() != Some(&429) && statuses.len() < 10 {
        statuses.push(status_of(&app, &guess).await);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "the guesser backs off: {statuses:?}");
    // The owner, at another address behind the same edge, is not held up by the guesser.
    let owner = rest_login_through_the_edge(victim, &["2001:db8::1:443"]);
    assert_eq!(
        status_of(&app, &owner).await,
        401,
        "another viewer keeps its own budget"
    );
    let addresses = audited_addresses(dir.path()).await;
    assert_eq!(
        addresses.iter().filter(|a| a.as_deref() == Some(VIEWER)).count(),
        statuses.len(),
        "{addresses:?}"
    );
    assert!(addresses.contains(&Some("2001:db8::1".into())), "{addresses:?}");
    assert!(!addresses.contains(&Some(EDGE.into())), "{addresses:?}");
}

/// A REST event lists every line of a repeated header in `multiValueHeaders` and the last in
/// `headers`; lambda_http alone lets `headers` win, so the request shows one line and a
/// client's own line before the edge's would go unseen. As `main` builds it, the request
/// carries both.
#[test]
fn a_rest_event_keeps_every_line_of_a_repeated_header_as_main_builds_it() {
    let event = rest_login_through_the_edge("x@example.com", &["203.0.113.66:1", "192.0.2.80:443"]);
    let lines = |request: &lambda_http::Request| -> Vec<String> {
        request
            .headers()
            .get_all("cloudfront-viewer-address")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    };
    let plain = from_str(&event.to_string()).expect("event");
    assert_eq!(
        lines(&plain),
        ["192.0.2.80:443"],
        "lambda_http alone keeps the last line"
    );
    assert_eq!(
        lines(&request_as_main_builds_it(&event)),
        ["203.0.113.66:1", "192.0.2.80:443"]
    );
}

/// A viewer who sends a `CloudFront-Viewer-Address` of its own does not choose its address:
/// its line comes before the one CloudFront writes, so the request carries two (on a REST API,
/// every line of `multiValueHeaders`; on an HTTP API, the lines joined into one value, which
/// does not read as `address:port`). Either way the client is unattributed: audited with no
/// address and throttled under the one `unattributed` key, never under the edge's
/// origin-facing address, which changes per connection and would give a fresh budget.
#[tokio::test]
async fn a_forged_viewer_address_line_does_not_choose_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), Some("CloudFront-Viewer-Address")).await;
    let forged = "203.0.113.66:1";
    let rest = rest_login_through_the_edge("forger@example.com", &[forged, &format!("{OTHER_VIEWER}:443")]);
    assert_eq!(status_of(&app, &rest).await, 401);
    let http = http_api_register_through_the_edge("forger@example.com", &[forged, &format!("{VIEWER}:443")]);
    assert_eq!(status_of(&app, &http).await, 202);
    let addresses = audited_addresses(dir.path()).await;
    assert_eq!(addresses, [None, None], "{addresses:?}");
}

/// With the header named but absent, every request is throttled under one `unattributed` key,
/// whichever edge address API Gateway saw: a forger cannot rotate through edge addresses.
#[tokio::test]
async fn rest_api_without_the_header_is_unattributed_whatever_the_edge_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), Some("cloudfront-viewer-address")).await;
    let victim = "unattributed@example.com";
    let from_edge = |edge: &str| {
        let mut event = rest_login_through_the_edge(victim, &[]);
        event["requestContext"]["identity"]["sourceIp"] = edge.into();
        event
    };
    let mut statuses = Vec::new();
    for n in 0..10 {
        // A new origin-facing address for every connection.
        statuses.push(status_of(&app, &from_edge(&format!("130.176.88.{}", 10 + n))).await);
        if statuses.last() == Some(&429) {
            break;
        }
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "one budget for all of them: {statuses:?}");
    // A viewer the edge named keeps its own budget.
    let viewer = rest_login_through_the_edge(victim, &[&format!("{VIEWER}:443")]);
    assert_eq!(status_of(&app, &viewer).await, 401);
    let addresses = audited_addresses(dir.path()).await;
    assert_eq!(
        addresses.iter().filter(|a| a.is_none()).count(),
        statuses.len(),
        "{addresses:?}"
    );
    assert!(
        !addresses.iter().flatten().any(|a| a.starts_with("130.176.")),
        "{addresses:?}"
    );
}

/// An IPv6 viewer is throttled by its /64: another address in it shares the budget, an
/// address in another /64 does not. The audit log keeps the full addresses.
#[tokio::test]
async fn ipv6_viewers_are_throttled_by_their_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), Some("cloudfront-viewer-address")).await;
    let victim = "ipv6@example.com";
    let guess = rest_login_through_the_edge(victim, &["2001:db8:1:2::1:443"]);
    let mut statuses = Vec::new();
    while statuses.last() != Some(&429) && statuses.len() < 10 {
        statuses.push(status_of(&app, &guess).await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let same_64 = rest_login_through_the_edge(victim, &["2001:db8:1:2:ffff:ffff:ffff:fffe:443"]);
    assert_eq!(status_of(&app, &same_64).await, 429, "the same /64 shares the budget");
    let other_64 = rest_login_through_the_edge(victim, &["2001:db8:1:3::1:443"]);
    assert_eq!(status_of(&app, &other_64).await, 401, "another /64 has its own");
    let addresses = audited_addresses(dir.path()).await;
    assert!(addresses.contains(&Some("2001:db8:1:2::1".into())), "{addresses:?}");
    assert!(addresses.contains(&Some("2001:db8:1:3::1".into())), "{addresses:?}");
}

/// On an HTTP API (payload v2) too the header's address is audited, IPv4 or IPv6, the port
/// stripped.
#[tokio::test]
async fn http_api_sign_up_audits_the_viewer_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), Some("cloudfront-viewer-address")).await;
    for (n, viewer) in [format!("{VIEWER}:443"), "2001:db8:85a3::8a2e:370:7334:61000".into()]
        .iter()
        .enumerate()
    {
        let event = http_api_register_through_the_edge(&format!("v2-{n}@example.com"), &[viewer]);
        assert_eq!(status_of(&app, &event).await, 202);
    }
    let addresses = audited_addresses(dir.path()).await;
    assert!(addresses.contains(&Some(VIEWER.into())), "{addresses:?}");
    assert!(
        addresses.contains(&Some("2001:db8:85a3::8a2e:370:7334".into())),
        "{addresses:?}"
    );
    assert!(!addresses.contains(&Some(EDGE.into())), "{addresses:?}");
}

/// Without the setting the header is nobody's word: the address API Gateway saw counts, on
/// either payload.
#[tokio::test]
async fn without_the_setting_the_viewer_address_header_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_reading(dir.path(), None).await;
    let rest = rest_login_through_the_edge("ignored@example.com", &[&format!("{VIEWER}:443")]);
    assert_eq!(status_of(&app, &rest).await, 401);
    let http = http_api_register_through_the_edge("ignored@example.com", &[&format!("{VIEWER}:443")]);
    assert_eq!(status_of(&app, &http).await, 202);
    let addresses = audited_addresses(dir.path()).await;
    assert_eq!(addresses, [Some(EDGE.into()), Some(EDGE.into())], "{addresses:?}");
}
