//! The reverse proxy in front of the auth API and core. This slice routes by path prefix and
//! keeps the header hygiene every later feature (token verification, rate limits, breakers)
//! relies on: identity headers only ever come from the proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_kernel::health;
use rampart_kernel::{Problem, ProblemType, Settings};

/// Requests whose path starts with `prefix` go to `upstream` (scheme and authority only).
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    pub upstream: Uri,
}

#[derive(Debug, Clone)]
struct Proxy {
    routes: Arc<Vec<Route>>,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

/// The platform's routes: auth owns `/v1/auth` and `/.well-known`, core the rest of `/v1`.
pub fn platform_routes(auth: Uri, core: Uri) -> Vec<Route> {
    vec![
        Route {
            prefix: "/v1/auth/".into(),
            upstream: auth.clone(),
        },
        Route {
            prefix: "/.well-known/".into(),
            upstream: auth,
        },
        Route {
            prefix: "/v1/".into(),
            upstream: core,
        },
    ]
}

/// The proxy's own health routes, then everything else forwarded by route.
pub fn router(routes: Vec<Route>, settings: &Settings) -> Router {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    let proxy = Proxy {
        routes: Arc::new(routes),
        client: Client::builder(TokioExecutor::new()).build(connector),
        timeout: Duration::from_secs(settings.http.request_timeout_secs),
    };
    let app = Router::new()
        .fallback(forward)
        .with_state(proxy)
        .merge(health::router("auth-proxy", Vec::new()));
    rampart_kernel::http::with_edge_layers(app, &settings.http)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Whether a client-sent header claims an identity only the proxy may assert. Matches every
/// spelling: any case, `_` for `-`.
pub fn is_identity_header(name: &HeaderName) -> bool {
    let name = name.as_str().replace('_', "-");
    name.starts_with("x-auth-") || name.starts_with("x-rampart-")
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
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
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

async fn forward(State(proxy): State<Proxy>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let path = request.uri().path();
    let Some(route) = proxy
        .routes
        .iter()
        .filter(|r| path.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())
    else {
        return Problem::of(ProblemType::NotFound).into_response();
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
    headers.remove(header::HOST);
    // The proxy is the first hop we trust, so it starts X-Forwarded-For afresh.
    if let Ok(value) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.insert("x-forwarded-for", value);
    }
    rampart_kernel::telemetry::inject_current_context(headers);

    match tokio::time::timeout(
        proxy.timeout,
        proxy.client.request(http::Request::from_parts(parts, body)),
    )
    .await
    {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, upstream = %route.upstream, "upstream request failed");
            Problem::of(ProblemType::BadGateway).into_response()
        }
        Err(_) => Problem::of(ProblemType::GatewayTimeout).into_response(),
    }
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
