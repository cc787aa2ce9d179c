//! Who is asking: the bearer token checked by core itself against the issuer's keys and
//! revocation feed. A proxy in front has checked it too, but core never takes a proxy's word
//! (zero trust): a token revoked, forged or sent around the proxy is refused here as well.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, Method};
use rampart_kernel::http::X_REQUEST_ID;
use rampart_kernel::{Problem, now_unix};

use crate::Core;

/// The signed-in user a request acts for, and what their audit record names of the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `sub`: the user id `GET /v1/auth/me` tells its owner.
    pub user_id: String,
    /// The method and route template, e.g. `POST /v1/orgs/{org}/members`.
    pub action: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    /// The Idempotency-Key lease the request holds, which its write marks done.
    pub lease: Option<crate::idempotency::Lease>,
}

/// The scope a request needs: `core:read` to read, `core:write` for anything else.
fn required_scope(method: &Method) -> &'static str {
    if matches!(*method, Method::GET | Method::HEAD) {
        "core:read"
    } else {
        "core:write"
    }
}

impl Caller {
    /// The caller of a request with `method` and `headers` on `route`, if its bearer token
    /// holds: 401 or 403 otherwise.
    pub async fn authenticate(core: &Core, method: &Method, headers: &HeaderMap, route: &str) -> Result<Self, Problem> {
        let scopes = [required_scope(method).to_owned()];
        match core.verifier.authorize(headers, &scopes, now_unix()).await {
            // The issuer's subjects are UUIDs; anything else is not a token core can act for.
            Ok(claims) if crate::records::is_user_id(&claims.sub) => Ok(Self {
                user_id: claims.sub.clone(),
                action: format!("{method} {route}"),
                // The edge gives every request an id before it gets here.
                request_id: headers
                    .get(X_REQUEST_ID)
                    .and_then(|id| id.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                trace_id: rampart_kernel::telemetry::current_trace_id(),
                lease: None,
            }),
            Ok(_) => {
                tracing::warn!("a valid token's subject is not a user id");
                Err(rampart_kernel::BearerRefusal::Invalid.into())
            }
            Err(denial) => {
                tracing::info!(reason = denial.reason(), "token refused");
                Err(denial.into())
            }
        }
    }
}

/// The caller [`crate::audit::guard`] authenticated. A route without the guard has none, and
/// answers 500 rather than act for nobody.
impl FromRequestParts<Core> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &Core) -> Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a core route without the audit guard");
            Problem::internal()
        })
    }
}
