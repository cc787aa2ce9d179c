//! An organisation's members and their roles. Owners and admins manage members; only owners
//! make, change or remove owners; anyone may leave; and the last owner can neither leave nor be
//! removed or demoted, however many requests try at once.

use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rampart_kernel::extract::Json;
use rampart_kernel::{Problem, now_unix};
use rampart_store::{Key, Lookup, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::orgs::{Access, member_for, member_for_with, org_id};
use crate::pages::{Listing, PageQuery};
use crate::permissions::{Action, Role, allows};
use crate::records::{self, Membership, Org, Stored};

const LAST_OWNER: &str = "An organisation keeps at least one owner: make another member an owner first.";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user's id (`sub`), as `GET /v1/auth/me` shows it to them.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,128}$")]
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
    pub next_cursor: Option<String>,
}

fn view(member: &Membership) -> MemberView {
    MemberView {
        user_id: member.user_id.clone(),
        role: member.role,
        added_at: member.added_at,
    }
}

/// A user id in a request ([`records::is_user_id`]).
fn user_id(pointer: &str, raw: &str) -> Result<String, Problem> {
    if records::is_user_id(raw) {
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

/// The writes that change `target` (or add a member) and keep the change conditional on what
/// `access` read: the organisation with its owner count moved by `delta` when an owner comes or
/// goes (refused if none would be left), else a check that it is unchanged; and a check that
/// the acting member still has the role they acted with, unless they change themselves.
fn guarded(access: &Access, change: Write, changed: &Key, delta: i32) -> Result<Vec<Write>, CoreError> {
    let mut writes = vec![change];
    let mut written = vec![changed];
    if delta != 0 {
        let owners = access.org.value.owners.checked_add_signed(delta).filter(|n| *n >= 1);
        let owners = owners.ok_or(CoreError::Conflict(LAST_OWNER))?;
        let updated = Org {
            owners,
            ..access.org.value.clone()
        };
        writes.push(Write::Put(access.org.replaced_by(&updated)?));
        written.push(&access.org.key);
    }
    writes.extend(access.checks(&written));
    Ok(writes)
}

fn owner_delta(before: Option<Role>, after: Option<Role>) -> i32 {
    i32::from(after == Some(Role::Owner)) - i32::from(before == Some(Role::Owner))
}

#[utoipa::path(post, path = "/v1/orgs/{org}/members", tag = "members", request_body = AddMember, security(("bearer" = [])),
    params(("idempotency-key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer again (marked idempotent-replayed: true); kept 24 hours"), ("org" = String, Path, description = "Organisation id")),
    responses((status = 201, body = MemberView),
        (status = 422, description = "Invalid input, or an Idempotency-Key used for another request", content_type = "application/problem+json"), (status = 403, description = "The caller's role cannot add this role", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json"),
        (status = 303, description = "A retry with the Idempotency-Key of a request that wrote but whose answer was lost: what it made is at Location", headers(("location" = String, description = "What the first request made"))),
        (status = 409, description = "Already a member, the user in 100 organisations already, or another change came first, or the request with this Idempotency-Key is still running", content_type = "application/problem+json")))]
pub async fn add(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    Json(request): Json<AddMember>,
) -> Result<Response, CoreError> {
    let org = org_id(&org)?;
    let user = user_id("/user_id", &request.user_id)?;
    let (access, existing) =
        access_and_member(&core, &org, &caller, action_for(None, Some(request.role)), &user).await?;
    if existing.is_some() {
        return Err(CoreError::Conflict("The user is already a member."));
    }
    if records::orgs_of(&*core.store, &user).await?.len() >= records::MAX_ORGS_PER_USER {
        return Err(CoreError::Conflict(
            "The user belongs to 100 organisations, the most one user may.",
        ));
    }
    let member = Membership {
        user_id: user,
        role: request.role,
        added_at: now_unix(),
    };
    let item = records::new_member_item(&org, &member)?;
    let key = item.key.clone();
    let writes = guarded(&access, Write::Put(item), &key, owner_delta(None, Some(member.role)))?;
    let location = format!("/v1/orgs/{org}/members/{}", member.user_id);
    core.commit(&caller, &org, &location, writes).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(view(&member)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), PageQuery),
    responses((status = 200, body = MemberList, description = "The members, by user id"),
        (status = 400, description = "A limit out of range, or a cursor not of this list", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn list(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    paging: PageQuery,
) -> Result<JsonBody<MemberList>, CoreError> {
    let org = org_id(&org)?;
    member_for(&core, &org, &caller, Action::ListMembers).await?;
    let listing = Listing {
        name: &["members", &org],
        lookup: Lookup::Table,
        pk: &records::partition(&org),
        prefix: "member#",
    };
    let (members, next_cursor) = core.page_of::<Membership>(listing, &paging).await?;
    Ok(JsonBody(MemberList {
        items: members.iter().map(|member| view(&member.value)).collect(),
        next_cursor,
    }))
}

/// The caller's access to `org` for `action` and the membership of `user` there, if any, read
/// in one store call.
async fn access_and_member(
    core: &Core,
    org: &str,
    caller: &Caller,
    action: Action,
    user: &str,
) -> Result<(Access, Option<Stored<Membership>>), CoreError> {
    if user == caller.user_id {
        let access = member_for(core, org, caller, action).await?;
        let member = access.member.clone();
        return Ok((access, Some(member)));
    }
    let (access, items) = member_for_with(core, org, caller, action, &[records::member_key(org, user)]).await?;
    let member = items.into_iter().next().flatten().map(records::decode).transpose()?;
    Ok((access, member))
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
    let (access, target) = access_and_member(&core, &org, &caller, Action::ReadOrg, &user).await?;
    let target = target.ok_or(CoreError::NotFound)?;
    let Some(role) = request.role else {
        return Ok(JsonBody(view(&target.value)));
    };
    if !allows(
        access.member.value.role,
        action_for(Some(target.value.role), Some(role)),
    ) {
        return Err(CoreError::Forbidden);
    }
    let updated = Membership {
        role,
        ..target.value.clone()
    };
    let change = Write::Put(target.replaced_by(&updated)?);
    let delta = owner_delta(Some(target.value.role), Some(role));
    let writes = guarded(&access, change, &target.key, delta)?;
    core.commit(&caller, &org, &format!("/v1/orgs/{org}/members/{user}"), writes)
        .await?;
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
    let (access, target) = access_and_member(&core, &org, &caller, Action::ReadOrg, &user).await?;
    let target = target.ok_or(CoreError::NotFound)?;
    // Anyone may leave; removing someone else needs the role for theirs.
    let leaving = user == caller.user_id;
    if !leaving && !allows(access.member.value.role, action_for(Some(target.value.role), None)) {
        return Err(CoreError::Forbidden);
    }
    let change = Write::Delete {
        key: target.key.clone(),
        expected_version: Some(target.version),
    };
    let delta = owner_delta(Some(target.value.role), None);
    let writes = guarded(&access, change, &target.key, delta)?;
    core.commit(&caller, &org, &format!("/v1/orgs/{org}/members/{user}"), writes)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
