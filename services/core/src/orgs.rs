//! Organisations: the tenants. Creating one makes the caller its owner and gives it its own data
//! key; deleting one destroys that key first (crypto-shredding), then its items.

use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use rampart_kernel::extract::Json;
use rampart_kernel::{Problem, now_unix};
use rampart_store::{Item, Key, Lookup, StoreError, Table, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::pages::{Listing, PageQuery};
use crate::permissions::{Action, Role, allows};
use crate::records::{self, Membership, Org, Stored};

/// Longest organisation name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// 1 to 100 characters, no control characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// A JSON Merge Patch (RFC 7396) of an organisation: fields left out stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    #[schema(min_length = 1, max_length = 100)]
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
    pub next_cursor: Option<String>,
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
    short_text(pointer, raw, MAX_NAME_CHARS)
}

/// `raw` trimmed, if 1 to `max_chars` characters without control characters; else a problem
/// naming `pointer`. Names and titles are checked by it.
pub fn short_text(pointer: &str, raw: &str, max_chars: usize) -> Result<String, Problem> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max_chars || text.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            pointer,
            format!("must be 1 to {max_chars} characters, without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// An id core made (a UUID) from the path parameter `parameter`, in its one spelling; else a
/// problem naming the parameter with `detail`.
pub fn path_id(raw: &str, parameter: &str, detail: &str) -> Result<String, CoreError> {
    uuid::Uuid::try_parse(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| Problem::invalid_field(format!("/path/{parameter}"), detail).into())
}

/// The organisation id in a path.
pub fn org_id(raw: &str) -> Result<String, CoreError> {
    path_id(raw, "org", "not an organisation id")
}

/// What a member acting on an organisation read: their membership and the organisation, each
/// with its version, so that the write can be conditional on both (a member demoted, or the
/// organisation marked for deletion, while the request ran makes the write fail).
#[derive(Debug)]
pub struct Access {
    pub member: Stored<Membership>,
    pub org: Stored<Org>,
}

impl Access {
    /// Checks that what was read is unchanged, for each item the change does not itself write.
    pub fn checks(&self, written: &[&Key]) -> Vec<Write> {
        [
            (&self.member.key, self.member.version),
            (&self.org.key, self.org.version),
        ]
        .into_iter()
        .filter(|(key, _)| !written.contains(key))
        .map(|(key, version)| Write::Check {
            key: key.clone(),
            version,
        })
        .collect()
    }
}

/// The caller's membership of `org` and the organisation, if their role allows `action`: 404
/// for a non-member, as if the organisation did not exist, and for one being deleted; 403 for
/// a member whose role does not allow it.
pub async fn member_for(core: &Core, org: &str, caller: &Caller, action: Action) -> Result<Access, CoreError> {
    let (access, _) = access(core, (org, false), caller, action, &[]).await?;
    Ok(access)
}

/// [`member_for`], and the items at `more` (what the request acts on), read in the same store
/// call; they are returned only to a caller whose role allows `action`.
pub async fn member_for_with(
    core: &Core,
    org: &str,
    caller: &Caller,
    action: Action,
    more: &[Key],
) -> Result<(Access, Vec<Option<Item>>), CoreError> {
    access(core, (org, false), caller, action, more).await
}

async fn access(
    core: &Core,
    (org, even_deleting): (&str, bool),
    caller: &Caller,
    action: Action,
    more: &[Key],
) -> Result<(Access, Vec<Option<Item>>), CoreError> {
    let mut keys = vec![records::member_key(org, &caller.user_id), records::org_key(org)];
    keys.extend_from_slice(more);
    let mut items = core.store.get_many(Table::Core, &keys).await?.into_iter();
    let member: Stored<Membership> = items
        .next()
        .flatten()
        .map(records::decode)
        .transpose()?
        .ok_or(CoreError::NotFound)?;
    let org: Stored<Org> = items
        .next()
        .flatten()
        .map(records::decode)
        .transpose()?
        .filter(|org: &Stored<Org>| even_deleting || !org.value.deleting)
        .ok_or(CoreError::NotFound)?;
    if allows(member.value.role, action) {
        Ok((Access { member, org }, items.collect()))
    } else {
        Err(CoreError::Forbidden)
    }
}

#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", request_body = CreateOrg, security(("bearer" = [])),
    params(("idempotency-key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer again (marked idempotent-replayed: true); kept 24 hours")),
    responses((status = 201, body = OrgView, description = "Created; the caller is its owner"),
        (status = 422, description = "Invalid name, or an Idempotency-Key used for another request", content_type = "application/problem+json"),
        (status = 303, description = "A retry with the Idempotency-Key of a request that wrote but whose answer was lost: what it made is at Location", headers(("location" = String, description = "What the first request made"))),
        (status = 409, description = "The caller already belongs to 100 organisations, or the request with this Idempotency-Key is still running", content_type = "application/problem+json")))]
