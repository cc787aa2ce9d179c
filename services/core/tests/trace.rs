//! One request through the auth-proxy into core and on to DynamoDB and KMS is one trace: a
//! span per hop, each linked to its parent, and the trace carried in `X-Amzn-Trace-Id` to the
//! AWS calls. The spans are received by an OTLP/HTTP collector on loopback; the AWS calls pass a
//! recording relay on their way to moto. Its own test binary: telemetry is set up once per
//! process.

#[allow(dead_code, reason = "the stack serves the API tests too; this test uses part of it")]
#[path = "it/stack.rs"]
mod stack;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rampart_kernel::config::TelemetrySettings;
use rampart_kernel::metrics::Registry;
use tokio_util::sync::CancellationToken;

use crate::stack::Stack;

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    parent: String,
}

/// Every span of every batch the collector was sent, by trace id and span id (hex).
type Received = Arc<Mutex<Vec<Bytes>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spans_of(batches: &[Bytes], trace: &str) -> HashMap<String, Span> {
    let mut spans = HashMap::new();
    for batch in batches {
        let request = ExportTraceServiceRequest::decode(batch.as_ref()).expect("an OTLP protobuf batch");
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .filter(|span| hex(&span.trace_id) == trace)
        {
            let parent = hex(&span.parent_span_id);
            spans.insert(
                hex(&span.span_id),
                Span {
                    name: span.name.clone(),
                    parent,
                },
            );
        }
    }
    spans
}

async fn collector() -> (String, Received) {
    let batches: Received = Arc::default();
    let app = Router::new().route(
        "/v1/traces",
        post({
            let batches = Arc::clone(&batches);
            move |body: Bytes| async move { batches.lock().expect("lock").push(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, batches)
}

/// An AWS call as the relay saw it: the operation (`X-Amz-Target`) and its trace header.
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A relay to moto that notes each call's operation and trace header.
async fn relay(upstream: String) -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .fallback(forward)
        .with_state((upstream, Arc::clone(&calls)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, calls)
}

async fn forward(State((upstream, calls)): State<(String, Calls)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let operation = header("x-amz-target").unwrap_or_else(|| parts.uri.path().to_owned());
    calls.lock().expect("lock").push((operation, header("x-amzn-trace-id")));
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut headers = parts.headers.clone();
    headers.remove("host");
    let answer = reqwest::Client::new()
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("moto answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    response
        .body(Body::from(answer.bytes().await.expect("moto's body")))
        .expect("response")
}

/// The names of `span`'s ancestors, nearest first, up to the trace's root in the test.
fn ancestry<'a>(spans: &'a HashMap<String, Span>, mut id: &'a str) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(span) = spans.get(id) {
        names.push(span.name.clone());
        id = &span.parent;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_through_proxy_core_dynamodb_and_kms_is_one_trace() {
    let (otlp, batches) = collector().await;
    let telemetry = TelemetrySettings {
        otlp_endpoint: Some(otlp),
        log_level: "warn".into(),
        ..TelemetrySettings::default()
    };
    let guard = rampart_kernel::telemetry::init("core-trace-test", &telemetry).expect("telemetry");

    let (aws, calls) = relay(rampart_testkit::aws().await.endpoint).await;
    let stack = Stack::aws_on(rampart_testkit::aws_at(aws).await, |_| {}).await;
    let ada = stack.user().await;
    // The auth-proxy in front of core, as `rampart up` puts it.
    let config = rampart_auth_proxy::platform_config(
        &stack.auth.parse().expect("auth url"),
        &stack.core.parse().expect("core url"),
        &stack.settings,
    )
    .expect("proxy config");
    let proxy =
        rampart_auth_proxy::AuthProxy::start(config, &stack.settings, &Registry::default(), None).expect("proxy");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_url = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move { proxy.serve(listener, admin, stop).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !stack
        .http
        .get(format!("{proxy_url}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(std::time::Instant::now() < deadline, "the proxy did not become ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Creating an organisation: a new data key from KMS and a transaction in DynamoDB.
    calls.lock().expect("lock").clear();
    let (trace, caller_span) = ("5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8");
    let created = stack
        .http
        .post(format!("{proxy_url}/v1/orgs"))
        .bearer_auth(&ada.token)
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&serde_json::json!({"name": "Traced"}))
        .send()
        .await
        .expect("through the proxy");
    assert_eq!(created.status(), 201);
    let calls = calls.lock().expect("lock").clone();

    // The batch exporter sends what it holds when dropped (it blocks: off the workers).
    stop.cancel();
    tokio::task::spawn_blocking(move || drop(guard)).await.expect("flush");
    let spans = spans_of(&batches.lock().expect("lock"), trace);

    // One span per hop, each under the one before: the proxy's under the caller's, core's under
    // the proxy's, and the store's and KMS's under core's.
    let proxy_hop: Vec<_> = spans.iter().filter(|(_, s)| s.parent == caller_span).collect();
    assert_eq!(proxy_hop.len(), 1, "one span under the caller's: {spans:#?}");
    let (proxy_id, proxy_span) = proxy_hop[0];
    assert_eq!(proxy_span.name, "http.request");
    let core_hop: Vec<_> = spans.iter().filter(|(_, s)| &s.parent == proxy_id).collect();
    assert!(
        core_hop.iter().any(|(_, s)| s.name == "http.request"),
        "core's request span under the proxy's: {spans:#?}"
    );
    for name in ["store.transact", "kms.generate_data_key"] {
        let (id, _) = spans
            .iter()
            .find(|(_, s)| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in the trace: {spans:#?}"));
        assert_eq!(
            ancestry(&spans, id),
            [name, "http.request", "http.request"],
            "{name} under core's request, under the proxy's"
        );
    }
    for (id, span) in &spans {
        assert!(
            span.parent == caller_span || spans.contains_key(&span.parent),
            "{} ({id}) has a parent outside the trace",
            span.name
        );
    }

    // The AWS calls carry the trace, each with the span that made it as its parent.
    let xray_root = format!("Root=1-{}-{}", &trace[..8], &trace[8..]);
    for operation in ["DynamoDB_20120810.TransactWriteItems", "TrentService.GenerateDataKey"] {
        let (_, header) = calls
            .iter()
            .find(|(target, _)| target == operation)
            .unwrap_or_else(|| panic!("no {operation} call: {calls:?}"));
        let header = header
            .as_deref()
            .unwrap_or_else(|| panic!("{operation} without X-Amzn-Trace-Id"));
        assert!(header.starts_with(&xray_root), "{operation}: {header}");
        let parent = header
            .split(';')
            .find_map(|part| part.strip_prefix("Parent="))
            .expect("a Parent");
        let made_by = spans.get(parent).map(|s| s.name.as_str());
        let expected = if operation.starts_with("Dynamo") {
            "store.transact"
        } else {
            "kms.generate_data_key"
        };
        assert_eq!(made_by, Some(expected), "{operation}'s parent span");
    }
}
