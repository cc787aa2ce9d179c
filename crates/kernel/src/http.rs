//! The layer stack every Rampart HTTP surface shares, composed once here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, header};
use http_body::Body as _;
use tower::util::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::config::HttpSettings;
use crate::problem::{PROBLEM_JSON, Problem, ProblemType, scope_request_id};
use crate::telemetry;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The future of a service that answers every request (the edge's, and the services inside it).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Wraps every route of `router` in the shared edge ([`EdgeLayer`]).
pub fn with_edge_layers(router: Router, settings: &HttpSettings) -> Router {
    router
        // Extractors refuse bodies past the limit even when no Content-Length was sent.
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(EdgeLayer::new(settings))
}

/// What every Rampart HTTP surface does around its own handling, as one layer for an axum
/// `Router` or any other service (the proxy's):
///
/// - gives each request its id and trace, kept for everything its handling logs, answers and
///   sends on, and logs its outcome;
/// - refuses paths that servers read differently (`crate::path`) before any routing;
/// - refuses a declared-too-large body before reading any of it (413), and cuts off one that
///   grows past the limit while it is read;
/// - answers 503 instead of holding the connection when the handling takes too long;
/// - lets browsers call only from the configured origins (CORS);
/// - turns whatever error response lacks a body of ours into problem+json;
/// - sets the security headers on every response.
///
/// Two services ([`Edge`] outside CORS, [`Bounds`] inside it), not a layer per concern: on the
/// proxy's path each layer's future, box and header pass was a measurable part of its CPU
/// (docs/performance.md).
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    body_limit: usize,
    timeout: Option<Duration>,
    cors: Option<CorsLayer>,
}

impl EdgeLayer {
    pub fn new(settings: &HttpSettings) -> Self {
        Self {
            body_limit: settings.body_limit_bytes,
            timeout: Some(Duration::from_secs(settings.request_timeout_secs)),
            cors: cors_layer(&settings.cors_allowed_origins),
        }
    }

    /// For a service that bounds each request's time itself and says which bound was hit (the
    /// proxy: 504 for its upstream's timeout): the edge adds no timer of its own.
    pub fn timed_by_service(self) -> Self {
        Self { timeout: None, ..self }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<Either<Cors<Bounds<S>>, Bounds<S>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let bounded = Bounds {
            inner,
            body_limit: self.body_limit,
            timeout: self.timeout,
        };
        Edge(match &self.cors {
            Some(cors) => Either::Left(cors.layer(bounded)),
            None => Either::Right(bounded),
        })
    }
}

/// The outer part of [`EdgeLayer`]: the request's id and trace, its log line and the security
/// headers, around everything else.
#[derive(Debug, Clone)]
pub struct Edge<S>(S);

/// The inner part of [`EdgeLayer`], inside CORS so that what it answers carries the CORS
/// headers a browser needs to read it: the body limit, the timeout, and problem+json for bare
/// errors.
#[derive(Debug, Clone)]
pub struct Bounds<S> {
    inner: S,
    body_limit: usize,
    timeout: Option<Duration>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let request_id = request_id_from(request.headers());
        request.headers_mut().insert(X_REQUEST_ID, request_id.clone());
        let span = tracing::info_span!(
            "http.request",
            request_id = request_id.to_str().unwrap_or_default(),
            method = %request.method(),
            // The path only: query strings can carry codes and tokens.
            path = %request.uri().path(),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let caller = telemetry::caller_trace(request.headers());
        telemetry::join_caller(&span, &caller);
        // Read the clock only for a span that records the latency.
        let started = (!span.is_disabled()).then(Instant::now);
        // The inner services only build their futures here; the handling runs when polled,
        // inside the request's id scope and trace.
        let handling = span.in_scope(|| self.0.call(request));
        let scoped = scope_request_id(request_id.clone(), handling);
        Box::pin(async move {
            let response = telemetry::in_request_trace(span.clone(), caller, scoped).await;
            Ok(finish(
                response.unwrap_or_else(|never| match never {}),
                &span,
                started,
                request_id,
            ))
        })
    }
}