pub async fn create(
    State(core): State<Core>,
    caller: Caller,
    Json(request): Json<CreateOrg>,
) -> Result<Response, CoreError> {
    let name = name("/name", &request.name)?;
    if records::orgs_of(&*core.store, &caller.user_id).await?.len() >= records::MAX_ORGS_PER_USER {
        return Err(CoreError::Conflict(
            "You belong to 100 organisations, the most one user may.",
        ));
    }
    let org = Org {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        name,
        created_at: now_unix(),
        created_by: caller.user_id.clone(),
        owners: 1,
        deleting: false,
    };
    let owner = Membership {
        user_id: caller.user_id.clone(),
        role: Role::Owner,
        added_at: org.created_at,
    };
    // The key first: an organisation never exists without one.
    core.keys.create(&org.id).await?;
    let writes = vec![
        Write::Put(records::new_org_item(&org)?),
        Write::Put(records::new_member_item(&org.id, &owner)?),
    ];
    let location = format!("/v1/orgs/{}", org.id);
    if let Err(error) = core.commit(&caller, &org.id, &location, writes).await {
        // A store that did not answer may have written the organisation, which then needs its
        // key: only a transaction known to have written nothing takes the key with it.
        if !matches!(error, CoreError::Store(StoreError::Unavailable(_)))
            && let Err(shred) = core.keys.shred(&org.id).await
        {
            tracing::warn!(%shred, "the key of an organisation that was not created is left");
        }
        return Err(error);
    }
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        JsonBody(view(&org, Role::Owner)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = OrgList, description = "The organisations the caller belongs to"),
        (status = 400, description = "A limit out of range, or a cursor not of this list", content_type = "application/problem+json")))]
pub async fn list(State(core): State<Core>, caller: Caller, paging: PageQuery) -> Result<JsonBody<OrgList>, CoreError> {
    // The user's memberships, through the index (eventually consistent on DynamoDB).
    let listing = Listing {
        name: &["orgs", &caller.user_id],
        lookup: Lookup::Index,
        pk: &format!("user#{}", caller.user_id),
        prefix: "org#",
    };
    let (memberships, next_cursor) = core.page_of::<Membership>(listing, &paging).await?;
    let orgs: Vec<&str> = memberships
        .iter()
        .filter_map(|membership| membership.key.pk.strip_prefix("org#"))
        .collect();
    let mut items = Vec::new();
    // Each membership and its organisation read again, consistently, a store call per 50: a
    // membership removed this moment, or an organisation being deleted, is skipped.
    for chunk in orgs.chunks(rampart_store::MAX_GET_MANY / 2) {
        let keys: Vec<Key> = chunk
            .iter()
            .flat_map(|org| [records::member_key(org, &caller.user_id), records::org_key(org)])
            .collect();
        let mut found = core.store.get_many(Table::Core, &keys).await?.into_iter();
        while let (Some(membership), Some(profile)) = (found.next(), found.next()) {
            let (Some(membership), Some(profile)) = (membership, profile) else {
                continue;
            };
            let membership: Stored<Membership> = records::decode(membership)?;
            let profile: Stored<Org> = records::decode(profile)?;
            if !profile.value.deleting {
                items.push(view(&profile.value, membership.value.role));
            }
        }
    }
    Ok(JsonBody(OrgList { items, next_cursor }))
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
    let access = member_for(&core, &org, &caller, Action::ReadOrg).await?;
    Ok(JsonBody(view(&access.org.value, access.member.value.role)))
}

#[utoipa::path(patch, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    request_body(content = PatchOrg, content_type = "application/merge-patch+json"),
    responses((status = 200, body = OrgView), (status = 403, description = "Only owners and admins rename", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json"),
        (status = 409, description = "Another change came first", content_type = "application/problem+json")))]
pub async fn patch(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    Json(request): Json<PatchOrg>,
) -> Result<JsonBody<OrgView>, CoreError> {
    let org = org_id(&org)?;
    let access = member_for(&core, &org, &caller, Action::RenameOrg).await?;
    let mut updated = access.org.value.clone();
    if let Some(raw) = &request.name {
        updated.name = name("/name", raw)?;
    }
    let mut writes = vec![Write::Put(access.org.replaced_by(&updated)?)];
    writes.extend(access.checks(&[&access.org.key]));
    core.commit(&caller, &org, &format!("/v1/orgs/{org}"), writes).await?;
    Ok(JsonBody(view(&updated, access.member.value.role)))
}

#[utoipa::path(delete, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id")),
    responses((status = 204, description = "Deleted: its data keys destroyed, then its items"),
        (status = 409, description = "Another change came first", content_type = "application/problem+json"),
        (status = 403, description = "Only owners delete", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn delete(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<StatusCode, CoreError> {
    let org = org_id(&org)?;
    // An owner may repeat a deletion that failed on the way, to finish it.
    let (access, _) = access(&core, (&org, true), &caller, Action::DeleteOrg, &[]).await?;
    // Marked first, conditional on what was read: from here on the organisation answers 404
    // and every membership write, conditional on its version, fails; nothing joins it while it
    // is taken apart. A repeated deletion is audited too.
    let mut writes = Vec::new();
    if !access.org.value.deleting {
        let marked = Org {
            deleting: true,
            ..access.org.value.clone()
        };
        writes.push(Write::Put(access.org.replaced_by(&marked)?));
        writes.extend(access.checks(&[&access.org.key]));
    }
    core.commit(&caller, &org, &format!("/v1/orgs/{org}"), writes).await?;
    // Then the keys: nothing sealed for the organisation opens from here on, whatever copy of
    // the table exists. Then the items, the organisation's and the caller's last. A failure on the way
    // leaves an organisation that answers 404 to everyone but its owners' repeated DELETE.
    core.keys.shred(&org).await?;
    let last = [records::org_key(&org), access.member.key.clone()];
    let mut keys = records::all_keys(&*core.store, &org, "").await?;
    keys.retain(|key| !last.contains(key));
    keys.extend(last);
    for key in keys {
        core.store.delete(Table::Core, &key, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
