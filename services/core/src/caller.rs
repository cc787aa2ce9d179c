//! Who is asking: the bearer token checked by core itself against the issuer's keys and
//! revocation feed. A proxy in front has checked it too, but core never takes a proxy's word
//! (zero trust): a token revoked, forged or sent around the proxy is refused here as well.

use axum::extract::FromRequestParts;
use http::Method;
use http::request::Parts;
use rampart_kernel::{Problem, now_unix};

use crate::Core;

/// The signed-in user a request acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `sub`: the user id `GET /v1/auth/me` tells its owner.
    pub user_id: String,
}

/// The scope a request needs: `core:read` to read, `core:write` for anything else.
fn required_scope(method: &Method) -> &'static str {
    if matches!(*method, Method::GET | Method::HEAD) {
        "core:read"
    } else {
        "core:write"
    }
}

impl FromRequestParts<Core> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, core: &Core) -> Result<Self, Problem> {
        let scopes = [required_scope(&parts.method).to_owned()];
        match core.verifier.authorize(&parts.headers, &scopes, now_unix()).await {
            // The issuer's subjects are UUIDs; anything else is not a token core can act for.
            Ok(claims) if crate::records::is_user_id(&claims.sub) => Ok(Self {
                user_id: claims.sub.clone(),
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
