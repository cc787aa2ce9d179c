//! Documents: a title, a text body of up to 256 KiB, tags and a status. The title and the body
//! are sealed with the organisation's data key, bound to the project, the document, the
//! revision and the field, so neither is ever at rest in plaintext and a sealed value copied to
//! another document or revision does not open. Every answer carries an `ETag`; a change needs
//! `If-Match` with it (428 without, 412 when the document changed since), and a read with
//! `If-None-Match` set to the current one answers 304.

use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rampart_kernel::extract::Json;
use rampart_kernel::{Problem, ProblemType, now_unix};
use rampart_store::{Lookup, StoreError, Write};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;
use crate::orgs::{Access, member_for_with, org_id, path_id, short_text};
use crate::pages::{Listing, PageQuery};
use crate::permissions::Action;
use crate::projects::{project_for, project_id};
use crate::records::{self, Document, Project, Status, Stored};

/// Largest document body, in bytes of UTF-8 text.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest request to a document route: the body as a JSON string, escapes and all, with the
/// other fields. The text itself is held to [`MAX_BODY_BYTES`].
pub const REQUEST_LIMIT_BYTES: usize = 1024 * 1024;
const MAX_TITLE_CHARS: usize = 200;
const MAX_TAGS: usize = 20;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Text, at most 256 KiB.
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub status: Option<Status>,
}

/// A JSON Merge Patch (RFC 7396) of a document: fields left out stay as they are; none of them
/// may be removed (`null`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub body: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Status>)]
    pub status: Option<Option<Status>>,
}

/// A field that was sent, `null` included (`Some(None)`), apart from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(deserializer)?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub project_id: String,
    pub revision: u64,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub created_at: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// A document in a list: everything but its body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentSummary {
    pub id: String,
    pub revision: u64,
    pub title: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentList {
    pub items: Vec<DocumentSummary>,
    pub next_cursor: Option<String>,
}

/// The fields of a document, checked.
struct Fields {
    title: String,
    body: String,
    tags: Vec<String>,
    status: Status,
}

fn title(raw: &str) -> Result<String, Problem> {
    short_text("/title", raw, MAX_TITLE_CHARS)
}

fn body(raw: String) -> Result<String, Problem> {
    if raw.len() > MAX_BODY_BYTES {
        return Err(Problem::invalid_field("/body", "must be at most 256 KiB of text"));
    }
    Ok(raw)
}

fn tags(raw: Vec<String>) -> Result<Vec<String>, Problem> {
    let valid = |tag: &String| {
        (1..=40).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if raw.len() > MAX_TAGS {
        return Err(Problem::invalid_field("/tags", format!("at most {MAX_TAGS} tags")));
    }
    if let Some(index) = raw.iter().position(|tag| !valid(tag)) {
        return Err(Problem::invalid_field(
            format!("/tags/{index}"),
            "a tag is 1 to 40 characters of a-z, 0-9 and -",
        ));
    }
    Ok(raw)
}

fn context<'a>(project: &'a str, document: &'a str, revision: &'a str, field: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("project", project),
        ("document", document),
        ("revision", revision),
        ("field", field),
    ]
}

/// The document's id in a path.
fn document_id(raw: &str) -> Result<String, CoreError> {
    path_id(raw, "document", "not a document id")
}

/// A document, sealed, as it is written: the record, and its body for the item's blob.
struct Sealed {
    document: Document,
    body: Vec<u8>,
}

impl Sealed {
    /// The item that writes the document: as new, or in place of `replacing` if that is still
    /// the current version.
    fn into_item(
        self,
        org: &str,
        replacing: Option<&Stored<Document>>,
    ) -> Result<(rampart_store::Item, Document), CoreError> {
        let key = records::document_key(org, &self.document.project_id, &self.document.id);
        let mut item = records::new_item(key, &self.document)?.with_blob(self.body);
        item.version = replacing.map_or(0, |stored| stored.version);
        Ok((item, self.document))
    }
}

