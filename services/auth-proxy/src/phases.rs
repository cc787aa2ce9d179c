//! One request's way through the proxy, in the phases Pingora names:
//!
//! 1. [`request_filter`]: may it pass? The bearer token (protected routes), then the route's
//!    rate limit for this caller.
//! 2. [`upstream_request_filter`]: what the upstream receives: the upstream's URI, no
//!    hop-by-hop or client-sent identity headers, the verified identity, the client address
//!    the proxy believes (in `X-Forwarded-For` only), the trace, and this hop in `Via`.
//! 3. the call itself (`upstream::call_upstream`): breaker, retry, timeouts.
//! 4. [`response_filter`]: what the client receives: no hop-by-hop headers, the rate-limit
//!    headers, the upstream's 4xx body as sent, an answer cut off if the upstream falls silent.
//! 5. [`fail_to_proxy`]: the answer when any phase refused or failed.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rampart_kernel::forwarded::{Client as Caller, ClientAddressHeader};
use rampart_kernel::health;
use rampart_kernel::http::ResponseFuture;
use rampart_kernel::now_unix;
use rampart_tokens::jwt::AccessClaims;
use tower::{Service, ServiceExt};

use crate::config::{ProxyConfig, Route};
use crate::error::ProxyError;
use crate::hygiene::{add_identity, is_identity_header, strip_hop_by_hop, via};
use crate::lifecycle::AuthProxy;
use crate::ratelimit::Decision;
use crate::upstream::{UpstreamBody, call_upstream};

/// CloudFront's client address header, never forwarded whatever is configured.
const CLOUDFRONT_VIEWER_ADDRESS: &str = "cloudfront-viewer-address";

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// What one proxy service forwards with: the shared proxy, and its own upstream connection pool.
#[derive(Debug)]
pub(crate) struct Forwarder {
    pub(crate) proxy: AuthProxy,
    pub(crate) client: HttpClient,
}

/// The proxy's handling inside the edge: the health routes, or forwarding.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    pub(crate) forwarder: Arc<Forwarder>,
    pub(crate) health: Router,
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

/// Routes the request, takes it through the phases, and counts the outcome by route.
async fn forward(forwarder: &Forwarder, request: Request) -> Response {
    let started = Instant::now();
    let config = forwarder.proxy.config();
    let route = config.route(request.uri().path());
    let response = match route {
        Some(route) => proxy_request(forwarder, &config, route, request)
            .await
            .unwrap_or_else(fail_to_proxy),
        None => fail_to_proxy(ProxyError::NoRoute),
    };
    forwarder
        .proxy
        .0
        .metrics
        .request(route.map(|r| &r.prefix), response.status().as_u16(), started.elapsed());
    response
}

async fn proxy_request(
    forwarder: &Forwarder,
    config: &ProxyConfig,
    route: &Route,
    request: Request,
) -> Result<Response, ProxyError> {
    let Some(&ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        tracing::error!("a request without its client's address: serve the proxy with rampart_kernel::serve");
        return Err(ProxyError::NoClientAddress);
    };
    let admitted = request_filter(&forwarder.proxy, config, route, peer, request.headers()).await?;
    let (mut parts, body) = request.into_parts();
    upstream_request_filter(&mut parts, route, &admitted, config.client_address_header.as_ref())?;
    let response = call_upstream(forwarder, config, route, parts, body).await?;
    Ok(response_filter(response, route, admitted.rate))
}

/// What [`request_filter`] let through: who is calling, and their rate-limit standing.
struct Admitted {
    /// The verified token's claims; `None` on a public route.
    claims: Option<Arc<AccessClaims>>,
    /// The client's address, past trusted proxies only; none when the configured client
    /// address header was not one readable value.
    client_ip: Option<IpAddr>,
    rate: Option<Decision>,
}

