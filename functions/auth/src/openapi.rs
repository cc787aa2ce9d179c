//! The OpenAPI document, generated from the handlers' annotations, and the route serving it.

use axum::response::Response;
use rampart_kernel::openapi::{BearerScheme, EdgeResponses};
use utoipa::OpenApi;

use crate::respond::cacheable;
use crate::{account, discovery, oauth, signin, signup};
use rampart_keyring::JWKS_MAX_AGE_SECS;

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rampart authentication API", description = "Sign-up, sign-in with TOTP MFA, sessions and token discovery. Errors are RFC 9457 problem+json."),
    paths(
        signup::register, signup::confirm, signup::resend_confirmation, signup::forgot_password, signup::reset_password,
        signin::login, signin::login_mfa, signin::refresh, oauth::token, signin::logout, signin::logout_all,
        account::me, account::list_sessions, account::revoke_session, account::change_password,
        account::begin_totp, account::verify_totp, account::disable_totp,
        discovery::jwks, discovery::openid_configuration, discovery::authorization_server_metadata, discovery::revocations,
    ),
    modifiers(&BearerScheme, &EdgeResponses),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// This API's OpenAPI 3.1 document.
pub async fn openapi() -> Response {
    cacheable(ApiDoc::openapi(), JWKS_MAX_AGE_SECS)
}