/// Seals `fields` as the document's revision.
async fn seal(core: &Core, org: &str, mut document: Document, fields: &Fields) -> Result<Sealed, CoreError> {
    let revision = document.revision.to_string();
    let context = |field| context(&document.project_id, &document.id, &revision, field);
    let title = core.keys.seal(org, &context("title"), fields.title.as_bytes()).await?;
    let body = core.keys.seal(org, &context("body"), fields.body.as_bytes()).await?;
    document.title = STANDARD.encode(title);
    document.earlier_body = None;
    document.tags = fields.tags.clone();
    document.status = fields.status;
    Ok(Sealed { document, body })
}

fn corrupt(error: impl std::fmt::Display) -> CoreError {
    CoreError::Store(StoreError::Corrupt(error.to_string()))
}

/// Opens one sealed field of the document.
async fn open(core: &Core, org: &str, document: &Document, field: &str, sealed: &[u8]) -> Result<String, CoreError> {
    let revision = document.revision.to_string();
    let context = context(&document.project_id, &document.id, &revision, field);
    let mut plaintext = core.keys.open(org, &context, sealed).await?;
    String::from_utf8(std::mem::take(&mut *plaintext)).map_err(corrupt)
}

async fn open_title(core: &Core, org: &str, document: &Document) -> Result<String, CoreError> {
    let sealed = STANDARD.decode(&document.title).map_err(corrupt)?;
    open(core, org, document, "title", &sealed).await
}

/// The stored document's fields, opened. Its sealed body is the item's blob or, for a revision
/// written before bodies moved there, the record's base64 `body`.
async fn fields(core: &Core, org: &str, stored: &Stored<Document>) -> Result<Fields, CoreError> {
    let document = &stored.value;
    let body = match (&stored.blob, &document.earlier_body) {
        (Some(sealed), None) => open(core, org, document, "body", sealed).await?,
        (None, Some(earlier)) => {
            let sealed = STANDARD.decode(earlier).map_err(corrupt)?;
            open(core, org, document, "body", &sealed).await?
        }
        _ => return Err(corrupt("a document needs exactly one sealed body")),
    };
    Ok(Fields {
        title: open_title(core, org, document).await?,
        body,
        tags: document.tags.clone(),
        status: document.status,
    })
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version `If-Match` names: 428 without one, 412 unless it names `version`, in a list of
/// ETags or as `*` (any current version: the document must still exist, and a change that
/// lands between reading and writing it still loses with 412), as RFC 9110 reads it.
fn if_match(headers: &HeaderMap, version: u64) -> Result<(), CoreError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(Problem::new(
            ProblemType::PreconditionRequired,
            "Send If-Match with the document's ETag, so that another writer's change is not lost.",
        )
        .into());
    };
    let current = etag(version);
    let matches = value
        .to_str()
        .is_ok_and(|list| list.split(',').map(str::trim).any(|tag| tag == "*" || tag == current));
    if matches { Ok(()) } else { Err(stale()) }
}

fn stale() -> CoreError {
    Problem::new(
        ProblemType::PreconditionFailed,
        "The document changed since that ETag; read it again.",
    )
    .into()
}

