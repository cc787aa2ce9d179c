//! API Gateway event JSON, shaped as AWS documents each format, for the tests that feed a
//! Lambda handler what API Gateway would send (`crates/testkit/events/`).

/// Proxy integrations (`lambda_http`): a REST API (payload v1) and an HTTP API (payload v2)
/// request for the auth function.
pub const REST_PROXY_LOGIN: &str = include_str!("../events/rest-proxy-login.json");
pub const REST_PROXY_UNKNOWN_PATH: &str = include_str!("../events/rest-proxy-unknown-path.json");
pub const HTTP_API_JWKS: &str = include_str!("../events/http-api-jwks.json");
pub const HTTP_API_REGISTER: &str = include_str!("../events/http-api-register.json");

/// Lambda authorizer events: a REST API's TOKEN and REQUEST authorizers and an HTTP API's
/// (payload v2). Each carries `{token}` where the caller's credential goes ([`with_token`]).
pub const AUTHORIZER_REST_TOKEN: &str = include_str!("../events/authorizer-rest-token.json");
pub const AUTHORIZER_REST_REQUEST: &str = include_str!("../events/authorizer-rest-request.json");
pub const AUTHORIZER_HTTP_API: &str = include_str!("../events/authorizer-http-api.json");

/// An authorizer event with `token` wherever it carries the caller's credential.
pub fn with_token(sample: &str, token: &str) -> serde_json::Value {
    serde_json::from_str(&sample.replace("{token}", token)).expect("event JSON")
}
