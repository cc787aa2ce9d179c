//! An organisation's members and their roles. Owners and admins manage members; only owners
//! make, change or remove owners; anyone may leave; and the last owner can neither leave nor be
//! removed or demoted, however many requests try at once.

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
use crate::orgs::{member_for, org_id};
use crate::permissions::{Action, Role, allows};
use crate::records::{self, Membership, Org, Stored};

const LAST_OWNER: &str = "An organisation keeps at least one owner: make another member an owner first.";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's id (`sub`), as `GET /v1/auth/me` shows it to them.
    pub user_id: String,
    pub role: Role,
}

/// A JSON Merge Patch (RFC 7396) of a membership.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    pub role: Option<Role>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub role: Role,
    pub added_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

fn view(member: &Membership) -> MemberView {
    MemberView {
        user_id: member.user_id.clone(),
        role: member.role,
        added_at: member.added_at,
    }
}

/// A user id as the auth API issues them: 1 to 128 characters of letters, digits, `-` and `_`.
fn user_id(pointer: &str, raw: &str) -> Result<String, Problem> {
    let valid =
        !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(Problem::invalid_field(pointer, "not a user id"))
    }
}

/// The action a change from `before` to `after` needs: touching an owner needs an owner.
fn action_for(before: Option<Role>, after: Option<Role>) -> Action {
    if before == Some(Role::Owner) || after == Some(Role::Owner) {
        Action::ManageOwners
    } else {
        Action::ManageMembers
    }
}

/// The organisation with its owner count moved by `delta`, to write beside the membership
/// change; refused if no owner would be left.
fn owners_moved(org: &Stored<Org>, delta: i32) -> Result<Write, CoreError> {
    let owners = org.value.owners.checked_add_signed(delta).filter(|n| *n >= 1);
    let owners = owners.ok_or(CoreError::Conflict(LAST_OWNER))?;
    let updated = Org {
        owners,
        ..org.value.clone()
    };
    Ok(Write::Put(org.replaced_by(&updated)?))
}

async fn org_record(core: &Core, org: &str) -> Result<Stored<Org>, CoreError> {
    records::org(&*core.store, org).await?.ok_or(CoreError::NotFound)
}

#[utoipa::path(post, path = "/v1/orgs/{org}/members", tag = "members", request_body = AddMember, security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    responses((status = 201, body = MemberView), (status = 403, description = "The caller's role cannot add this role", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json"),
        (status = 409, description = "Already a member", content_type = "application/problem+json")))]
pub async fn add(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    Json(request): Json<AddMember>,
) -> Result<Response, CoreError> {
    let org = org_id(&org)?;
    let user = user_id("/user_id", &request.user_id)?;
    member_for(&core, &org, &caller, action_for(None, Some(request.role))).await?;
    let member = Membership {
        user_id: user,
        role: request.role,
        added_at: now_unix(),
    };
    let mut writes = vec![Write::Put(records::new_member_item(&org, &member)?)];
    if member.role == Role::Owner {
        writes.push(owners_moved(&org_record(&core, &org).await?, 1)?);
    }
    match core.store.transact(Table::Core, &writes).await {
        Err(rampart_store::StoreError::ConditionFailed) if member.role != Role::Owner => {
            return Err(CoreError::Conflict("The user is already a member."));
        }
        result => result?,
    }
    let location = format!("/v1/orgs/{org}/members/{}", member.user_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(view(&member)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    responses((status = 200, body = MemberList, description = "The members (at most 100)"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn list(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<JsonBody<MemberList>, CoreError> {
    let org = org_id(&org)?;
    member_for(&core, &org, &caller, Action::ListMembers).await?;
    let items = records::members(&*core.store, &org).await?.iter().map(view).collect();
    Ok(JsonBody(MemberList { items }))
}

#[utoipa::path(patch, path = "/v1/orgs/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("user" = String, Path, description = "The member's user id")),
    request_body(content = PatchMember, content_type = "application/merge-patch+json"),
    responses((status = 200, body = MemberView), (status = 403, description = "The caller's role cannot make this change", content_type = "application/problem+json"),
        (status = 404, description = "No such member, or not the caller's organisation", content_type = "application/problem+json"),
        (status = 409, description = "It would leave no owner, or another change came first", content_type = "application/problem+json")))]
pub async fn patch(
    State(core): State<Core>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    Json(request): Json<PatchMember>,
) -> Result<JsonBody<MemberView>, CoreError> {
    let org = org_id(&org)?;
    let user = user_id("/path/user", &user)?;
    let acting = member_for(&core, &org, &caller, Action::ReadOrg).await?;
    let target = records::membership(&*core.store, &org, &user)
        .await?
        .ok_or(CoreError::NotFound)?;
    let Some(role) = request.role else {
        return Ok(JsonBody(view(&target.value)));
    };
    if !allows(acting.value.role, action_for(Some(target.value.role), Some(role))) {
        return Err(CoreError::Forbidden);
    }
    let updated = Membership {
        role,
        ..target.value.clone()
    };
    let mut writes = vec![Write::Put(target.replaced_by(&updated)?)];
    let delta = i32::from(role == Role::Owner) - i32::from(target.value.role == Role::Owner);
    if delta != 0 {
        writes.push(owners_moved(&org_record(&core, &org).await?, delta)?);
    }
    core.store.transact(Table::Core, &writes).await?;
    Ok(JsonBody(view(&updated)))
}

#[utoipa::path(delete, path = "/v1/orgs/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("user" = String, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed (or left)"), (status = 403, description = "The caller's role cannot remove this member", content_type = "application/problem+json"),
        (status = 404, description = "No such member, or not the caller's organisation", content_type = "application/problem+json"),
        (status = 409, description = "The last owner cannot leave or be removed", content_type = "application/problem+json")))]
pub async fn remove(
    State(core): State<Core>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, CoreError> {
    let org = org_id(&org)?;
    let user = user_id("/path/user", &user)?;
    let acting = member_for(&core, &org, &caller, Action::ReadOrg).await?;
    let target = records::membership(&*core.store, &org, &user)
        .await?
        .ok_or(CoreError::NotFound)?;
    // Anyone may leave; removing someone else needs the role for theirs.
    let leaving = user == caller.user_id;
    if !leaving && !allows(acting.value.role, action_for(Some(target.value.role), None)) {
        return Err(CoreError::Forbidden);
    }
    let mut writes = vec![Write::Delete {
        key: target.key.clone(),
        expected_version: Some(target.version),
    }];
    if target.value.role == Role::Owner {
        writes.push(owners_moved(&org_record(&core, &org).await?, -1)?);
    }
    core.store.transact(Table::Core, &writes).await?;
    Ok(StatusCode::NO_CONTENT)
}