fn answer(status: StatusCode, version: u64, view: DocumentView, location: Option<String>) -> Response {
    let mut response = (status, JsonBody(view)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn view(document: &Document, fields: Fields) -> DocumentView {
    DocumentView {
        id: document.id.clone(),
        project_id: document.project_id.clone(),
        revision: document.revision,
        title: fields.title,
        body: fields.body,
        tags: fields.tags,
        status: fields.status,
        created_at: document.created_at,
        updated_at: document.updated_at,
        updated_by: document.updated_by.clone(),
    }
}

/// Writes `document` in place of what was read (or as new), conditional on everything read,
/// with the audit record of `caller`'s change: another writer's change in between is a 412.
async fn write(
    core: &Core,
    caller: &Caller,
    (org, access, project): (&str, &Access, &Stored<Project>),
    item: rampart_store::Item,
) -> Result<u64, CoreError> {
    let version = item.version + 1;
    let target = document_path(org, &project.value.id, &item.key);
    let mut writes = vec![Write::Put(item)];
    writes.extend(access.checks(&[]));
    writes.push(Write::Check {
        key: project.key.clone(),
        version: project.version,
    });
    commit_or_stale(core, caller, org, &target, writes)
        .await
        .map(|()| version)
}

/// The path of the document stored at `key`.
fn document_path(org: &str, project: &str, key: &rampart_store::Key) -> String {
    let document = key.sk.rsplit('#').next().unwrap_or_default();
    format!("/v1/orgs/{org}/projects/{project}/documents/{document}")
}

/// Commits a document change: another writer's change in between (a failed condition) is a
/// 412, as the ETag the caller sent is no longer current.
async fn commit_or_stale(
    core: &Core,
    caller: &Caller,
    org: &str,
    target: &str,
    writes: Vec<Write>,
) -> Result<(), CoreError> {
    match core.commit(caller, org, target, writes).await {
        Err(CoreError::Store(StoreError::ConditionFailed)) => Err(stale()),
        other => other,
    }
}

type DocPath = Path<(String, String, String)>;

async fn target(
    core: &Core,
    caller: &Caller,
    path: (String, String, String),
    action: Action,
) -> Result<(String, Access, Stored<Project>, Stored<Document>), CoreError> {
    let (org, project, document) = (org_id(&path.0)?, project_id(&path.1)?, document_id(&path.2)?);
    // The member, the organisation, the project and the document: one store call.
    let keys = [
        records::project_key(&org, &project),
        records::document_key(&org, &project, &document),
    ];
    let (access, items) = member_for_with(core, &org, caller, action, &keys).await?;
    let [Some(project), Some(document)] = <[Option<rampart_store::Item>; 2]>::try_from(items).unwrap_or_default()
    else {
        return Err(CoreError::NotFound);
    };
    Ok((org, access, records::decode(project)?, records::decode(document)?))
}

#[utoipa::path(post, path = "/v1/orgs/{org}/projects/{project}/documents", tag = "documents", request_body = DocumentInput, security(("bearer" = [])),
    params(("idempotency-key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer again (marked idempotent-replayed: true); kept 24 hours"), ("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id")),
    responses((status = 201, body = DocumentView, headers(("etag" = String, description = "The document's version"))),
        (status = 422, description = "Invalid input, or an Idempotency-Key used for another request", content_type = "application/problem+json"),
        (status = 403, description = "Viewers do not write", content_type = "application/problem+json"),
        (status = 404, description = "No such project, or not the caller's", content_type = "application/problem+json"),
        (status = 303, description = "A retry with the Idempotency-Key of a request that wrote but whose answer was lost: what it made is at Location", headers(("location" = String, description = "What the first request made"))),
        (status = 409, description = "The request with this Idempotency-Key is still running", content_type = "application/problem+json"),
        (status = 412, description = "The project changed while this was written", content_type = "application/problem+json")))]
pub async fn create(
    State(core): State<Core>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
    Json(request): Json<DocumentInput>,
) -> Result<Response, CoreError> {
    let (org, project) = (org_id(&org)?, project_id(&project)?);
    let fields = Fields {
        title: title(&request.title)?,
        body: body(request.body)?,
        tags: tags(request.tags)?,
        status: request.status.unwrap_or(Status::Draft),
    };
    let (access, stored_project) = project_for(&core, &caller, (&org, &project), Action::WriteContent).await?;
    let now = now_unix();
    let document = Document {
        id: uuid::Uuid::new_v4().hyphenated().to_string(),
        project_id: project.clone(),
        revision: 1,
        title: String::new(),
        earlier_body: None,
        tags: Vec::new(),
        status: fields.status,
        created_at: now,
        updated_at: now,
        updated_by: caller.user_id.clone(),
    };
    let (item, document) = seal(&core, &org, document, &fields).await?.into_item(&org, None)?;
    let version = write(&core, &caller, (&org, &access, &stored_project), item).await?;
    let location = format!("/v1/orgs/{org}/projects/{project}/documents/{}", document.id);
    Ok(answer(
        StatusCode::CREATED,
        version,
        view(&document, fields),
        Some(location),
    ))
}

