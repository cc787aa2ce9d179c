//! The authentication API. The same router runs on Lambda (behind API Gateway) and inside the
//! local platform.
//!
//! Modules depend one way: repositories on the store (`sessions`, `codes`, `throttle`,
//! `devices`, `audit`; the key ring is `rampart_keyring`) → `error` → `app` → extractors (`extract`, `input`) → handlers
//! (`signup`, `signin`, `account`, `oauth`, `discovery`) → `openapi` → this router. `respond`
//! and `random` are leaves anyone may use.

pub mod account;
pub mod app;
pub mod audit;
pub mod codes;
pub mod devices;
pub mod discovery;
pub mod error;
pub mod extract;
mod input;
pub mod metrics;
pub mod oauth;
pub mod openapi;
mod random;
pub mod respond;
pub mod sessions;
pub mod signin;
pub mod signup;
pub mod throttle;

pub use app::{App, AppState, Backends, StartupError};
use axum::Router;
use axum::routing::{delete, get, post};
pub use openapi::ApiDoc;
use rampart_kernel::Settings;
use rampart_kernel::health;
use rampart_kernel::metrics::Registry;

/// The auth API's routes inside the shared edge layers; its requests and security events are
/// counted in `metrics`.
pub fn router(backends: Backends, settings: &Settings, metrics: &Registry) -> Router {
    // Ready once its sessions' table answers: the one table its role may describe.
    let probes = vec![rampart_store::readiness_probe(
        &backends.store,
        rampart_store::Table::Auth,
    )];
    let app = App::new(backends, settings, metrics);
    let api = Router::new()
        .route(
            "/v1/auth/version",
            get(|| async { axum::Json(health::version("auth")) }),
        )
        .route("/v1/auth/openapi.json", get(openapi::openapi))
        .route("/v1/auth/register", post(signup::register))
        .route("/v1/auth/confirm", post(signup::confirm))
        .route("/v1/auth/confirm/resend", post(signup::resend_confirmation))
        .route("/v1/auth/password/forgot", post(signup::forgot_password))
        .route("/v1/auth/password/reset", post(signup::reset_password))
        .route("/v1/auth/login", post(signin::login))
        .route("/v1/auth/login/mfa", post(signin::login_mfa))
        .route("/v1/auth/refresh", post(signin::refresh))
        .route("/v1/auth/token", post(oauth::token))
        .route("/v1/auth/logout", post(signin::logout))
        .route("/v1/auth/logout/all", post(signin::logout_all))
        .route("/v1/auth/me", get(account::me))
        .route("/v1/auth/sessions", get(account::list_sessions))
        .route("/v1/auth/sessions/{id}", delete(account::revoke_session))
        .route("/v1/auth/password/change", post(account::change_password))
        .route(
            "/v1/auth/mfa/totp",
            post(account::begin_totp).delete(account::disable_totp),
        )
        .route("/v1/auth/mfa/totp/verify", post(account::verify_totp))
        .route("/v1/auth/revocations", get(discovery::revocations))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server_metadata),
        )
        .with_state(app)
        .merge(health::router("auth", probes));
    rampart_kernel::http::with_edge_layers(api, &settings.http).layer(metrics.http_layer("auth"))
}

/// Keeps every line of a repeated header in a REST API (payload v1) event: API Gateway lists
/// them all in `multiValueHeaders` and only the last in `headers`, and lambda_http lets
/// `headers` replace `multiValueHeaders`, which would hide that a client sent its own line
/// before the edge's. With `headers` dropped for the names `multiValueHeaders` lists, the
/// request carries every line, as the proxy sees them, and the one rule (more than one value
/// is ambiguous) holds at both entry points. `main` applies it to each event before lambda_http
/// builds the request.
pub fn with_repeated_headers(mut event: lambda_http::request::LambdaRequest) -> lambda_http::request::LambdaRequest {
    if let lambda_http::request::LambdaRequest::ApiGatewayV1(request) = &mut event {
        let listed: Vec<http::HeaderName> = request.multi_value_headers.keys().cloned().collect();
        for name in listed {
            request.headers.remove(name);
        }
    }
    event
}

/// Prepares a request from API Gateway for the router; wrap the router with it:
/// `tower::ServiceExt::map_request(router, from_api_gateway)`.
///
/// - The invocation's X-Ray trace header (from the Lambda context) replaces the one API
///   Gateway forwarded, so the handler's spans join the trace Lambda started. The AWS SDK
///   carries the same trace to Cognito, KMS and DynamoDB (lambda_runtime sets
///   `_X_AMZN_TRACE_ID` for each invocation).
/// - The request is routed by its path without the stage: lambda_http prefixes a REST API's
///   stage (`/prod/v1/auth/login`), and the routes are stage-independent.
pub fn from_api_gateway<B>(mut request: http::Request<B>) -> http::Request<B> {
    use lambda_http::RequestExt;
    let trace = request
        .extensions()
        .lambda_context_ref()
        .and_then(|context| context.xray_trace_id.as_deref())
        .and_then(|id| http::HeaderValue::from_str(id).ok());
    if let Some(trace) = trace {
        request.headers_mut().insert("x-amzn-trace-id", trace);
    }
    let raw = request.extensions().raw_http_path();
    if raw.is_empty() || raw == request.uri().path() {
        return request;
    }
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{raw}?{query}"),
        None => raw.to_string(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = http::uri::PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}
