//! The proxy over real loopback HTTP: a real upstream sees forwarded requests without any
//! client-sent identity headers, and failures come back as problem+json.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use rampart_auth_proxy::{Route, router};
use rampart_kernel::Settings;
use rampart_kernel::serve::{bind, serve};
use tokio_util::sync::CancellationToken;

async fn start(app: Router, shutdown: &CancellationToken) -> SocketAddr {
    let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = shutdown.clone();
    tokio::spawn(async move { serve(listener, app, &Settings::default().http, shutdown).await });
    addr
}

/// An upstream that echoes the request headers it received as JSON.
fn echo_upstream() -> Router {
    Router::new().route(
        "/v1/echo",
        get(|headers: HeaderMap| async move {
            let map: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.to_str().unwrap_or_default())))
                .collect();
            axum::Json(map)
        }),
    )
}

#[tokio::test]
async fn forwards_by_prefix_and_strips_spoofed_identity_headers() {
    let shutdown = CancellationToken::new();
    let upstream = start(echo_upstream(), &shutdown).await;
    let routes = vec![Route {
        prefix: "/v1/".into(),
        upstream: format!("http://{upstream}").parse().expect("uri"),
    }];
    let proxy = start(router(routes, &Settings::default()), &shutdown).await;

    let response = reqwest::Client::new()
        .get(format!("http://{proxy}/v1/echo?x=1"))
        .header("X-Auth-Subject", "admin")
        .header("x_rampart_scopes", "everything")
        .header("X-Rampart-Session", "stolen")
        .header("traceparent", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
        .header("authorization", "Bearer abc")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("json");
    let names: Vec<&str> = seen.as_object().expect("object").keys().map(String::as_str).collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("x-auth") && !n.starts_with("x-rampart") && !n.starts_with("x_")),
        "{names:?}"
    );
    assert_eq!(
        seen["authorization"], "Bearer abc",
        "the token is forwarded for core to verify again"
    );
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert!(seen["x-request-id"].is_string());
    shutdown.cancel();
}

#[tokio::test]
async fn unknown_prefix_is_404_and_dead_upstream_is_502_problem() {
    let shutdown = CancellationToken::new();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let routes = vec![Route {
        prefix: "/v1/".into(),
        upstream: format!("http://{dead}").parse().expect("uri"),
    }];
    let proxy = start(router(routes, &Settings::default()), &shutdown).await;
    let client = reqwest::Client::new();

    let missing = client
        .get(format!("http://{proxy}/elsewhere"))
        .send()
        .await
        .expect("response");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");

    let failed = client
        .get(format!("http://{proxy}/v1/anything"))
        .send()
        .await
        .expect("response");
    assert_eq!(failed.status(), 502);
    let body: serde_json::Value = failed.json().await.expect("json");
    assert_eq!(body["type"], "urn:rampart:problem:bad-gateway");
    shutdown.cancel();
}