impl<S> Service<Request> for Bounds<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let size = request.body().size_hint();
        // A body the handling may leave unread: watched, so that the connection is closed
        // after the answer if it does (see `UNREAD_BODY_CLOSES`).
        let has_body = size.upper() != Some(0);
        if let Some(reason) = crate::path::ambiguity(request.uri().path()) {
            let refused = Problem::new(ProblemType::MalformedRequest, reason).into_response();
            return Box::pin(async move { Ok(close_if(has_body, refused)) });
        }
        let read_through = has_body.then(|| Arc::new(AtomicBool::new(false)));
        let request = match &read_through {
            Some(flag) => {
                let flag = Arc::clone(flag);
                request.map(|body| {
                    Body::new(Watched {
                        inner: body,
                        read_through: flag,
                    })
                })
            }
            None => request,
        };
        let handling = if size.lower() > self.body_limit as u64 {
            // Declared too large: refused before any of it is read.
            None
        } else if size.upper().is_some_and(|upper| upper <= self.body_limit as u64) {
            // Declared within the limit: it cannot grow past it (hyper reads exactly that much).
            Some(self.inner.call(request))
        } else {
            // Of unknown length: counted as it is read.
            let limit = self.body_limit;
            Some(
                self.inner
                    .call(request.map(|body| Body::new(http_body_util::Limited::new(body, limit)))),
            )
        };
        let timeout = self.timeout;
        Box::pin(async move {
            let response = match (handling, timeout) {
                (None, _) => Problem::of(ProblemType::PayloadTooLarge).into_response(),
                (Some(handling), None) => handling.await.unwrap_or_else(|never| match never {}),
                (Some(handling), Some(timeout)) => match tokio::time::timeout(timeout, handling).await {
                    Ok(response) => response.unwrap_or_else(|never| match never {}),
                    Err(_) => Problem::of(ProblemType::ServiceUnavailable).into_response(),
                },
            };
            let unread = read_through.is_some_and(|flag| !flag.load(Ordering::Acquire));
            Ok(close_if(unread, problem_for_bare_errors(response)))
        })
    }
}

/// `UNREAD_BODY_CLOSES`: an answer given before its request's body was read to the end (a
/// refusal on a header, a body declared too large) says `Connection: close`. hyper then closes
/// the connection, as it must (the rest of the body is still on it), and a client that keeps
/// connections (the auth-proxy's pool) does not reuse it: without the header the client pools
/// a connection the server is closing, and its next request there fails with a broken pipe.
struct Watched {
    inner: Body,
    read_through: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read_through.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `response`, saying `Connection: close` if `unread` (see `UNREAD_BODY_CLOSES`).
fn close_if(unread: bool, mut response: Response) -> Response {
    if unread {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// API responses are not for framing, sniffing or caching, nor for reaching over plain HTTP.
/// Set on every response, replacing whatever an upstream sent; `Cache-Control` only if absent.
/// One pass over the headers here, rather than a layer (and a future) per header.
const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
];

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                X_REQUEST_ID,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                HeaderName::from_static("idempotency-key"),
            ])
            // Browsers may read what tells them when to come back, and core's answer headers.
            .expose_headers([
                X_REQUEST_ID,
                header::RETRY_AFTER,
                header::ETAG,
                header::LOCATION,
                HeaderName::from_static("idempotent-replayed"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A client-sent request id is kept only if it is short and plain; otherwise a new one is made.
fn request_id_from(headers: &http::HeaderMap) -> HeaderValue {
    let plain =
        |id: &[u8]| (1..=64).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b));
    match headers.get(&X_REQUEST_ID) {
        Some(id) if plain(id.as_bytes()) => id.clone(),
        _ => {
            let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
            uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id);
            HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("invalid"))
        }
    }
}

/// Logs the outcome of a request and sets the headers every response carries.
fn finish(mut response: Response, span: &tracing::Span, started: Option<Instant>, request_id: HeaderValue) -> Response {
    let status = response.status();
    span.record("status", status.as_u16());
    if let Some(started) = started {
        span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!("request failed");
        } else {
            tracing::info!("request served");
        }
    });
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(X_REQUEST_ID, request_id);
    response
}

