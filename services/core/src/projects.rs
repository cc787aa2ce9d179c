//! Projects: the folders of an organisation's documents. Owners and admins create, rename and
//! delete them; every member reads them. Deleting one deletes its documents.

use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rampart_kernel::extract::Json;
use rampart_kernel::now_unix;
use rampart_store::{Lookup, Table, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::orgs::{Access, member_for, member_for_with, name, org_id};
use crate::pages::{Listing, PageQuery};
use crate::permissions::Action;
use crate::records::{self, Project, Stored};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectList {
    pub items: Vec<ProjectView>,
    pub next_cursor: Option<String>,
}

fn view(project: &Project) -> ProjectView {
    ProjectView {
        id: project.id.clone(),
        name: project.name.clone(),
        created_at: project.created_at,
    }
}

/// A project id in a path.
pub fn project_id(raw: &str) -> Result<String, CoreError> {
    crate::orgs::path_id(raw, "project", "not a project id")
}

/// The caller's access to `org` for `action`, and the project in it (404 if there is none).
pub async fn project_for(
    core: &Core,
    caller: &Caller,
    (org, project): (&str, &str),
    action: Action,
) -> Result<(Access, Stored<Project>), CoreError> {
    let (access, project) = member_for_with(core, org, caller, action, &[records::project_key(org, project)]).await?;
    let project = project.into_iter().flatten().next().ok_or(CoreError::NotFound)?;
    Ok((access, records::decode(project)?))
}

#[utoipa::path(post, path = "/v1/orgs/{org}/projects", tag = "projects", request_body = CreateProject, security(("bearer" = [])),
    params(("idempotency-key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer again (marked idempotent-replayed: true); kept 24 hours"), ("org" = String, Path, description = "Organisation id")),
    responses((status = 201, body = ProjectView),
        (status = 422, description = "Invalid input, or an Idempotency-Key used for another request", content_type = "application/problem+json"), (status = 403, description = "Only owners and admins create projects", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json"),
        (status = 303, description = "A retry with the Idempotency-Key of a request that wrote but whose answer was lost: what it made is at Location", headers(("location" = String, description = "What the first request made"))),
        (status = 409, description = "Another change came first, or the request with this Idempotency-Key is still running", content_type = "application/problem+json")))]
pub async fn create(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    Json(request): Json<CreateProject>,
) -> Result<Response, CoreError> {
    let org = org_id(&org)?;
    let name = name("/name", &request.name)?;
    let access = member_for(&core, &org, &caller, Action::ManageProjects).await?;
    let project = Project {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        name,
        created_at: now_unix(),
    };
    let mut writes = vec![Write::Put(records::new_item(
        records::project_key(&org, &project.id),
        &project,
    )?)];
    writes.extend(access.checks(&[]));
    let location = format!("/v1/orgs/{org}/projects/{}", project.id);
    core.commit(&caller, &org, &location, writes).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(view(&project)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/orgs/{org}/projects", tag = "projects", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), PageQuery),
    responses((status = 200, body = ProjectList, description = "The projects, by id"),
        (status = 400, description = "A limit out of range, or a cursor not of this list", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn list(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    paging: PageQuery,
) -> Result<JsonBody<ProjectList>, CoreError> {
    let org = org_id(&org)?;
    member_for(&core, &org, &caller, Action::ReadContent).await?;
    let listing = Listing {
        name: &["projects", &org],
        lookup: Lookup::Table,
        pk: &records::partition(&org),
        prefix: "project#",
    };
    let (projects, next_cursor) = core.page_of::<Project>(listing, &paging).await?;
    Ok(JsonBody(ProjectList {
        items: projects.iter().map(|p| view(&p.value)).collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id")),
    responses((status = 200, body = ProjectView), (status = 404, description = "No such project, or not the caller's", content_type = "application/problem+json")))]
pub async fn get(
    State(core): State<Core>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
) -> Result<JsonBody<ProjectView>, CoreError> {
    let (org, project) = (org_id(&org)?, project_id(&project)?);
    let (_, project) = project_for(&core, &caller, (&org, &project), Action::ReadContent).await?;
    Ok(JsonBody(view(&project.value)))
}

/// A JSON Merge Patch (RFC 7396) of a project.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProject {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
}

#[utoipa::path(patch, path = "/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id")),
    request_body(content = PatchProject, content_type = "application/merge-patch+json"),
    responses((status = 200, body = ProjectView), (status = 403, description = "Only owners and admins rename projects", content_type = "application/problem+json"),
        (status = 404, description = "No such project, or not the caller's", content_type = "application/problem+json"),
        (status = 409, description = "Another change came first", content_type = "application/problem+json")))]
pub async fn patch(
    State(core): State<Core>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
    Json(request): Json<PatchProject>,
) -> Result<JsonBody<ProjectView>, CoreError> {
    let (org, project) = (org_id(&org)?, project_id(&project)?);
    let (access, stored) = project_for(&core, &caller, (&org, &project), Action::ManageProjects).await?;
    let mut updated = stored.value.clone();
    if let Some(raw) = &request.name {
        updated.name = name("/name", raw)?;
    }
    let mut writes = vec![Write::Put(stored.replaced_by(&updated)?)];
    writes.extend(access.checks(&[]));
    core.commit(&caller, &org, &format!("/v1/orgs/{org}/projects/{project}"), writes)
        .await?;
    Ok(JsonBody(view(&updated)))
}

#[utoipa::path(delete, path = "/v1/orgs/{org}/projects/{project}", tag = "projects", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id")),
    responses((status = 204, description = "Deleted, with its documents"), (status = 403, description = "Only owners and admins delete projects", content_type = "application/problem+json"),
        (status = 404, description = "No such project, or not the caller's", content_type = "application/problem+json"),
        (status = 409, description = "Another change came first", content_type = "application/problem+json")))]
pub async fn delete(
    State(core): State<Core>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
) -> Result<StatusCode, CoreError> {
    let (org, project) = (org_id(&org)?, project_id(&project)?);
    let (access, stored) = project_for(&core, &caller, (&org, &project), Action::ManageProjects).await?;
    // The project first, conditional on what was read: from then on no document can be added
    // to it (each addition checks the project), and its documents answer 404.
    let mut writes = vec![Write::Delete {
        key: stored.key.clone(),
        expected_version: Some(stored.version),
    }];
    writes.extend(access.checks(&[]));
    core.commit(&caller, &org, &format!("/v1/orgs/{org}/projects/{project}"), writes)
        .await?;
    for document in records::all_keys(&*core.store, &org, &format!("doc#{project}#")).await? {
        core.store.delete(Table::Core, &document, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
