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
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
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
    /// This hop of the request being served, when no span carries it.
    static REQUEST_TRACE: SpanContext;
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
    tracing_subscriber::registry()
        .with(otel)
        .with(log_layer(settings.log_format, std::io::stderr).with_filter(filter))
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(TelemetryGuard { provider })
}

/// The log lines [`init`] writes, to `writer` (stderr; a buffer in tests of what is logged).
pub fn log_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().with_writer(writer).boxed(),
    }
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
    // Most requests carry neither: no propagator pass, and no context to allocate.
    if !headers.contains_key(TRACEPARENT) && !headers.contains_key(X_AMZN_TRACE_ID) {
        return Context::new();
    }
    PROPAGATOR.extract(&HeaderExtractor(headers))
}

/// Makes the caller's trace (`parent`, from [`caller_trace`]) the parent of `span`, a request's
/// span, when spans are exported. Call it before the span is first entered: entering starts an
/// exported span, and a started span keeps the new trace it began.
pub fn join_caller(span: &tracing::Span, parent: &Context) {
    if exporting() {
        let _ = span.set_parent(parent.clone());
    }
}

/// Runs `future`, the handling of a request, inside `span` and inside the caller's trace
/// (`parent`, from [`caller_trace`]; a new trace if it is empty), once `span` has
/// [joined](join_caller) it: what the request sends on through [`inject_current_context`]
/// continues that trace.
pub async fn in_request_trace<F: Future>(span: tracing::Span, parent: Context, future: F) -> F::Output {
    if exporting() {
        future.instrument(span).await
    } else {
        REQUEST_TRACE.scope(child_of(&parent), future.instrument(span)).await
    }
}

/// A span context for this hop under `parent`'s trace, or at the root of a new one; sampled
/// unless the caller said otherwise, as the SDK's default sampler decides.
fn child_of(parent: &Context) -> SpanContext {
    let ids = RandomIdGenerator::default();
    let parent = parent.span().span_context().clone();
    let (trace_id, flags, state) = if parent.is_valid() {
        (parent.trace_id(), parent.trace_flags(), parent.trace_state().clone())
    } else {
        (xray_trace_id(&ids), TraceFlags::SAMPLED, TraceState::default())
    };
    SpanContext::new(trace_id, ids.new_span_id(), flags, false, state)
}

/// A new trace id as X-Ray requires and W3C accepts: the epoch seconds, then 96 random bits.
/// (`XrayIdGenerator` makes the same through two formatted strings.)
fn xray_trace_id(ids: &RandomIdGenerator) -> TraceId {
    let seconds = u32::try_from(crate::now_unix()).unwrap_or(u32::MAX);
    let random = u128::from_be_bytes(ids.new_trace_id().to_bytes()) & ((1 << 96) - 1);
    TraceId::from((u128::from(seconds) << 96) | random)
}

/// This hop of the request being served: its trace and span ids.
fn current_hop() -> SpanContext {
    if exporting() {
        tracing::Span::current().context().span().span_context().clone()
    } else {
        REQUEST_TRACE.try_with(Clone::clone).unwrap_or(SpanContext::NONE)
    }
}

/// The trace id of the request being served (32 hex digits, as W3C writes it), for records that
/// point back to its trace (an audit record).
pub fn current_trace_id() -> Option<String> {
    let hop = current_hop();
    hop.is_valid()
        .then(|| String::from_utf8_lossy(&hex::<32>(&hop.trace_id().to_bytes())).into_owned())
}

/// Writes the current request's trace context into outgoing request headers.
pub fn inject_current_context(headers: &mut http::HeaderMap) {
    let hop = current_hop();
    if !hop.is_valid() {
        return;
    }
    if hop.trace_state().header().is_empty() {
        write_trace_headers(&hop, headers);
    } else {
        // Vendor state to carry along (rare): the propagators know each format's rules for it.
        let context = Context::new().with_remote_span_context(hop);
        PROPAGATOR.inject_context(&context, &mut HeaderInjector(headers));
    }
}

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const X_AMZN_TRACE_ID: http::HeaderName = http::HeaderName::from_static("x-amzn-trace-id");

/// `hop` as `traceparent` and `X-Amzn-Trace-Id`, written as the propagators write them (a test
/// holds them to it), without their formatting machinery: this runs for every proxied request.
fn write_trace_headers(hop: &SpanContext, headers: &mut http::HeaderMap) {
    let trace = hex::<32>(&hop.trace_id().to_bytes());
    let span = hex::<16>(&hop.span_id().to_bytes());
    let flags = hop.trace_flags();
    let sampled = if flags & TRACE_FLAG_DEFERRED == TRACE_FLAG_DEFERRED {
        b'?'
    } else if flags.is_sampled() {
        b'1'
    } else {
        b'0'
    };
    let (trace_start, trace_rest) = trace.split_at(8);
    let traceparent = [
        b"00-".as_slice(),
        &trace,
        b"-",
        &span,
        if flags.is_sampled() { b"-01" } else { b"-00" },
    ];
    let xray = [
        b"Root=1-".as_slice(),
        trace_start,
        b"-",
        trace_rest,
        b";Parent=",
        &span,
        b";Sampled=",
        &[sampled],
    ];
    for (name, parts) in [
        (TRACEPARENT, traceparent.as_slice()),
        (X_AMZN_TRACE_ID, xray.as_slice()),
    ] {
        if let Ok(value) = http::HeaderValue::from_bytes(&parts.concat()) {
            headers.insert(name, value);
        }
    }
}

/// X-Ray's "sampling decision deferred" flag (`Sampled=?`), as `opentelemetry-aws` keeps it.
const TRACE_FLAG_DEFERRED: TraceFlags = TraceFlags::new(0x02);

/// Lower-case hex of `bytes`; `N` is twice their length.
fn hex<const N: usize>(bytes: &[u8]) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; N];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0xf)]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::SpanId;

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
    fn trace_headers_are_written_as_the_propagators_write_them() {
        let ids = RandomIdGenerator::default();
        let leading_zeros = SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let random = (0..1000_u16).map(|i| {
            // Not sampled, sampled, deferred, and deferred with sampled.
            let flags = TraceFlags::new(u8::try_from(i % 4).unwrap_or_default());
            SpanContext::new(
                ids.new_trace_id(),
                ids.new_span_id(),
                flags,
                false,
                TraceState::default(),
            )
        });
        for hop in std::iter::once(leading_zeros).chain(random) {
            let mut ours = http::HeaderMap::new();
            write_trace_headers(&hop, &mut ours);
            let mut theirs = http::HeaderMap::new();
            let context = Context::new().with_remote_span_context(hop.clone());
            PROPAGATOR.inject_context(&context, &mut HeaderInjector(&mut theirs));
            assert_eq!(ours["traceparent"], theirs["traceparent"], "{hop:?}");
            assert_eq!(ours["x-amzn-trace-id"], theirs["x-amzn-trace-id"], "{hop:?}");
            assert_eq!(theirs["tracestate"], "", "nothing else to carry");
        }
    }

    #[tokio::test]
    async fn a_callers_trace_state_is_carried_on() {
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
        );
        incoming.insert("tracestate", http::HeaderValue::from_static("vendor=abc"));
        let outgoing = sent_on(incoming).await;
        assert_eq!(header(&outgoing, "tracestate"), "vendor=abc");
        assert!(header(&outgoing, "traceparent").starts_with("00-5759e988bd862e3fe1be46a994272793-"));
        assert!(header(&outgoing, "x-amzn-trace-id").starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;"));
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
