//! core's OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use rampart_kernel::openapi::{BearerScheme, EdgeResponses};
use utoipa::OpenApi;

use crate::{members, orgs};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rampart core API", description = "Organisations (tenants) and their members. Every operation needs a bearer access token; another tenant's resources answer 404. Errors are RFC 9457 problem+json."),
    paths(orgs::create, orgs::list, orgs::get, orgs::patch, orgs::delete, members::add, members::list, members::patch, members::remove),
    modifiers(&BearerScheme, &EdgeResponses),
)]
#[derive(Debug)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