#[utoipa::path(get, path = "/v1/orgs/{org}/projects/{project}/documents", tag = "documents", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id"), PageQuery),
    responses((status = 200, body = DocumentList, description = "The documents without their bodies, by id"),
        (status = 400, description = "A limit out of range, or a cursor not of this list", content_type = "application/problem+json"),
        (status = 404, description = "No such project, or not the caller's", content_type = "application/problem+json")))]
pub async fn list(
    State(core): State<Core>,
    caller: Caller,
    Path((org, project)): Path<(String, String)>,
    paging: PageQuery,
) -> Result<JsonBody<DocumentList>, CoreError> {
    let (org, project) = (org_id(&org)?, project_id(&project)?);
    project_for(&core, &caller, (&org, &project), Action::ReadContent).await?;
    let listing = Listing {
        name: &["documents", &org, &project],
        lookup: Lookup::Table,
        pk: &records::partition(&org),
        prefix: &format!("doc#{project}#"),
    };
    let (documents, next_cursor) = core.page_of::<Document>(listing, &paging).await?;
    let mut items = Vec::new();
    for stored in documents {
        let document = stored.value;
        items.push(DocumentSummary {
            title: open_title(&core, &org, &document).await?,
            id: document.id,
            revision: document.revision,
            tags: document.tags,
            status: document.status,
            updated_at: document.updated_at,
        });
    }
    Ok(JsonBody(DocumentList { items, next_cursor }))
}

#[utoipa::path(get, path = "/v1/orgs/{org}/projects/{project}/documents/{document}", tag = "documents", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id"), ("document" = String, Path, description = "Document id"),
        ("if-none-match" = Option<String>, Header, description = "An ETag the caller holds: 304 if it is still current")),
    responses((status = 200, body = DocumentView, headers(("etag" = String, description = "The document's version"))),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 404, description = "No such document, or not the caller's", content_type = "application/problem+json")))]
pub async fn get(
    State(core): State<Core>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): DocPath,
) -> Result<Response, CoreError> {
    let (org, _, _, stored) = target(&core, &caller, path, Action::ReadContent).await?;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag(stored.version).as_bytes())
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag(stored.version));
        return Ok(response);
    }
    let fields = fields(&core, &org, &stored).await?;
    Ok(answer(
        StatusCode::OK,
        stored.version,
        view(&stored.value, fields),
        None,
    ))
}

/// Writes the next revision of the document with `fields`.
async fn revise(
    core: &Core,
    caller: &Caller,
    (org, access, project, stored): (String, Access, Stored<Project>, Stored<Document>),
    fields: Fields,
) -> Result<Response, CoreError> {
    let next = Document {
        revision: stored.value.revision + 1,
        updated_at: now_unix(),
        updated_by: caller.user_id.clone(),
        ..stored.value.clone()
    };
    let (item, next) = seal(core, &org, next, &fields).await?.into_item(&org, Some(&stored))?;
    let version = write(core, caller, (&org, &access, &project), item).await?;
    Ok(answer(StatusCode::OK, version, view(&next, fields), None))
}

