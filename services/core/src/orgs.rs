//! Organisations: the tenants. Creating one makes the caller its owner and gives it its own data
//! key; deleting one destroys that key first (crypto-shredding), then its items.

use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rampart_kernel::extract::Json;
use rampart_kernel::{Problem, now_unix};
use rampart_store::{Table, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::permissions::{Action, Role, allows};
use crate::records::{self, Membership, Org, Stored};

/// Longest organisation name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1 to 100 characters, no control characters.
    pub name: String,
}

/// A JSON Merge Patch (RFC 7396) of an organisation: fields left out stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    pub name: Option<String>,
}

/// An organisation as its members see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// The caller's role in it.
    pub role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgList {
    pub items: Vec<OrgView>,
}

fn view(org: &Org, role: Role) -> OrgView {
    OrgView {
        id: org.id.clone(),
        name: org.name.clone(),
        created_at: org.created_at,
        role,
    }
}

/// A trimmed name of 1 to [`MAX_NAME_CHARS`] characters without control characters.
pub fn name(pointer: &str, raw: &str) -> Result<String, Problem> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            pointer,
            format!("must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The organisation id in a path: a UUID, as core makes them.
pub fn org_id(raw: &str) -> Result<String, CoreError> {
    uuid::Uuid::try_parse(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| Problem::invalid_field("/path/org", "not an organisation id").into())
}

/// The caller's membership of `org`, if their role allows `action`: 404 for a non-member, as
/// if the organisation did not exist; 403 for a member whose role does not allow it.
pub async fn member_for(
    core: &Core,
    org: &str,
    caller: &Caller,
    action: Action,
) -> Result<Stored<Membership>, CoreError> {
    let membership = records::membership(&*core.store, org, &caller.user_id)
        .await?
        .ok_or(CoreError::NotFound)?;
    if allows(membership.value.role, action) {
        Ok(membership)
    } else {
        Err(CoreError::Forbidden)
    }
}

/// The organisation, as a member has just been shown to belong to it.
async fn existing(core: &Core, org: &str) -> Result<Stored<Org>, CoreError> {
    records::org(&*core.store, org).await?.ok_or(CoreError::NotFound)
}

#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrg, security(("bearer" = [])),
    responses((status = 201, body = OrgView, description = "Created; the caller is its owner"),
        (status = 422, description = "Invalid name", content_type = "application/problem+json")))]
pub async fn create(
    State(core): State<Core>,
    caller: Caller,
    Json(request): Json<CreateOrg>,
) -> Result<Response, CoreError> {
    let name = name("/name", &request.name)?;
    let org = Org {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        name,
        created_at: now_unix(),
        created_by: caller.user_id.clone(),
        owners: 1,
    };
    let owner = Membership {
        user_id: caller.user_id.clone(),
        role: Role::Owner,
        added_at: org.created_at,
    };
    // The key first: an organisation never exists without one.
    core.keys.create(&org.id).await?;
    let writes = [
        Write::Put(records::new_org_item(&org)?),
        Write::Put(records::new_member_item(&org.id, &owner)?),
    ];
    if let Err(error) = core.store.transact(Table::Core, &writes).await {
        if let Err(shred) = core.keys.shred(&org.id).await {
            tracing::warn!(%shred, "the key of an organisation that was not created is left");
        }
        return Err(error.into());
    }
    let location = format!("/v1/orgs/{}", org.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(view(&org, Role::Owner)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])),
    responses((status = 200, body = OrgList, description = "The organisations the caller belongs to (at most 100)")))]
pub async fn list(State(core): State<Core>, caller: Caller) -> Result<JsonBody<OrgList>, CoreError> {
    let mut items = Vec::new();
    for org in records::orgs_of(&*core.store, &caller.user_id).await? {
        // Both are read: a membership being added or removed this moment is skipped.
        let (Some(membership), Some(profile)) = (
            records::membership(&*core.store, &org, &caller.user_id).await?,
            records::org(&*core.store, &org).await?,
        ) else {
            continue;
        };
        items.push(view(&profile.value, membership.value.role));
    }
    Ok(JsonBody(OrgList { items }))
}

#[utoipa::path(get, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    responses((status = 200, body = OrgView), (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn get(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<JsonBody<OrgView>, CoreError> {
    let org = org_id(&org)?;
    let member = member_for(&core, &org, &caller, Action::ReadOrg).await?;
    Ok(JsonBody(view(&existing(&core, &org).await?.value, member.value.role)))
}

#[utoipa::path(patch, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    request_body(content = PatchOrg, content_type = "application/merge-patch+json"),
    responses((status = 200, body = OrgView), (status = 403, description = "Only owners and admins rename", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn patch(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    Json(request): Json<PatchOrg>,
) -> Result<JsonBody<OrgView>, CoreError> {
    let org = org_id(&org)?;
    let member = member_for(&core, &org, &caller, Action::RenameOrg).await?;
    let stored = existing(&core, &org).await?;
    let mut updated = stored.value.clone();
    if let Some(raw) = &request.name {
        updated.name = name("/name", raw)?;
    }
    core.store.put(Table::Core, &stored.replaced_by(&updated)?).await?;
    Ok(JsonBody(view(&updated, member.value.role)))
}

#[utoipa::path(delete, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    responses((status = 204, description = "Deleted: its data key destroyed, then its items"),
        (status = 403, description = "Only owners delete", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn delete(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<StatusCode, CoreError> {
    let org = org_id(&org)?;
    member_for(&core, &org, &caller, Action::DeleteOrg).await?;
    // The keys first: from here on nothing sealed for the organisation opens, whatever copy
    // of the table exists. A failure below leaves items no one can read, removed on a retry.
    core.keys.shred(&org).await?;
    // The caller's membership last, so that a retry after a failure here is still allowed.
    let own = records::member_key(&org, &caller.user_id);
    let mut keys = records::all_items(&*core.store, &org).await?;
    keys.retain(|key| *key != own);
    keys.push(own);
    for key in keys {
        core.store.delete(Table::Core, &key, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
