//! One metrics registry per process, in the Prometheus project's own library
//! (`prometheus-client`): every component registers its families at start-up, the hot path adds
//! to atomics, and the process's admin listener renders them all (`GET /metrics`, OpenMetrics
//! text). A Lambda function has no listener to scrape: its registry also prints each security
//! count as a CloudWatch Embedded Metric Format line ([`Registry::for_lambda`]).
//!
//! Every HTTP service counts its requests the same way (rate, errors, duration) with
//! [`Registry::http_layer`]: `rampart_http_requests_total{service,method,route,status}` and
//! `rampart_http_request_duration_seconds{service,method,route}`, the route being the matched
//! pattern (`/v1/auth/sessions/{id}`), so the number of series is bounded by the code, not by
//! what clients send. The layer goes outside the edge layers, so it counts what the client got
//! (the edge's 503 for a handler that took too long, its 413 for a body past the limit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, Method, header};
pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::ConstGauge;
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Metric;
use tower::{Layer, Service};

/// The OpenMetrics text format's media type, as Prometheus asks for it.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: half a millisecond (a proxied request on
/// loopback) to ten seconds (the default request timeout).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Where a Lambda function's EMF lines go: stdout, which CloudWatch Logs reads.
pub type EmfSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The process's registry: cheap to clone, shared by every component in the process.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Mutex<prometheus_client::registry::Registry>>,
    http: HttpFamilies,
    emf: Option<EmfSink>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("emf", &self.emf.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let http = HttpFamilies::default();
        registry.register(
            "rampart_http_requests",
            "HTTP requests answered, by service, method, matched route and status",
            http.requests.clone(),
        );
        registry.register(
            "rampart_http_request_duration_seconds",
            "Time to answer an HTTP request, by service, method and matched route",
            http.durations.clone(),
        );
        Self {
            inner: Arc::new(Mutex::new(registry)),
            http,
            emf: None,
        }
    }
}

impl Registry {
    /// A Lambda function's registry: what [`Registry::count_emf`] is given is also printed to
    /// stdout as a CloudWatch Embedded Metric Format line, which CloudWatch Logs turns into a
    /// metric. Request rate, errors and duration come from API Gateway's own metrics there.
    pub fn for_lambda() -> Self {
        Self::with_emf_sink(Arc::new(|line: &str| println!("{line}")))
    }

    /// A registry whose EMF lines go to `sink` (a test's, to read them back).
    pub fn with_emf_sink(sink: EmfSink) -> Self {
        Self {
            emf: Some(sink),
            ..Self::default()
        }
    }

    /// On Lambda, writes one EMF line counting one `name` ([`emf_count`]); elsewhere nothing,
    /// the registry's own series being scraped instead.
    pub fn count_emf(&self, service: &str, name: &str, dimensions: &[(&str, &str)], at_ms: i64) {
        if let Some(sink) = &self.emf {
            sink(&emf_count(service, name, dimensions, at_ms));
        }
    }

    /// Adds a metric under `name`; a counter's name gets `_total` appended when rendered.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// `metric`, registered under `name` and handed back for the caller to keep and update.
    pub fn add<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.register(name, help, metric.clone());
        metric
    }

    /// Adds metrics computed when rendered (e.g. the proxy's breaker states), not stored.
    pub fn register_collector(&self, collector: impl Collector) {
        self.lock().register_collector(Box::new(collector));
    }

    /// Everything registered, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.lock());
        text
    }

    /// The admin listener's route: `GET /metrics`. The caller puts it behind the edge layers,
    /// like every other route.
    pub fn router(&self) -> Router {
        let registry = self.clone();
        Router::new().route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
                    registry.render(),
                )
            }),
        )
    }

    /// The layer that counts `service`'s requests by matched route: add it with `Router::layer`
    /// after the edge layers (`http::with_edge_layers`), so it sees the answer the client gets
    /// and the route each request matched (axum routes before it runs a route's layers).
    pub fn http_layer(&self, service: &'static str) -> HttpMetricsLayer {
        HttpMetricsLayer {
            service,
            families: self.http.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, prometheus_client::registry::Registry> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One CloudWatch Embedded Metric Format line counting one `name` under namespace `Rampart`,
/// with `dimensions` (and `Service`) as its dimensions. Printed to stdout on Lambda, CloudWatch
/// Logs turns it into a metric without an API call.
fn emf_count(service: &str, name: &str, dimensions: &[(&str, &str)], at_ms: i64) -> String {
    let mut line = serde_json::Map::new();
    let mut names = vec![serde_json::Value::from("Service")];
    line.insert("Service".into(), service.into());
    for (key, value) in dimensions {
        names.push((*key).into());
        line.insert((*key).into(), (*value).into());
    }
    line.insert(name.into(), 1.into());
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Rampart",
                "Dimensions": [names],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        }),
    );
    serde_json::Value::Object(line).to_string()
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    service: &'static str,
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone)]
struct HttpFamilies {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

impl Default for HttpFamilies {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// Counts a service's requests ([`Registry::http_layer`]).
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    service: &'static str,
    families: HttpFamilies,
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`HttpMetricsLayer`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    layer: HttpMetricsLayer,
}

impl<S> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut observation = Observation {
            labels: RouteLabels {
                service: self.layer.service,
                method: method_label(request.method()),
                route: request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str)
                    .to_owned(),
            },
            families: self.layer.families.clone(),
            started: Instant::now(),
            status: None,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            if let Ok(response) = &answer {
                observation.answered(response.status().as_u16());
            }
            answer
        })
    }
}

