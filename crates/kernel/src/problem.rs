//! RFC 9457 problem details: the only error body any Rampart HTTP surface sends.
//!
//! Each [`ProblemType`] has a stable `type` URI that clients may switch on. `detail` is always
//! safe, caller-facing text: internal errors are logged where they happen and replaced by a
//! generic detail here. Every problem carries the request id so a user report finds its logs.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

tokio::task_local! {
    /// Kept as the header value it is sent in: most requests never need it as a string.
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` with `id` as the request id that problems and logs report.
pub async fn scope_request_id<F: Future>(id: HeaderValue, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id of the request being served, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.to_str().map(str::to_owned))
        .ok()
        .and_then(Result::ok)
}

/// The stable catalogue of problem types. Adding one is fine; renaming one breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// 400: the body is not well-formed JSON, or the request is otherwise unreadable.
    MalformedRequest,
    /// 422: well-formed but invalid; `errors` names the fields.
    Validation,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 401: missing, invalid or expired credentials.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409: the resource changed or already exists.
    Conflict,
    /// 412: `If-Match` names a version that is no longer current.
    PreconditionFailed,
    /// 428: a change that must name the version it was made from (`If-Match`) did not.
    PreconditionRequired,
    /// 408: the client was too slow sending its request.
    RequestTimeout,
    /// 413
    PayloadTooLarge,
    /// 431
    HeadersTooLarge,
    /// 429: see `Retry-After`.
    TooManyRequests,
    /// 500: something failed that the caller cannot fix; details are only in the logs.
    Internal,
    /// 502: an upstream answered with something unusable or refused the connection.
    BadGateway,
    /// 503: temporarily unable to serve (overload, breaker open, handler timeout, not ready).
    ServiceUnavailable,
    /// 504: an upstream did not answer in time.
    GatewayTimeout,
}

impl ProblemType {
    const ALL: [ProblemType; 18] = [
        Self::MalformedRequest,
        Self::Validation,
        Self::UnsupportedMediaType,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PreconditionRequired,
        Self::RequestTimeout,
        Self::PayloadTooLarge,
        Self::HeadersTooLarge,
        Self::TooManyRequests,
        Self::Internal,
        Self::BadGateway,
        Self::ServiceUnavailable,
        Self::GatewayTimeout,
    ];

    /// The last segment of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed-request",
            Self::Validation => "validation",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::PreconditionRequired => "precondition-required",
            Self::RequestTimeout => "request-timeout",
            Self::PayloadTooLarge => "payload-too-large",
            Self::HeadersTooLarge => "headers-too-large",
            Self::TooManyRequests => "too-many-requests",
            Self::Internal => "internal",
            Self::BadGateway => "bad-gateway",
            Self::ServiceUnavailable => "service-unavailable",
            Self::GatewayTimeout => "gateway-timeout",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedRequest => "Malformed request",
            Self::Validation => "Invalid request",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::PreconditionFailed => "Precondition failed",
            Self::PreconditionRequired => "Precondition required",
            Self::RequestTimeout => "Request timeout",
            Self::PayloadTooLarge => "Payload too large",
            Self::HeadersTooLarge => "Request headers too large",
            Self::TooManyRequests => "Too many requests",
            Self::Internal => "Internal error",
            Self::BadGateway => "Bad gateway",
            Self::ServiceUnavailable => "Service unavailable",
            Self::GatewayTimeout => "Gateway timeout",
        }
    }

    /// The detail sent when a framework layer produced the status without one of ours.
    pub fn default_detail(self) -> &'static str {
        match self {
            Self::MalformedRequest => "The request could not be read.",
            Self::Validation => "The request is invalid.",
            Self::UnsupportedMediaType => "Send the body as application/json.",
            Self::Unauthorized => "Valid credentials are required.",
            Self::Forbidden => "You are not allowed to do this.",
            Self::NotFound => "There is nothing at this path.",
            Self::MethodNotAllowed => "This method is not allowed on this path.",
            Self::Conflict => "The resource was changed by another request.",
            Self::PreconditionFailed => "The resource changed since the version named; read it again.",
            Self::PreconditionRequired => "Name the version this change was made from with If-Match.",
            Self::RequestTimeout => "The request was not received in time.",
            Self::PayloadTooLarge => "The request body is larger than this endpoint accepts.",
            Self::HeadersTooLarge => "The request headers are larger than accepted.",
            Self::TooManyRequests => "Too many requests; retry after the time given.",
            Self::Internal => "The request could not be completed. Quote the request id when reporting this.",
            Self::BadGateway => "The upstream service answered with an error or refused the connection.",
            Self::ServiceUnavailable => "The service cannot answer right now; retry later.",
            Self::GatewayTimeout => "The upstream service did not answer in time.",
        }
    }

    pub fn uri(self) -> String {
        format!("urn:rampart:problem:{}", self.slug())
    }

    /// The problem type a bare error status stands for (used for responses that framework
    /// layers produce without a body of ours).
    pub fn for_status(status: StatusCode) -> Self {
        Self::ALL
            .into_iter()
            .find(|t| t.status() == status)
            .unwrap_or(if status.is_server_error() {
                Self::Internal
            } else {
                Self::MalformedRequest
            })
    }
}

/// One invalid input, located by a JSON Pointer (RFC 6901) into the request body, or by the
/// name of a header or query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

/// A problem to send. Build one with [`Problem::new`] and return it from a handler.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemType,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    /// The `WWW-Authenticate` challenge of a bearer refusal ([`BearerRefusal`]); other 401s
    /// send [`BEARER_REALM`].
    pub challenge: Option<&'static str>,
}

/// The challenge of a 401 that names no token error: which scheme and realm to authenticate in.
pub const BEARER_REALM: &str = r#"Bearer realm="rampart""#;

/// Why a bearer access token was refused. The auth API, the auth-proxy and core answer each
/// the same way: one status, one `detail`, one RFC 6750 §3 challenge, which says what kind of
/// failure it was and never which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerRefusal {
    /// No bearer token was sent.
    Missing,
    /// The token is malformed, forged, expired, for another audience, or its session is over.
    Invalid,
    /// The token is valid but lacks a scope the route requires.
    InsufficientScope,
}

impl BearerRefusal {
    pub fn challenge(self) -> &'static str {
        match self {
            Self::Missing => BEARER_REALM,
            Self::Invalid => r#"Bearer realm="rampart", error="invalid_token""#,
            Self::InsufficientScope => r#"Bearer realm="rampart", error="insufficient_scope""#,
        }
    }
}

impl From<BearerRefusal> for Problem {
    fn from(refusal: BearerRefusal) -> Self {
        let mut problem = match refusal {
            BearerRefusal::Missing => Self::new(ProblemType::Unauthorized, "A bearer access token is required."),
            BearerRefusal::Invalid => Self::new(
                ProblemType::Unauthorized,
                "The access token is invalid, expired or revoked.",
            ),
            BearerRefusal::InsufficientScope => Self::new(
                ProblemType::Forbidden,
                "The access token lacks a scope this route requires.",
            ),
        };
        problem.challenge = Some(refusal.challenge());
        problem
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            challenge: None,
        }
    }

    /// A 422 naming one invalid field.
    pub fn invalid_field(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(ProblemType::Validation, detail.clone()).with_field(pointer, detail)
    }

    /// A 500 whose cause has already been logged; the caller sees nothing internal.
    pub fn internal() -> Self {
        Self::of(ProblemType::Internal)
    }

    /// A problem of `kind` with its default detail.
    pub fn of(kind: ProblemType) -> Self {
        Self::new(kind, kind.default_detail())
    }

    pub fn with_field(mut self, pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The serialized body, with the current request id.
    pub fn to_json(&self) -> String {
        let body = ProblemBody {
            type_uri: self.kind.uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            request_id: current_request_id(),
            errors: &self.errors,
        };
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.kind.status(), self.to_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match (self.challenge, self.kind) {
            (Some(challenge), _) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            (None, ProblemType::Unauthorized) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_REALM));
            }
            (None, _) => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(problem: Problem) -> (Response, serde_json::Value) {
        let response = problem.into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).expect("json body");
        (Response::from_parts(parts, axum::body::Body::empty()), json)
    }

    #[tokio::test]
    async fn problem_has_rfc9457_members_and_request_id() {
        let problem = Problem::invalid_field("/email", "must be an email address");
        let (response, json) = scope_request_id(HeaderValue::from_static("req-1"), body_of(problem)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(json["type"], "urn:rampart:problem:validation");
        assert_eq!(json["status"], 422);
        assert_eq!(json["request_id"], "req-1");
        assert_eq!(json["errors"][0]["pointer"], "/email");
    }

    #[tokio::test]
    async fn unauthorized_carries_www_authenticate_and_retry_after_is_set() {
        let (response, _) = body_of(Problem::new(ProblemType::Unauthorized, "no token")).await;
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="rampart""#
        );
        let (response, _) = body_of(Problem::new(ProblemType::TooManyRequests, "slow down").with_retry_after(7)).await;
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[tokio::test]
    async fn bearer_refusals_read_the_same_everywhere() {
        for (refusal, status, challenge) in [
            (BearerRefusal::Missing, 401, r#"Bearer realm="rampart""#),
            (
                BearerRefusal::Invalid,
                401,
                r#"Bearer realm="rampart", error="invalid_token""#,
            ),
            (
                BearerRefusal::InsufficientScope,
                403,
                r#"Bearer realm="rampart", error="insufficient_scope""#,
            ),
        ] {
            let (response, json) = body_of(refusal.into()).await;
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], challenge);
            assert_eq!(json["detail"], Problem::from(refusal).detail);
        }
    }

    #[test]
    fn every_type_maps_back_from_its_status() {
        for kind in ProblemType::ALL {
            assert_eq!(ProblemType::for_status(kind.status()), kind);
        }
        assert_eq!(
            ProblemType::for_status(StatusCode::IM_A_TEAPOT),
            ProblemType::MalformedRequest
        );
        assert_eq!(
            ProblemType::for_status(StatusCode::NOT_IMPLEMENTED),
            ProblemType::Internal
        );
    }
}
