//! The identity-aware reverse proxy in front of the auth API and core.
//!
//! Routes come from a [`ProxyConfig`] (a TOML file, reloaded on SIGHUP). A protected route
//! admits a request only with a bearer access token that verifies against the issuer's JWKS,
//! whose session has not been revoked (the issuer's revocation feed, polled), and that carries
//! the route's scopes. The upstream then sees who the caller is in `X-Auth-*` headers that only
//! the proxy can set: every client-sent spelling of them is removed first.

pub mod breaker;
pub mod config;
pub mod metrics;
pub mod ratelimit;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
pub use config::{ConfigError, ProxyConfig, Route};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Uri};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_kernel::health::{self, ReadinessProbe};
use rampart_kernel::http::{EdgeLayer, ResponseFuture, with_edge_layers};
use rampart_kernel::serve::{serve, serve_on_threads, threads_per_listener};
use rampart_kernel::{Problem, ProblemType, Settings, now_unix};
use rampart_tokens::jwt::{AccessClaims, Rejection};
pub use rampart_verifier::IssuerConfig;
use rampart_verifier::{Denial, Verifier};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service, ServiceExt};

use crate::breaker::{Admission, Breakers};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

type HttpClient = Client<HttpConnector, Body>;

/// The headers through which the upstream learns who is calling.
pub const SUBJECT_HEADER: &str = "x-auth-subject";
pub const SCOPES_HEADER: &str = "x-auth-scopes";
pub const SESSION_HEADER: &str = "x-auth-session-id";

/// A running proxy: its routes, its view of the issuer's keys and revocations, and the tasks
/// that keep that view fresh.
#[derive(Debug, Clone)]
pub struct AuthProxy(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    routes: RwLock<Arc<ProxyConfig>>,
    verifier: Arc<Verifier>,
    limiter: RateLimiter,
    metrics: Metrics,
    breakers: Breakers,
    /// The rate limiter's clock: nanoseconds since start, monotonic.
    started: Instant,
    settings: Settings,
}

/// The local platform's configuration: auth owns `/v1/auth/` and `/.well-known/` (public: it
/// authenticates for itself), core the rest of `/v1/` (protected), except its `/v1/version`.
pub fn platform_config(auth: &Uri, core: &Uri, settings: &Settings) -> Result<ProxyConfig, ConfigError> {
    let route = |prefix: &str, upstream: &Uri, public: bool| Route {
        prefix: prefix.into(),
        upstream: upstream.clone(),
        public,
        scopes: Vec::new(),
        timeout: Duration::from_secs(settings.http.request_timeout_secs),
        rate_limit: None,
        retries: false,
    };
    let issuer = IssuerConfig::for_platform(settings, &auth.to_string()).map_err(|e| ConfigError {
        key: format!("issuer.{}", e.field),
        message: e.message,
    })?;
    Ok(ProxyConfig {
        issuer,
        // Longest prefix first, as `ProxyConfig::route` expects.
        routes: vec![
            route("/.well-known/", auth, true),
            route("/v1/version", core, true),
            route("/v1/auth/", auth, true),
            route("/v1/", core, false),
        ],
        trusted_proxies: Default::default(),
        breaker: breaker::BreakerConfig::default(),
    })
}

impl AuthProxy {
    /// Starts fetching the issuer's keys and polling its revocation feed. The proxy is ready
    /// (`/readyz`) once both have answered; protected routes answer 503 until then.
    pub fn start(config: ProxyConfig, settings: &Settings) -> std::io::Result<Self> {
        let verifier = Arc::new(Verifier::new(&config.issuer)?);
        verifier.spawn_refreshers();
        Ok(Self(Arc::new(Inner {
            routes: RwLock::new(Arc::new(config)),
            verifier,
            limiter: RateLimiter::default(),
            metrics: Metrics::default(),
            breakers: Breakers::default(),
            started: Instant::now(),
            settings: settings.clone(),
        })))
    }

