//! Every way a request can end at the proxy instead of with the upstream's answer, and the one
//! place each is answered (problem+json, with the headers the client needs to act on it).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use rampart_kernel::{Problem, ProblemType};
use rampart_verifier::Denial;

use crate::ratelimit::Decision;

#[derive(Debug)]
pub enum ProxyError {
    /// The request carried no client address: the proxy was served by something other than
    /// `rampart_kernel::serve`. A bug, answered 500.
    NoClientAddress,
    /// No route matches the path.
    NoRoute,
    /// The bearer token did not let the request through.
    Denied(Denial),
    /// The route's rate limit for this caller is spent.
    RateLimited(Decision),
    /// The path cannot be sent on to the upstream.
    BadPath,
    /// The upstream's breaker is open.
    CircuitOpen { retry_after: Duration },
    /// The upstream could not be reached, or broke off.
    BadGateway,
    /// The upstream did not answer within the route's timeout.
    GatewayTimeout,
    /// The client's body did not arrive within the route's timeout.
    SlowBody,
    /// The client's body grew past the edge's limit.
    BodyTooLarge,
    /// The client broke its body off before its end.
    BodyBrokenOff,
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::NoClientAddress => Problem::internal(),
            Self::NoRoute => Problem::of(ProblemType::NotFound),
            Self::Denied(denial) => denial.into(),
            Self::RateLimited(decision) => {
                let mut response = Problem::of(ProblemType::TooManyRequests)
                    .with_retry_after(decision.retry_after_secs)
                    .into_response();
                decision.write_headers(response.headers_mut());
                return response;
            }
            Self::BadPath => Problem::of(ProblemType::MalformedRequest),
            Self::CircuitOpen { retry_after } => Problem::new(
                ProblemType::ServiceUnavailable,
                "The upstream is failing and is not being called for now (circuit open); try again shortly.",
            )
            .with_retry_after(retry_after.as_secs().max(1)),
            Self::BadGateway => Problem::of(ProblemType::BadGateway),
            Self::GatewayTimeout => Problem::of(ProblemType::GatewayTimeout),
            Self::SlowBody => Problem::new(
                ProblemType::RequestTimeout,
                "The request body did not arrive within the route's timeout.",
            ),
            Self::BodyTooLarge => Problem::of(ProblemType::PayloadTooLarge),
            Self::BodyBrokenOff => Problem::new(
                ProblemType::MalformedRequest,
                "The request body broke off before its end.",
            ),
        };
        problem.into_response()
    }
}
