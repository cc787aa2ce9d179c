//! core's OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use rampart_kernel::openapi::{BearerScheme, EdgeResponses};
use utoipa::OpenApi;

use crate::{audit, documents, members, orgs, projects};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rampart core API", description = "Organisations (tenants), their members, projects and documents (titles and bodies sealed with the organisation's own key). Every operation needs a bearer access token; another tenant's resources answer 404. Lists are paged with `limit` and an opaque `cursor` (`next_cursor` of the page before). Every write, allowed or refused, is in the organisation's audit log. Errors are RFC 9457 problem+json."),
    paths(
        orgs::create, orgs::list, orgs::get, orgs::patch, orgs::delete, audit::list, members::add, members::list, members::patch, members::remove,
        projects::create, projects::list, projects::get, projects::patch, projects::delete,
        documents::create, documents::list, documents::get, documents::put, documents::patch, documents::delete,
    ),
    modifiers(&BearerScheme, &EdgeResponses),
)]
#[derive(Debug)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