/// Checks the caller against `route`: a token that verifies with the route's scopes (unless
/// the route is public), then the route's rate limit, per subject when signed in and per
/// client address otherwise.
async fn request_filter(
    proxy: &AuthProxy,
    config: &ProxyConfig,
    route: &Route,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Admitted, ProxyError> {
    let claims = if route.public {
        None
    } else {
        match proxy.0.verifier.authorize(headers, &route.scopes, now_unix()).await {
            Ok(claims) => Some(claims),
            Err(denial) => {
                tracing::info!(reason = denial.reason(), route = %route.prefix, "request denied");
                proxy.0.metrics.denial(denial.reason());
                return Err(ProxyError::Denied(denial));
            }
        }
    };
    // `[forwarded] client_address_header` (CloudFront's viewer address, carried through API
    // Gateway and the load balancer) is believed as X-Forwarded-For is: from trusted peers only.
    let client = config
        .trusted_proxies
        .client_from(peer.ip(), headers, config.client_address_header.as_ref());
    if let Caller::Unattributed(problem) = client {
        proxy.0.metrics.unattributed(problem.as_str());
    }
    let rate = match &route.rate_limit {
        Some((class, limit)) => {
            // Signed-in callers are limited as themselves wherever they connect from.
            let key = match &claims {
                Some(claims) => format!("{class}|sub|{}", claims.sub),
                // IPv6 by its /64, and every unattributed request under one key.
                None => format!("{class}|ip|{}", client.rate_key()),
            };
            let now = u64::try_from(proxy.0.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let decision = proxy.0.limiter.check(&key, *limit, now);
            if !decision.allowed {
                tracing::info!(class = %class, route = %route.prefix, "rate limited");
                proxy.0.metrics.rate_limited(class);
                return Err(ProxyError::RateLimited(decision));
            }
            Some(decision)
        }
        None => None,
    };
    Ok(Admitted {
        claims,
        client_ip: client.ip(),
        rate,
    })
}

/// Shapes what the upstream receives (see the module docs).
fn upstream_request_filter(
    parts: &mut http::request::Parts,
    route: &Route,
    admitted: &Admitted,
    client_address_header: Option<&ClientAddressHeader>,
) -> Result<(), ProxyError> {
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::builder()
        .scheme(route.upstream.scheme_str().unwrap_or("http"))
        .authority(route.upstream.authority().map_or("", |a| a.as_str()))
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadPath)?;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    let spoofed: Vec<HeaderName> = headers.keys().filter(|n| is_identity_header(n)).cloned().collect();
    for name in spoofed {
        tracing::debug!(header = %name, "removed a client-sent identity header");
        headers.remove(name);
    }
    if let Some(claims) = &admitted.claims {
        add_identity(headers, claims).map_err(ProxyError::Denied)?;
    }
    headers.remove(header::HOST);
    // Only the client address the proxy believes goes on: the upstream trusts this hop alone,
    // and an upstream reading a client address header must not find a client's own. CloudFront's
    // is stripped even when not configured, in case an upstream believes it.
    if let Some(header) = client_address_header {
        headers.remove(header.name());
    }
    headers.remove(CLOUDFRONT_VIEWER_ADDRESS);
    headers.remove("x-forwarded-for");
    // Unattributed: no address goes on, rather than one the proxy does not believe.
    if let Some(value) = admitted
        .client_ip
        .and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok())
    {
        headers.insert("x-forwarded-for", value);
    }
    rampart_kernel::telemetry::inject_current_context(headers);
    // RFC 9110 §7.6.3: a gateway names itself, after any earlier hops, in what it forwards.
    headers.append(header::VIA, via(parts.version));
    Ok(())
}

/// Shapes what the client receives of the upstream's answer (see the module docs).
fn response_filter(response: http::Response<Incoming>, route: &Route, rate: Option<Decision>) -> Response {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(decision) = rate {
        decision.write_headers(&mut parts.headers);
    }
    // An upstream's 4xx body is its API's contract (RFC 6749 errors, say) and reaches the client
    // as sent; only its 5xx bodies, which may name internals, are replaced.
    if parts.status.is_client_error() {
        parts.extensions.insert(rampart_kernel::http::KeepErrorBody);
    }
    Response::from_parts(parts, Body::new(UpstreamBody::new(body, route.timeout)))
}

/// The answer when a phase refused the request or the upstream failed it: each
/// [`ProxyError`]'s own problem.
fn fail_to_proxy(error: ProxyError) -> Response {
    error.into_response()
}