    /// The proxy as a service, inside the shared edge ([`EdgeLayer`]): its own health routes,
    /// and everything else forwarded by route. Each service has its own pool of upstream
    /// connections: serve each from one thread
    /// ([`serve_on_threads`](rampart_kernel::serve::serve_on_threads)) so that a request and
    /// its upstream connection are driven by the same thread.
    ///
    /// A plain service rather than an axum `Router`: routing is one prefix match, and the
    /// router's per-request matching, boxing and layering were a measurable part of the proxy's
    /// CPU (docs/performance.md).
    pub fn service(
        &self,
    ) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static
    {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let probes: Vec<Arc<dyn ReadinessProbe>> = vec![
            Arc::new(JwksLoaded(Arc::clone(&self.0.verifier))),
            Arc::new(RevocationsFresh(Arc::clone(&self.0.verifier))),
        ];
        let gateway = Gateway {
            // One Arc, so that handing it to each request is a single count increment.
            forwarder: Arc::new(Forwarder {
                proxy: self.clone(),
                client: Client::builder(TokioExecutor::new()).build(connector),
            }),
            health: health::router("auth-proxy", probes),
        };
        // Every route is timed by the proxy itself, which says which bound was hit (504).
        EdgeLayer::new(&self.0.settings.http).timed_by_service().layer(gateway)
    }

    /// The admin listener's routes: `GET /metrics` (Prometheus text format), inside the same
    /// edge as every other port (request id, security headers, problem+json errors). Serve it
    /// on an address only the monitoring system reaches.
    pub fn admin_router(&self) -> Router {
        let proxy = self.clone();
        let router = Router::new().route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    proxy.0.metrics.render(&proxy.0.breakers.states()),
                )
            }),
        );
        with_edge_layers(router, &self.0.settings.http)
    }

    /// Serves the proxy on `listener`, from a thread per CPU (see [`Self::service`]), and its
    /// metrics on `admin` until `shutdown` is cancelled; returns once both have drained their
    /// in-flight requests.
    pub async fn serve(
        &self,
        listener: TcpListener,
        admin: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let http = &self.0.settings.http;
        let services = (0..threads_per_listener()).map(|_| self.service()).collect();
        tokio::try_join!(
            serve_on_threads(listener, services, http, shutdown.clone()),
            serve(admin, self.admin_router(), http, shutdown),
        )?;
        Ok(())
    }

    /// Replaces the routes. The issuer section cannot change while running (its keys and feed
    /// are already being followed): such a configuration is refused and the old one kept.
    pub fn reload(&self, config: ProxyConfig) -> Result<(), ConfigError> {
        let mut current = self.0.routes.write().unwrap_or_else(PoisonError::into_inner);
        if config.issuer != current.issuer {
            return Err(ConfigError {
                key: "issuer".into(),
                message: "changes to [issuer] need a restart".into(),
            });
        }
        *current = Arc::new(config);
        Ok(())
    }

    /// Reloads the configuration file on every SIGHUP; a file that fails to load or check is
    /// logged with the reason and the running configuration stays.
    pub fn reload_on_sighup(&self, path: PathBuf) -> std::io::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let proxy = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloaded = ProxyConfig::load(&path).and_then(|config| proxy.reload(config));
                proxy.0.metrics.reload(reloaded.is_ok());
                match reloaded {
                    Ok(()) => tracing::info!(path = %path.display(), "routes reloaded"),
                    Err(error) => {
                        tracing::error!(path = %path.display(), %error, "reload refused; the running routes stay");
                    }
                }
            }
        });
        Ok(())
    }

    fn config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&self.0.routes.read().unwrap_or_else(PoisonError::into_inner))
    }
}

struct JwksLoaded(Arc<Verifier>);

#[async_trait::async_trait]
impl ReadinessProbe for JwksLoaded {
    fn name(&self) -> &'static str {
        "jwks"
    }
    async fn check(&self) -> Result<(), String> {
        if self.0.keys_loaded() {
            Ok(())
        } else {
            Err("no keys loaded yet".into())
        }
    }
}

struct RevocationsFresh(Arc<Verifier>);