/// Marks an error response whose body is meant for the client as it is, so the edge passes it
/// on: one a standard prescribes (an RFC 6749 §5.2 token error), or an upstream's 4xx that the
/// proxy relays (that API's own contract with its clients).
#[derive(Debug, Clone, Copy)]
pub struct KeepErrorBody;

/// Replaces the body of any error response that is not already problem+json (or marked
/// [`KeepErrorBody`]), keeping the status and the headers that give it meaning. Framework
/// text (which can name internal types) never reaches a client.
fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_problem(&response)
        || response.extensions().get::<KeepErrorBody>().is_some()
    {
        return response;
    }
    let mut replacement = Problem::of(ProblemType::for_status(status)).into_response();
    *replacement.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            replacement.headers_mut().insert(name, value.clone());
        }
    }
    replacement
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(settings: &HttpSettings) -> Router {
        let router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        with_edge_layers(router, settings)
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("problem json")
    }

    /// A body left unread closes the connection after the answer; one read through does not.
    #[tokio::test]
    async fn an_answer_before_the_body_is_read_closes_the_connection() {
        let router = Router::new()
            .route("/ignores", post(|| async { "refused on the headers" }))
            .route(
                "/reads",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            );
        let app = with_edge_layers(router, &HttpSettings::default());
        let post = |path: &str, body: &'static str| {
            Request::post(path)
                .header("content-length", body.len())
                .body(Body::from(body))
                .expect("request")
        };
        let ignored = app.clone().oneshot(post("/ignores", "unread")).await.expect("response");
        assert_eq!(ignored.headers()["connection"], "close");
        let read = app.clone().oneshot(post("/reads", "read")).await.expect("response");
        assert!(read.headers().get("connection").is_none(), "{:?}", read.headers());
        // Answers the edge rebuilds as problem+json keep it: an unknown route, a refused path.
        for path in ["/nowhere", "/a/../ignores"] {
            let refused = app.clone().oneshot(post(path, "unread")).await.expect("response");
            assert!(refused.status().is_client_error());
            assert_eq!(refused.headers()["connection"], "close", "{path}");
        }
        let empty = app
            .oneshot(Request::get("/ignores").body(Body::empty()).expect("get"))
            .await
            .expect("405");
        assert!(
            empty.headers().get("connection").is_none(),
            "no body, nothing to close for"
        );
    }

    #[tokio::test]
    async fn responses_carry_request_id_and_security_headers() {
        let response = app(&HttpSettings::default())
            .oneshot(Request::get("/ok").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert!(response.headers().contains_key(&X_REQUEST_ID));
        assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
        // Two years, subdomains included: long enough for browsers' preload lists.
        assert_eq!(
            response.headers()[header::STRICT_TRANSPORT_SECURITY],
            "max-age=63072000; includeSubDomains"
        );
    }

    /// A buffer the log layer writes into, to read back what a request logged.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn logs_name_the_path_but_never_the_query_string() {
        use tracing_subscriber::layer::SubscriberExt;
        for format in [crate::config::LogFormat::Json, crate::config::LogFormat::Pretty] {
            let captured = Captured::default();
            let writer = captured.clone();
            let layer = telemetry::log_layer(format, move || writer.clone());
            let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
            let response = app(&HttpSettings::default())
                .oneshot(
                    Request::get("/ok?code=Sekret4821&access_token=eyJhbGciOi")
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response");
            assert_eq!(response.status(), http::StatusCode::OK);
            let logged = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
            assert!(logged.contains("request served") && logged.contains("/ok"), "{logged}");
            assert!(
                !logged.contains("Sekret4821") && !logged.contains("eyJhbGciOi"),
                "{logged}"
            );
        }
    }

    #[tokio::test]
    async fn plain_client_request_id_is_kept_and_hostile_one_replaced() {
        let send = |id: &'static str| {
            app(&HttpSettings::default()).oneshot(
                Request::get("/ok")
                    .header("x-request-id", id)
                    .body(Body::empty())
                    .expect("request"),
            )
        };
        let kept = send("abc-123").await.expect("response");
        assert_eq!(kept.headers()[&X_REQUEST_ID], "abc-123");
        let replaced = send("<script>alert(1)</script>").await.expect("response");
        assert_ne!(replaced.headers()[&X_REQUEST_ID], "<script>alert(1)</script>");
    }

    #[tokio::test]
    async fn unknown_path_is_problem_json_with_request_id() {
        let response = app(&HttpSettings::default())
            .oneshot(
                Request::get("/nope")
                    .header("x-request-id", "r-404")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = json(response).await;
        assert_eq!(body["type"], "urn:rampart:problem:not-found");
        assert_eq!(body["request_id"], "r-404");
    }

    #[tokio::test]
    async fn wrong_method_keeps_allow_header() {
        let response = app(&HttpSettings::default())
            .oneshot(Request::delete("/ok").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), 405);
        assert!(response.headers().contains_key(header::ALLOW));
        assert_eq!(json(response).await["type"], "urn:rampart:problem:method-not-allowed");
    }

    #[tokio::test]
    async fn oversized_body_is_413_problem() {
        let settings = HttpSettings {
            body_limit_bytes: 16,
            ..HttpSettings::default()
        };
        let response = app(&settings)
            .oneshot(
                Request::post("/echo")
                    .body(Body::from(vec![b'x'; 17]))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), 413);
        assert_eq!(json(response).await["type"], "urn:rampart:problem:payload-too-large");
    }

    /// A body that does not say how long it is, as a chunked upload does not.
    struct UndeclaredLength(Option<bytes::Bytes>);

    impl http_body::Body for UndeclaredLength {
        type Data = bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
            Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
        }
    }

    #[tokio::test]
    async fn body_of_undeclared_length_past_the_limit_is_413_problem() {
        let settings = HttpSettings {
            body_limit_bytes: 16,
            ..HttpSettings::default()
        };
        let send = |size: usize| {
            let body = Body::new(UndeclaredLength(Some(vec![b'x'; size].into())));
            app(&settings).oneshot(Request::post("/echo").body(body).expect("request"))
        };
        let within = send(16).await.expect("response");
        assert_eq!(within.status(), 200);
        let past = send(17).await.expect("response");
        assert_eq!(past.status(), 413);
        assert_eq!(json(past).await["type"], "urn:rampart:problem:payload-too-large");
    }

    #[tokio::test]
    async fn slow_handler_times_out_as_503_problem() {
        let settings = HttpSettings {
            request_timeout_secs: 1,
            ..HttpSettings::default()
        };
        let response = app(&settings)
            .oneshot(Request::get("/slow").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), 503);
        assert_eq!(json(response).await["type"], "urn:rampart:problem:service-unavailable");
    }

    #[tokio::test]
    async fn errors_the_edge_makes_carry_cors_headers_for_an_allowed_origin() {
        let settings = HttpSettings {
            cors_allowed_origins: vec!["https://app.example.com".into()],
            body_limit_bytes: 16,
            request_timeout_secs: 1,
            ..HttpSettings::default()
        };
        let from_app = |request: http::request::Builder, body: Body| {
            let request = request.header(header::ORIGIN, "https://app.example.com").body(body);
            app(&settings).oneshot(request.expect("request"))
        };
        for (response, status) in [
            (from_app(Request::post("/echo"), Body::from(vec![b'x'; 17])).await, 413),
            (from_app(Request::get("/slow"), Body::empty()).await, 503),
            (from_app(Request::get("/nope"), Body::empty()).await, 404),
        ] {
            let response = response.expect("response");
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(
                response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
                "https://app.example.com",
                "{status}"
            );
        }
    }

    #[tokio::test]
    async fn cors_allows_only_listed_origins() {
        let settings = HttpSettings {
            cors_allowed_origins: vec!["https://app.example.com".into()],
            ..HttpSettings::default()
        };
        let preflight = |origin: &'static str| {
            app(&settings).oneshot(
                Request::options("/ok")
                    .header(header::ORIGIN, origin)
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                    .body(Body::empty())
                    .expect("request"),
            )
        };
        let allowed = preflight("https://app.example.com").await.expect("response");
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        let refused = preflight("https://evil.example.com").await.expect("response");
        assert!(!refused.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