#[utoipa::path(put, path = "/v1/orgs/{org}/projects/{project}/documents/{document}", tag = "documents", request_body = DocumentInput, security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id"), ("document" = String, Path, description = "Document id"),
        ("if-match" = String, Header, description = "The ETag the change was made from; a list of ETags, or * for whatever version is current")),
    responses((status = 200, body = DocumentView, headers(("etag" = String, description = "The new version"))),
        (status = 403, description = "Viewers do not write", content_type = "application/problem+json"),
        (status = 404, description = "No such document, or not the caller's", content_type = "application/problem+json"),
        (status = 412, description = "The document changed since that ETag", content_type = "application/problem+json"),
        (status = 428, description = "No If-Match", content_type = "application/problem+json")))]
pub async fn put(
    State(core): State<Core>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): DocPath,
    Json(request): Json<DocumentInput>,
) -> Result<Response, CoreError> {
    let fields = Fields {
        title: title(&request.title)?,
        body: body(request.body)?,
        tags: tags(request.tags)?,
        status: request.status.unwrap_or(Status::Draft),
    };
    let found = target(&core, &caller, path, Action::WriteContent).await?;
    if_match(&headers, found.3.version)?;
    revise(&core, &caller, found, fields).await
}

#[utoipa::path(patch, path = "/v1/orgs/{org}/projects/{project}/documents/{document}", tag = "documents", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id"), ("document" = String, Path, description = "Document id"),
        ("if-match" = String, Header, description = "The ETag the change was made from; a list of ETags, or * for whatever version is current")),
    request_body(content = DocumentPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, body = DocumentView, headers(("etag" = String, description = "The new version"))),
        (status = 403, description = "Viewers do not write", content_type = "application/problem+json"),
        (status = 404, description = "No such document, or not the caller's", content_type = "application/problem+json"),
        (status = 412, description = "The document changed since that ETag", content_type = "application/problem+json"),
        (status = 428, description = "No If-Match", content_type = "application/problem+json")))]
pub async fn patch(
    State(core): State<Core>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): DocPath,
    Json(request): Json<DocumentPatch>,
) -> Result<Response, CoreError> {
    let required = |field: &str| Problem::invalid_field(format!("/{field}"), "cannot be removed");
    let found = target(&core, &caller, path, Action::WriteContent).await?;
    if_match(&headers, found.3.version)?;
    let mut fields = fields(&core, &found.0, &found.3).await?;
    if let Some(value) = request.title {
        fields.title = title(&value.ok_or_else(|| required("title"))?)?;
    }
    if let Some(value) = request.body {
        fields.body = body(value.ok_or_else(|| required("body"))?)?;
    }
    if let Some(value) = request.tags {
        fields.tags = tags(value.ok_or_else(|| required("tags"))?)?;
    }
    if let Some(value) = request.status {
        fields.status = value.ok_or_else(|| required("status"))?;
    }
    revise(&core, &caller, found, fields).await
}

#[utoipa::path(delete, path = "/v1/orgs/{org}/projects/{project}/documents/{document}", tag = "documents", security(("bearer" = [])),
    params(("org" = String, Path, description = "Organisation id"), ("project" = String, Path, description = "Project id"), ("document" = String, Path, description = "Document id"),
        ("if-match" = String, Header, description = "The ETag the deletion was decided on")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Viewers do not write", content_type = "application/problem+json"),
        (status = 404, description = "No such document, or not the caller's", content_type = "application/problem+json"),
        (status = 412, description = "The document changed since that ETag", content_type = "application/problem+json"),
        (status = 428, description = "No If-Match", content_type = "application/problem+json")))]
pub async fn delete(
    State(core): State<Core>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): DocPath,
) -> Result<StatusCode, CoreError> {
    let (org, access, project, stored) = target(&core, &caller, path, Action::WriteContent).await?;
    if_match(&headers, stored.version)?;
    let mut writes = vec![Write::Delete {
        key: stored.key.clone(),
        expected_version: Some(stored.version),
    }];
    writes.extend(access.checks(&[]));
    let target = document_path(&org, &project.value.id, &stored.key);
    commit_or_stale(&core, &caller, &org, &target, writes).await?;
    Ok(StatusCode::NO_CONTENT)
}