#[async_trait::async_trait]
impl ReadinessProbe for RevocationsFresh {
    fn name(&self) -> &'static str {
        "revocations"
    }
    async fn check(&self) -> Result<(), String> {
        if self.0.revocations_fresh() {
            Ok(())
        } else {
            Err("the revocation feed has not been read within its bound".into())
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1). A static, not a
/// const: looked up twice per request, it is not rebuilt at each use.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Whether a client-sent header claims an identity only the proxy may assert. Matches every
/// spelling: any case (header names arrive lower-cased), `_` for `-`.
pub fn is_identity_header(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    [b"x-auth-".as_slice(), b"x-rampart-"].into_iter().any(|prefix| {
        name.len() >= prefix.len()
            && name
                .iter()
                .zip(prefix)
                .all(|(&got, &want)| got == want || (want == b'-' && got == b'_'))
    })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: look before removing anything (each removal hashes the name).
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What one proxy service forwards with: the shared proxy, and its own upstream connection pool.
#[derive(Debug)]
struct Forwarder {
    proxy: AuthProxy,
    client: HttpClient,
}

/// The proxy's handling inside the edge: the health routes, or forwarding.
#[derive(Debug, Clone)]
struct Gateway {
    forwarder: Arc<Forwarder>,
    health: Router,
}

impl Service<Request> for Gateway {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if health::serves(request.uri().path()) {
            return Box::pin(self.health.clone().oneshot(request));
        }
        let forwarder = Arc::clone(&self.forwarder);
        Box::pin(async move { Ok(forward(&forwarder, request).await) })
    }
}

async fn forward(forwarder: &Forwarder, request: Request) -> Response {
    let Some(&ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        tracing::error!("a request without its client's address: serve the proxy with rampart_kernel::serve");
        return Problem::of(ProblemType::Internal).into_response();
    };
    let started = Instant::now();
    let config = forwarder.proxy.config();
    let route = config.route(request.uri().path());
    let response = match route {
        Some(route) => pass(forwarder, &config, route, peer, request).await,
        None => Problem::of(ProblemType::NotFound).into_response(),
    };
    let label = route.map_or("none", |r| r.prefix.as_str());
    forwarder
        .proxy
        .0
        .metrics
        .request(label, response.status().as_u16(), started.elapsed());
    response
}

/// Checks the caller against `route` and, if they may pass, forwards the request upstream.
async fn pass(
    forwarder: &Forwarder,
    config: &ProxyConfig,
    route: &Route,
    peer: SocketAddr,
    request: Request,
) -> Response {
    let proxy = &forwarder.proxy;
    let claims = if route.public {
        None
    } else {
        match proxy
            .0
            .verifier
            .authorize(request.headers(), &route.scopes, now_unix())
            .await
        {
            Ok(claims) => Some(claims),
            Err(denial) => {
                tracing::info!(reason = denial.reason(), route = %route.prefix, "request denied");
                proxy.0.metrics.denial(denial.reason());
                return denial.into_response();
            }
        }
    };
    let forwarded_for = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let client_ip = config.trusted_proxies.client_ip(peer.ip(), forwarded_for);
    let rate = match &route.rate_limit {
        Some((class, limit)) => {
            // Signed-in callers are limited as themselves wherever they connect from.
            let key = match &claims {
                Some(claims) => format!("{class}|sub|{}", claims.sub),
                None => format!("{class}|ip|{client_ip}"),
            };
            let now = u64::try_from(proxy.0.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let decision = proxy.0.limiter.check(&key, *limit, now);
            if !decision.allowed {
                tracing::info!(class = %class, route = %route.prefix, "rate limited");
                proxy.0.metrics.rate_limited(class);
                let mut response = Problem::of(ProblemType::TooManyRequests)
                    .with_retry_after(decision.retry_after_secs)
                    .into_response();
                decision.write_headers(response.headers_mut());
                return response;
            }
            Some(decision)
        }
        None => None,
    };
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = Uri::builder()
        .scheme(route.upstream.scheme_str().unwrap_or("http"))
        .authority(route.upstream.authority().map_or("", |a| a.as_str()))
        .path_and_query(path_and_query)
        .build()
    else {
        return Problem::of(ProblemType::MalformedRequest).into_response();
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = uri;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    let spoofed: Vec<HeaderName> = headers.keys().filter(|n| is_identity_header(n)).cloned().collect();
    for name in spoofed {
        tracing::debug!(header = %name, "removed a client-sent identity header");
        headers.remove(name);
    }
    if let Some(claims) = &claims
        && let Err(denial) = add_identity(headers, claims)
    {
        return denial.into_response();
    }
    headers.remove(header::HOST);
    // Only the client address the proxy believes goes on: the upstream trusts this hop alone.
    if let Ok(value) = HeaderValue::from_str(&client_ip.to_string()) {
        headers.insert("x-forwarded-for", value);
    }
    rampart_kernel::telemetry::inject_current_context(headers);
    // RFC 9110 §7.6.3: a gateway names itself, after any earlier hops, in what it forwards.
    headers.append(header::VIA, via(parts.version));

    match call_upstream(forwarder, config, route, parts, body).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            if let Some(decision) = rate {
                decision.write_headers(&mut parts.headers);
            }
            // An upstream's 4xx body is its API's contract (RFC 6749 errors, say) and reaches
            // the client as sent; only its 5xx bodies, which may name internals, are replaced.
            if parts.status.is_client_error() {
                parts.extensions.insert(rampart_kernel::http::KeepErrorBody);
            }
            Response::from_parts(parts, Body::new(UpstreamBody::new(body, route.timeout)))
        }
        Err(problem) => problem.into_response(),
    }
}

/// Sends the request through the upstream's breaker; a GET, HEAD or OPTIONS without a body on a
/// route that allows it is tried once more after a failure, if the retry budget allows.
async fn call_upstream(
    forwarder: &Forwarder,
    config: &ProxyConfig,
    route: &Route,
    mut parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<hyper::body::Incoming>, Problem> {
    let upstream = route.upstream.authority().map_or("", |a| a.as_str());
    let replayable = route.retries
        && matches!(
            parts.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        )
        && body.size_hint().exact() == Some(0);
    // Whether the client's body has been read to its end; tracked only for requests with one.
    let (body, body_read) = if body.is_end_stream() {
        (body, None)
    } else {
        let read = Arc::new(AtomicBool::new(false));
        let body = Body::new(ClientBody {
            inner: body,
            read: Arc::clone(&read),
        });
        (body, Some(read))
    };
    // The replay, if any, has an empty body: only bodiless requests are replayed.
    let mut body = Some(body);
    let breakers = &forwarder.proxy.0.breakers;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Admission::Rejected { retry_after } = breakers.admit(upstream, &config.breaker, Instant::now()) {
            return Err(Problem::new(
                ProblemType::ServiceUnavailable,
                "The upstream is failing and is not being called for now (circuit open); try again shortly.",
            )
            .with_retry_after(retry_after.as_secs().max(1)));
        }
        let mut request = http::Request::new(body.take().unwrap_or_default());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        // Only a request that may be sent again needs its headers kept.
        *request.headers_mut() = if replayable && attempt == 1 {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        let (failed, answer) = match tokio::time::timeout(route.timeout, forwarder.client.request(request)).await {
            Ok(Ok(response)) => (upstream_failed(&response), Ok(response)),
            // Failures of the client's own making are not counted against the upstream: clients
            // that break off or dawdle over their bodies must not be able to open its breaker.
            Ok(Err(error)) => {
                if let Some(problem) = client_body_fault(&error) {
                    return Err(problem);
                }
                tracing::warn!(%error, upstream, "upstream request failed");
                (true, Err(Problem::of(ProblemType::BadGateway)))
            }
            Err(_) if body_read.as_ref().is_some_and(|read| !read.load(Ordering::Relaxed)) => {
                return Err(Problem::new(
                    ProblemType::RequestTimeout,
                    "The request body did not arrive within the route's timeout.",
                ));
            }
            Err(_) => (true, Err(Problem::of(ProblemType::GatewayTimeout))),
        };
        breakers.record(upstream, &config.breaker, !failed, Instant::now());
        let retry = failed && replayable && attempt == 1 && breakers.take_retry(upstream, Instant::now());
        if !retry {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether an upstream's answer counts against its breaker: a 502 or 504, and a 503 unless it
/// carries `Retry-After`. That one is the upstream shedding load on purpose (the auth API does
/// when password hashing is at capacity): it answered at once and is healthy, and counting it
/// would let a flood of sign-ups open the breaker for every request to that upstream.
fn upstream_failed<B>(response: &http::Response<B>) -> bool {
    match response.status().as_u16() {
        502 | 504 => true,
        503 => !response.headers().contains_key(http::header::RETRY_AFTER),
        _ => false,
    }
}

/// The answer for a call that failed because of the client's body, if it did: the body grew
/// past the edge's limit (413), or the client broke it off (400). Errors from the client's body
/// are the only `axum::Error`s in a failed call's chain.
fn client_body_fault(error: &(dyn std::error::Error + 'static)) -> Option<Problem> {
    let mut chain = std::iter::successors(Some(error), |error| error.source());
    if chain
        .clone()
        .any(|error| error.is::<http_body_util::LengthLimitError>())
    {
        return Some(Problem::of(ProblemType::PayloadTooLarge));
    }
    chain.any(|error| error.is::<axum::Error>()).then(|| {
        Problem::new(
            ProblemType::MalformedRequest,
            "The request body broke off before its end.",
        )
    })
}

/// The client's body on its way upstream, noting when it has been read to its end: a call
/// whose time runs out before then was held up by its client, not by the upstream.
struct ClientBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The upstream's answer on its way to the client. If the upstream falls silent mid-answer for
/// longer than the route's timeout, the answer is cut off (the client's connection closes)
/// rather than held open: the route's timeout bounds every wait on the upstream, not only the
/// wait for its first byte.
struct UpstreamBody {
    inner: Incoming,
    silence: Duration,
    /// Armed only once the upstream keeps the proxy waiting, and re-armed after each frame.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    since_frame: bool,
}

impl UpstreamBody {
    fn new(inner: Incoming, silence: Duration) -> Self {
        Self {
            inner,
            silence,
            deadline: None,
            since_frame: false,
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.since_frame = true;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = tokio::time::Instant::now() + this.silence;
        let sleep = match &mut this.deadline {
            Some(sleep) if this.since_frame => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            Some(sleep) => sleep,
            None => this.deadline.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        this.since_frame = false;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!("the upstream fell silent mid-answer; the answer was cut off");
                Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the upstream fell silent mid-answer",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// This hop's `Via` entry: the protocol the client spoke, and a pseudonym rather than a host
/// name or version.
fn via(version: http::Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        http::Version::HTTP_09 => "0.9 rampart",
        http::Version::HTTP_10 => "1.0 rampart",
        http::Version::HTTP_2 => "2 rampart",
        http::Version::HTTP_3 => "3 rampart",
        _ => "1.1 rampart",
    })
}

/// Tells the upstream who is calling. A claim that cannot be a header value is refused rather
/// than forwarded in part.
fn add_identity(headers: &mut HeaderMap, claims: &AccessClaims) -> Result<(), Denial> {
    for (name, value) in [
        (SUBJECT_HEADER, &claims.sub),
        (SCOPES_HEADER, &claims.scope),
        (SESSION_HEADER, &claims.sid),
    ] {
        let value = HeaderValue::from_str(value).map_err(|_| Denial::Invalid(Rejection::Malformed))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised_in_every_spelling() {
        for name in [
            "x-auth-subject",
            "X-Auth-Subject",
            "x_auth_subject",
            "X-RAMPART-SESSION",
            "x_rampart_scopes",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("valid header name");
            assert!(is_identity_header(&name), "{name}");
        }
        assert!(!is_identity_header(&HeaderName::from_static("authorization")));
        assert!(!is_identity_header(&HeaderName::from_static("x-authored-by")));
    }

    proptest::proptest! {
        /// Every spelling of an identity header is caught: any case, `_` or `-` anywhere.
        #[test]
        fn identity_headers_are_caught_in_any_spelling(
            prefix in proptest::sample::select(vec!["x-auth-", "x-rampart-"]),
            suffix in "[a-z0-9-]{1,20}",
            upper in proptest::collection::vec(proptest::bool::ANY, 40),
            underscores in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let spelled: String = format!("{prefix}{suffix}")
                .chars()
                .enumerate()
                .map(|(i, c)| match c {
                    '-' if underscores[i % 40] => '_',
                    c if upper[i % 40] => c.to_ascii_uppercase(),
                    c => c,
                })
                .collect();
            let name = HeaderName::from_bytes(spelled.as_bytes()).expect("a valid header name");
            proptest::prop_assert!(is_identity_header(&name), "{}", spelled);
        }
    }

    #[test]
    fn connection_listed_and_standard_hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
