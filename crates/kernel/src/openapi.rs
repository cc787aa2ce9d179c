//! What every OpenAPI document of the platform shares: one schema for problem+json bodies, and
//! the answers the shared edge and extractors give on any route. Handlers document their own
//! outcomes; [`EdgeResponses`] adds these, so a document lists every status a client can get
//! (schemathesis, in the test command, fails on any status or body it does not list).

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::problem::PROBLEM_JSON;

/// An RFC 9457 problem as every Rampart surface sends it (the schema of `Problem`'s body).
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // Only its schema is used; the body is serialized by `Problem::to_json`.
struct ProblemSchema {
    /// A stable URI naming the kind of problem, e.g. `urn:rampart:problem:validation`.
    #[schema(rename = "type")]
    type_uri: String,
    title: String,
    status: u16,
    /// Safe, caller-facing text; never an internal detail.
    detail: String,
    /// The `x-request-id` of the request, to find its logs.
    request_id: Option<String>,
    /// The fields at fault, for 422.
    errors: Option<Vec<FieldErrorSchema>>,
}

#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
struct FieldErrorSchema {
    /// A JSON pointer into the body (`/email`), or the name of a query parameter or header.
    pointer: String,
    detail: String,
}

/// The responses every route may give besides its own, by what the route takes:
/// - any route: 429 (API Gateway's and the proxy's rate limits apply to every route, and a
///   backend may throttle too), 500 (a fault whose cause is only in the logs) and 503 (handler
///   timeout, load shed with `Retry-After`, a backend unavailable);
/// - with a request body: 400 (not well-formed), 413 (over the body limit), 415 (not
///   `application/json`) and 422 (fails validation, naming the field);
/// - with query or path parameters: 400 and 422;
/// - with a security requirement: 401 (no valid bearer token, with `WWW-Authenticate`).
///
/// Every problem+json response, the handlers' own included, gets the `Problem` schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert("Problem".into(), ProblemSchema::schema());
        components
            .schemas
            .insert("FieldError".into(), FieldErrorSchema::schema());
        for item in openapi.paths.paths.values_mut() {
            let has_path_parameters = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_edge_responses(operation, has_path_parameters);
            }
        }
    }
}

fn add_edge_responses(operation: &mut Operation, has_path_parameters: bool) {
    let mut statuses = vec![
        (
            429,
            "Rate limited, by this route's throttle, a backend's or the gateway's in front; see Retry-After",
        ),
        (500, "An internal fault; the cause is only in the logs"),
        (
            503,
            "Timed out, shedding load (see Retry-After) or a backend is unavailable",
        ),
    ];
    if operation.request_body.is_some() {
        statuses.extend([
            (400, "The body is not well-formed JSON"),
            (413, "The body is over the route's limit"),
            (415, "The body is not application/json"),
            (422, "The request fails validation; `errors` names the field"),
        ]);
    }
    if has_path_parameters || operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        statuses.extend([
            (400, "A parameter is not readable"),
            (422, "A parameter fails validation; `errors` names it"),
        ]);
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.push((401, "No valid access token"));
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else { continue };
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        let problem = response
            .content
            .entry(PROBLEM_JSON.to_string())
            .or_insert_with(|| Content::new(None::<RefOr<utoipa::openapi::Schema>>));
        problem
            .schema
            .get_or_insert_with(|| RefOr::Ref(Ref::from_schema_name("Problem")));
    }
}

/// Declares the `bearer` security scheme (an access token, a JWT) the operations name.
#[derive(Debug)]
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