/// One request being counted; recorded when dropped, so a request the client gave up on before
/// its answer still counts, with status 499 (the code nginx gives a request whose client left).
struct Observation {
    labels: RouteLabels,
    families: HttpFamilies,
    started: Instant,
    status: Option<u16>,
}

impl Observation {
    /// Sets the status through `&mut self`, so the future keeps the whole observation and it is
    /// recorded once, when the future completes or is dropped.
    fn answered(&mut self, status: u16) {
        self.status = Some(status);
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        self.families
            .durations
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
        let labels = RequestLabels {
            service: self.labels.service,
            method: self.labels.method,
            route: std::mem::take(&mut self.labels.route),
            status: self.status.unwrap_or(499),
        };
        self.families.requests.get_or_create(&labels).inc();
    }
}

/// The method as a label: the standard ones by name, any other as `other`, so a client cannot
/// mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn series(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn requests_are_counted_by_matched_route_and_status() {
        let registry = Registry::default();
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(registry.http_layer("core"));
        for uri in ["/items/1", "/items/2", "/nothing-here"] {
            let request = Request::get(uri).body(Body::empty()).expect("request");
            app.clone().oneshot(request).await.expect("answer");
        }
        let text = registry.render();
        let mut counted = series(&text, "rampart_http_requests_total");
        counted.sort();
        assert_eq!(
            counted,
            [
                r#"rampart_http_requests_total{service="core",method="GET",route="/items/{id}",status="200"} 2"#,
                r#"rampart_http_requests_total{service="core",method="GET",route="unmatched",status="404"} 1"#,
            ],
            "{text}"
        );
        assert!(
            text.contains(
                r#"rampart_http_request_duration_seconds_count{service="core",method="GET",route="/items/{id}"} 2"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[tokio::test]
    async fn outside_the_edge_a_handler_that_takes_too_long_counts_as_the_503_the_client_got() {
        let registry = Registry::default();
        let settings = crate::config::HttpSettings {
            request_timeout_secs: 1,
            ..Default::default()
        };
        let app = crate::http::with_edge_layers(
            Router::new().route("/slow/{id}", get(std::future::pending::<&'static str>)),
            &settings,
        )
        .layer(registry.http_layer("core"));
        let request = Request::get("/slow/1").body(Body::empty()).expect("request");
        let answer = app.oneshot(request).await.expect("answer");
        assert_eq!(answer.status(), 503);
        let text = registry.render();
        assert!(
            text.contains(
                r#"rampart_http_requests_total{service="core",method="GET",route="/slow/{id}",status="503"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_request_cut_off_before_its_answer_still_counts() {
        let registry = Registry::default();
        let app = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .layer(registry.http_layer("auth"));
        let request = Request::get("/slow").body(Body::empty()).expect("request");
        let cut_off = tokio::time::timeout(std::time::Duration::from_millis(20), app.oneshot(request)).await;
        assert!(cut_off.is_err());
        assert!(
            registry
                .render()
                .contains(r#"rampart_http_requests_total{service="auth",method="GET",route="/slow",status="499"} 1"#)
        );
    }

    #[test]
    fn a_client_cannot_mint_method_series() {
        let method = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&method), "other");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }

    #[test]
    fn an_emf_line_names_its_metric_and_dimensions() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_count("auth", "SecurityEvents", &[("Kind", "login")], 7)).expect("json");
        assert_eq!(line["SecurityEvents"], 1);
        assert_eq!(line["Kind"], "login");
        assert_eq!(line["Service"], "auth");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Rampart");
        assert_eq!(directive["Dimensions"][0], serde_json::json!(["Service", "Kind"]));
        assert_eq!(directive["Metrics"][0]["Name"], "SecurityEvents");
        assert_eq!(line["_aws"]["Timestamp"], 7);
    }
}
