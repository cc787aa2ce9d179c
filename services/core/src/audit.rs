//! The organisation's audit log: every write, allowed or refused, with who asked, what, on
//! which resource, how it ended, and the request and trace ids that lead to its logs and spans.
//!
//! An allowed write's record is stored in the same transaction as the write ([`Core::commit`]),
//! so neither is ever stored without the other. A refused write (4xx) is recorded after the
//! answer is decided, by the [`guard`] every organisation route passes through, in the log of
//! the organisation named in the path if it exists: a non-member probing an organisation shows
//! up in its log. Records live in their own partition, `audit#<org>`, newest first, and expire
//! `audit.retention_days` after the event, so an organisation's log outlives its deletion (its
//! records hold ids and paths, nothing sealed) until then.

use axum::Json as JsonBody;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use rampart_kernel::now_unix;
use rampart_store::{Item, Key, Lookup, Table, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::orgs::{member_for, org_id};
use crate::pages::{Listing, PageQuery};
use crate::permissions::Action;
use crate::records;

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done.
    Allowed,
    /// Refused for who asked: not a member (404) or a role that may not (403).
    Denied,
    /// Refused for what was asked: bad input, a rule of the organisation, a stale ETag.
    Refused,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// The user id that asked.
    pub actor: String,
    /// The method and route, e.g. `PATCH /v1/orgs/{org}/members/{user}`.
    pub action: String,
    /// The resource's path.
    pub target: String,
    pub outcome: Outcome,
    /// The answer's status, for a refused write.
    pub status: Option<u16>,
    pub request_id: String,
    /// The W3C trace id of the request, when it was traced.
    pub trace_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub items: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

fn partition(org: &str) -> String {
    format!("audit#{org}")
}

impl Core {
    /// The record of `caller`'s request on `target` in `org`, as an item that expires after
    /// the audit retention. Sort keys count down from the largest time, so a log reads newest
    /// first; the random tail keeps two records of one microsecond apart.
    fn audit_item(
        &self,
        caller: &Caller,
        org: &str,
        target: &str,
        (outcome, status): (Outcome, Option<u16>),
    ) -> Result<Item, CoreError> {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        let id = uuid::Uuid::new_v4().simple().to_string();
        let record = AuditRecord {
            id: id.clone(),
            at: now_unix(),
            actor: caller.user_id.clone(),
            action: caller.action.clone(),
            target: target.to_owned(),
            outcome,
            status,
            request_id: caller.request_id.clone(),
            trace_id: caller.trace_id.clone(),
        };
        let key = Key::new(partition(org), format!("{:020}#{id}", u64::MAX - micros));
        Ok(records::new_item(key, &record)?.expiring_at(record.at + self.audit_retention_secs))
    }

    /// Commits `writes`, the allowed change `caller` asked of `target` in `org`, with its
    /// audit record and, for a request with an Idempotency-Key, the key marked done, in one
    /// transaction.
    pub async fn commit(
        &self,
        caller: &Caller,
        org: &str,
        target: &str,
        mut writes: Vec<Write>,
    ) -> Result<(), CoreError> {
        let record = self.audit_item(caller, org, target, (Outcome::Allowed, None))?;
        writes.push(Write::Put(record));
        if let Some(lease) = &caller.lease {
            writes.push(lease.done(target)?);
        }
        self.store.transact(Table::Core, &writes).await?;
        Ok(())
    }

    /// Records a refused write in the log of the organisation it named, if that exists.
    async fn record_refusal(
        &self,
        caller: &Caller,
        org: &str,
        path: &str,
        status: StatusCode,
    ) -> Result<(), CoreError> {
        if records::org(&*self.store, org).await?.is_none() {
            return Ok(());
        }
        let outcome = match status {
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Outcome::Denied,
            _ => Outcome::Refused,
        };
        let record = self.audit_item(caller, org, path, (outcome, Some(status.as_u16())))?;
        self.store.put(Table::Core, &record).await?;
        Ok(())
    }
}

/// The organisation id in a path `/v1/orgs/{org}/…`, if it is one.
pub(crate) fn org_in(path: &str) -> Option<String> {
    let raw = path.strip_prefix("/v1/orgs/")?.split('/').next()?;
    org_id(raw).ok()
}

/// In front of every organisation route: checks the bearer token (core's own check, zero
/// trust) and hands the handler its [`Caller`]; once a write is answered with a 4xx, records
/// the refusal.
pub async fn guard(State(core): State<Core>, route: MatchedPath, mut request: Request, next: Next) -> Response {
    let caller = match Caller::authenticate(&core, request.method(), request.headers(), route.as_str()).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let write = !matches!(*request.method(), Method::GET | Method::HEAD);
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    let status = response.status();
    if write
        && status.is_client_error()
        && let Some(org) = org_in(&path)
        && let Err(error) = core.record_refusal(&caller, &org, &path, status).await
    {
        tracing::warn!(?error, "a refused write could not be audited");
    }
    response
}

#[utoipa::path(get, path = "/v1/orgs/{org}/audit", tag = "audit", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), PageQuery),
    responses((status = 200, body = AuditList, description = "The organisation's audit records, newest first"),
        (status = 400, description = "A limit out of range, or a cursor not of this list", content_type = "application/problem+json"),
        (status = 403, description = "Only owners and admins read the audit log", content_type = "application/problem+json"),
        (status = 404, description = "No such organisation, or not the caller's", content_type = "application/problem+json")))]
pub async fn list(
    State(core): State<Core>,
    caller: Caller,
    Path(org): Path<String>,
    paging: PageQuery,
) -> Result<JsonBody<AuditList>, CoreError> {
    let org = org_id(&org)?;
    member_for(&core, &org, &caller, Action::ReadAudit).await?;
    let listing = Listing {
        name: &["audit", &org],
        lookup: Lookup::Table,
        pk: &partition(&org),
        prefix: "",
    };
    let (records, next_cursor) = core.page_of::<AuditRecord>(listing, &paging).await?;
    Ok(JsonBody(AuditList {
        items: records.into_iter().map(|record| record.value).collect(),
        next_cursor,
    }))
}
