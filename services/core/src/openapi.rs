//! core's OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use rampart_kernel::openapi::{BearerScheme, EdgeResponses};
use serde_json::{Map, Value, json};
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

pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// A collection, the path of one of its items, and where each of the item's path parameters
/// comes from: `$request.path.<name>` or `$response.body#/<field>` of the create.
type Made = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const MADE: [Made; 4] = [
    ("/v1/orgs", "/v1/orgs/{org}", &[("org", "$response.body#/id")]),
    (
        "/v1/orgs/{org}/members",
        "/v1/orgs/{org}/members/{user}",
        &[("org", "$request.path.org"), ("user", "$response.body#/user_id")],
    ),
    (
        "/v1/orgs/{org}/projects",
        "/v1/orgs/{org}/projects/{project}",
        &[("org", "$request.path.org"), ("project", "$response.body#/id")],
    ),
    (
        "/v1/orgs/{org}/projects/{project}/documents",
        "/v1/orgs/{org}/projects/{project}/documents/{document}",
        &[
            ("org", "$request.path.org"),
            ("project", "$request.path.project"),
            ("document", "$response.body#/id"),
        ],
    ),
];

/// The document with links from each create's 201 to every operation on what it made (OpenAPI
/// Link Objects), so a client generator or a stateful fuzzer (schemathesis, in the README's test
/// command) goes on to read, change and delete the resource it made rather than guess ids.
/// Added to the JSON: utoipa 5 writes a link's `operationRef` as `operation_ref`.
fn document() -> Value {
    let mut api = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    for (collection, item, parameters) in MADE {
        let methods: Vec<String> = api["paths"][item]
            .as_object()
            .map(|path| {
                ["get", "put", "patch", "delete"]
                    .into_iter()
                    .filter(|method| path.contains_key(*method))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // A JSON pointer escapes "/" as "~1".
        let pointer = item.replace('~', "~0").replace('/', "~1");
        let links: Map<String, Value> = methods
            .iter()
            .map(|method| {
                let link = json!({
                    "operationRef": format!("#/paths/{pointer}/{method}"),
                    "parameters": parameters.iter().map(|(name, from)| (name.to_string(), json!(from))).collect::<Map<_, _>>(),
                });
                (method.to_ascii_uppercase(), link)
            })
            .collect();
        if let Some(created) = api["paths"][collection]["post"]["responses"]["201"].as_object_mut() {
            created.insert("links".into(), Value::Object(links));
        }
    }
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every create links to each operation on what it made, and each link resolves: its
    /// operation exists and it gives exactly that path's parameters.
    #[test]
    fn every_create_links_to_the_operations_on_what_it_made() {
        let api = document();
        for (collection, item, _) in MADE {
            let links = api["paths"][collection]["post"]["responses"]["201"]["links"]
                .as_object()
                .unwrap_or_else(|| panic!("no links from POST {collection}"));
            let methods = ["get", "put", "patch", "delete"].map(|m| api["paths"][item].get(m).is_some());
            assert_eq!(
                links.len(),
                methods.iter().filter(|present| **present).count(),
                "{item}"
            );
            for (name, link) in links {
                let reference = link["operationRef"].as_str().expect("operationRef");
                let pointer = reference.strip_prefix('#').expect("local");
                let operation = api
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{name}: {reference} resolves to nothing"));
                let mut wanted: Vec<&str> = operation["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().expect("name"))
                    .collect();
                let mut given: Vec<&str> = link["parameters"]
                    .as_object()
                    .expect("parameters")
                    .keys()
                    .map(String::as_str)
                    .collect();
                wanted.sort_unstable();
                given.sort_unstable();
                assert_eq!(given, wanted, "{name} on {item}");
            }
        }
    }
}
