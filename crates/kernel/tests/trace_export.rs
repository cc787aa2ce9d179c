//! With an OTLP endpoint configured, request spans are built and exported, and what a request
//! sends on continues its caller's trace under the exported span. In its own test binary,
//! because telemetry is initialised once per process.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use rampart_kernel::config::TelemetrySettings;
use rampart_kernel::telemetry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_are_exported_and_their_context_sent_on() {
    // A loopback OTLP/HTTP collector that keeps every batch it is sent.
    let batches: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let collector = Router::new().route(
        "/v1/traces",
        post({
            let batches = Arc::clone(&batches);
            move |body: Bytes| async move {
                batches.lock().expect("lock").push(body);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let settings = TelemetrySettings {
        otlp_endpoint: Some(endpoint),
        log_level: "warn".into(),
        ..TelemetrySettings::default()
    };
    let guard = telemetry::init("trace-export-test", &settings).expect("init");

    let mut incoming = http::HeaderMap::new();
    incoming.insert(
        "traceparent",
        http::HeaderValue::from_static("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
    );
    // As the edge does: the span joins the caller's trace, then is entered (which starts it).
    let span = tracing::info_span!("http.request");
    let caller = telemetry::caller_trace(&incoming);
    telemetry::join_caller(&span, &caller);
    span.in_scope(|| tracing::info!("the request's service is built"));
    let outgoing = telemetry::in_request_trace(span, caller, async {
        let mut outgoing = http::HeaderMap::new();
        telemetry::inject_current_context(&mut outgoing);
        outgoing
    })
    .await;
    let traceparent = outgoing["traceparent"].to_str().expect("ascii");
    assert!(
        traceparent.starts_with("00-5759e988bd862e3fe1be46a994272793-"),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains("53995c3f42cd8ad8"),
        "the exported span's own id: {traceparent}"
    );

    // Dropping the guard flushes the batch exporter (it blocks, so off the runtime's workers).
    tokio::task::spawn_blocking(move || drop(guard)).await.expect("flush");
    let trace_id = hex("5759e988bd862e3fe1be46a994272793");
    let span_id = hex(&traceparent[36..52]);
    let batches = batches.lock().expect("lock");
    assert!(
        batches
            .iter()
            .any(|batch| contains(batch, &trace_id) && contains(batch, &span_id)),
        "the request's span, under the caller's trace, reached the collector ({} batches)",
        batches.len()
    );
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
