//! Logs and traces: `tracing` JSON lines on stderr, OpenTelemetry spans exported over OTLP when
//! an endpoint is configured, and trace context carried in both W3C `traceparent` and AWS
//! `X-Amzn-Trace-Id` so a request keeps one trace across API Gateway, Lambda, the proxy and core.
//!
//! Spans are built for OpenTelemetry only when they are exported. Without an exporter a request
//! still continues its caller's trace (or starts one) and passes it on with a span id of its
//! own, but nothing is recorded: on the proxy's hot path span building cost about a sixth of its
//! user CPU for nothing (docs/performance.md).

use std::sync::{LazyLock, OnceLock};

use opentelemetry::Context;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetrySettings};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp_endpoint: cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("telemetry is already initialised in this process")]
    AlreadyInitialised,
}

/// Flushes buffered spans when dropped; keep it alive for the life of the process.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {error}");
        }
    }
}

/// Whether spans go to an OpenTelemetry exporter: set once, by [`init`].
static EXPORTING: OnceLock<bool> = OnceLock::new();

fn exporting() -> bool {
    EXPORTING.get().copied().unwrap_or(false)
}

tokio::task_local! {
    /// The trace context of the request being served, when no span carries it.
    static REQUEST_TRACE: Context;
}

/// Installs the global subscriber and propagators. Call once, first thing in `main`.
pub fn init(service: &'static str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    if EXPORTING.set(settings.otlp_endpoint.is_some()).is_err() {
        return Err(TelemetryError::AlreadyInitialised);
    }
    // For libraries that read the global one; Rampart's own code uses `PROPAGATOR`.
    opentelemetry::global::set_text_map_propagator(propagator());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    // X-Ray requires trace ids that start with the epoch time; W3C accepts them too.
    let mut builder = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(resource);
    if let Some(endpoint) = &settings.otlp_endpoint {
        use opentelemetry_otlp::{SpanExporter, WithExportConfig};
        let exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());

    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // The log level filters logs only: when exporting, spans at info and above always exist, so
    // a quieter log level never thins out the exported traces.
    let otel = exporting().then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(otel);
    let result = match settings.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(TelemetryGuard { provider })
}

/// Built once: the proxy reads and writes trace headers on every request.
static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(propagator);

/// W3C trace context first, then X-Ray: both are read, and both are written on every hop.
fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()) as Box<dyn TextMapPropagator + Send + Sync>,
        Box::new(XrayPropagator::default()),
    ])
}

/// The trace context a caller sent in `traceparent` or `X-Amzn-Trace-Id`, if any.
pub fn caller_trace(headers: &http::HeaderMap) -> Context {
    PROPAGATOR.extract(&HeaderExtractor(headers))
}

/// Runs `future`, the handling of a request, inside `span` and inside the caller's trace
/// (`parent`, from [`caller_trace`]; a new trace if it is empty): what the request sends on
/// through [`inject_current_context`] continues that trace.
pub async fn in_request_trace<F: Future>(span: tracing::Span, parent: Context, future: F) -> F::Output {
    if exporting() {
        let _ = span.set_parent(parent);
        future.instrument(span).await
    } else {
        REQUEST_TRACE.scope(child_of(&parent), future.instrument(span)).await
    }
}

/// A span context for this hop under `parent`'s trace, or at the root of a new one; sampled
/// unless the caller said otherwise, as the SDK's default sampler decides.
fn child_of(parent: &Context) -> Context {
    let ids = XrayIdGenerator::default();
    let parent = parent.span().span_context().clone();
    let (trace_id, flags, state) = if parent.is_valid() {
        (parent.trace_id(), parent.trace_flags(), parent.trace_state().clone())
    } else {
        (ids.new_trace_id(), TraceFlags::SAMPLED, TraceState::default())
    };
    let hop = SpanContext::new(trace_id, ids.new_span_id(), flags, false, state);
    Context::new().with_remote_span_context(hop)
}

/// Writes the current request's trace context into outgoing request headers.
pub fn inject_current_context(headers: &mut http::HeaderMap) {
    let context = if exporting() {
        tracing::Span::current().context()
    } else {
        REQUEST_TRACE.try_with(Clone::clone).unwrap_or_default()
    };
    PROPAGATOR.inject_context(&context, &mut HeaderInjector(headers));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request handled inside `in_request_trace` sends on, for a caller sending `incoming`.
    /// These unit tests run without `init`, so nothing exports: the light path.
    async fn sent_on(incoming: http::HeaderMap) -> http::HeaderMap {
        let caller = caller_trace(&incoming);
        in_request_trace(tracing::Span::none(), caller, async {
            let mut outgoing = http::HeaderMap::new();
            inject_current_context(&mut outgoing);
            outgoing
        })
        .await
    }

    fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[tokio::test]
    async fn without_an_exporter_a_request_continues_its_callers_trace_as_a_new_hop() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
        );
        let outgoing = sent_on(incoming).await;
        let traceparent: Vec<&str> = header(&outgoing, "traceparent").split('-').collect();
        assert_eq!(traceparent.len(), 4, "{traceparent:?}");
        assert_eq!(traceparent[1], "5759e988bd862e3fe1be46a994272793", "same trace");
        assert_ne!(traceparent[2], "53995c3f42cd8ad8", "this hop's own span id");
        assert_eq!(traceparent[3], "01", "the caller's sampling decision");
        let xray = header(&outgoing, "x-amzn-trace-id");
        assert_eq!(
            xray,
            format!(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent={};Sampled=1",
                traceparent[2]
            )
        );
    }

    #[tokio::test]
    async fn without_an_exporter_a_request_with_no_trace_starts_an_x_ray_compatible_one() {
        let outgoing = sent_on(http::HeaderMap::new()).await;
        let traceparent: Vec<&str> = header(&outgoing, "traceparent").split('-').collect();
        assert_eq!(traceparent.len(), 4, "{traceparent:?}");
        // X-Ray trace ids begin with the epoch seconds, in hex.
        let started = i64::from_str_radix(&traceparent[1][..8], 16).expect("hex");
        assert!((crate::now_unix() - started).abs() < 60, "{}", traceparent[1]);
        assert_eq!(traceparent[3], "01");
        assert!(header(&outgoing, "x-amzn-trace-id").starts_with(&format!("Root=1-{}-", &traceparent[1][..8])));
        let again = sent_on(http::HeaderMap::new()).await;
        assert_ne!(
            header(&again, "traceparent"),
            header(&outgoing, "traceparent"),
            "a new trace each time"
        );
    }

    #[test]
    fn outside_a_request_nothing_is_sent_on() {
        let mut outgoing = http::HeaderMap::new();
        inject_current_context(&mut outgoing);
        assert!(outgoing.is_empty(), "{outgoing:?}");
    }

    #[test]
    fn both_trace_header_formats_round_trip() {
        let propagator = propagator();
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                .parse()
                .expect("header"),
        );
        let context = propagator.extract(&HeaderExtractor(&incoming));
        let span_context = context.span().span_context().clone();
        assert!(span_context.is_valid());
        assert_eq!(span_context.trace_id().to_string(), "5759e988bd862e3fe1be46a994272793");

        let mut outgoing = http::HeaderMap::new();
        propagator.inject_context(&context, &mut HeaderInjector(&mut outgoing));
        let traceparent = outgoing["traceparent"].to_str().expect("ascii");
        assert!(
            traceparent.contains("5759e988bd862e3fe1be46a994272793"),
            "{traceparent}"
        );
        let xray = outgoing["x-amzn-trace-id"].to_str().expect("ascii");
        assert!(xray.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793"), "{xray}");
    }
}
