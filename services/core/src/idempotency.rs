//! `Idempotency-Key` on every POST: a client that retries a create it is unsure of gets the
//! first answer again rather than a second resource.
//!
//! The first request with a key takes a lease on it (a conditional write: of any number at once,
//! one wins) and runs; a 2xx answer is stored for 24 hours and replayed, marked
//! `Idempotent-Replayed: true`, to every later request with the same key and the same request
//! (route and body, by SHA-256). The same key with another request is refused (422); while the
//! first is still running, 409. A 4xx frees the key, so a refused request can be corrected and
//! retried under it; a 5xx keeps it until the lease ends, as its write may have happened. Keys belong to the caller: the record is kept under their user id,
//! so one client's key never reaches another's response. A stored answer from a route under an
//! organisation is sealed with that organisation's key, as the document it may hold, and is
//! replayed only while the caller is still a member of it.
//!
//! A lease lasts the edge's request timeout and a margin: the edge has cancelled the request by
//! then, so no two run at once under one key. The write a request makes marks its key done in
//! the same transaction ([`Lease::done`]), so a write whose answer was lost (a store that did
//! not answer, core stopping) is never made twice: a retry is sent to what it made (303 See
//! Other, RFC 9110 §15.4.4). A request that wrote nothing leaves a lease that ends on its own.

use aws_lc_rs::digest;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use rampart_kernel::{Problem, ProblemType, now_unix};
use rampart_store::{Key, StoreError, Table, Write};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::caller::Caller;
use crate::error::CoreError;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a stored answer is replayed.
pub const KEPT_SECS: i64 = 24 * 3600;
/// The headers of an answer that are stored with it.
const STORED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];
/// Longest answer body stored; core's create answers are far smaller than the document limit.
const MAX_STORED_BODY: usize = 2 * 1024 * 1024;

/// A key's record: leased while its request runs, then the answer.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// SHA-256 of the route and body, hex.
    request: String,
    answer: Option<Answer>,
    /// What the request's write made, set in that write's transaction.
    #[serde(default)]
    done: Option<String>,
}

/// The lease a request holds on its key, which its write marks done.
#[derive(Debug, Clone)]
pub struct Lease {
    record: Key,
    request: String,
    version: u64,
}

impl Lease {
    /// The write that marks the key done, having made `target`: committed with the request's own
    /// writes, so a retry finds it even when the answer was lost. Refused, with them, if the
    /// lease has ended and another request may hold the key.
    pub fn done(&self, target: &str) -> Result<Write, CoreError> {
        let record = Record {
            request: self.request.clone(),
            answer: None,
            done: Some(target.to_owned()),
        };
        let mut item = crate::records::new_item(self.record.clone(), &record)?.expiring_at(now_unix() + KEPT_SECS);
        item.version = self.version;
        Ok(Write::Put(item))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64; sealed with the organisation's key when `org` is set.
    body: String,
    org: Option<String>,
}

fn refused(detail: &str) -> Problem {
    Problem::new(ProblemType::MalformedRequest, detail).with_field("/header/idempotency-key", detail)
}

/// The key a request carries: 1 to 255 visible ASCII characters.
fn key_of(request: &Request) -> Result<Option<String>, Problem> {
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let valid = |key: &[u8]| (1..=255).contains(&key.len()) && key.iter().all(|b| b.is_ascii_graphic());
    if !valid(raw.as_bytes()) {
        return Err(refused("must be 1 to 255 visible ASCII characters"));
    }
    Ok(raw.to_str().ok().map(str::to_owned))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What makes two requests the same: the path and the body.
fn fingerprint(path: &str, body: &[u8]) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(&(path.len() as u64).to_be_bytes());
    context.update(path.as_bytes());
    context.update(body);
    hex(context.finish().as_ref())
}

/// The caller's record of `key`. The key is hashed, so no client text becomes a sort key.
fn record_key(caller: &Caller, key: &str) -> Key {
    Key::new(
        format!("idem#{}", caller.user_id),
        hex(digest::digest(&digest::SHA256, key.as_bytes()).as_ref()),
    )
}

/// The sealing context of a stored answer: bound to the caller and the key.
fn context(record: &Key) -> [(&str, &str); 3] {
    [
        ("purpose", "idempotent-answer"),
        ("caller", record.pk.as_str()),
        ("key", record.sk.as_str()),
    ]
}

/// In front of every POST, inside the guard (which gives the [`Caller`]).
pub async fn layer(State(core): State<Core>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    match run(&core, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run(core: &Core, request: Request, next: Next) -> Result<Response, CoreError> {
    let Some(key) = key_of(&request)? else {
        return Ok(next.run(request).await);
    };
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(Problem::internal)?;
    let (mut parts, body) = request.into_parts();
    // The edge has already bounded the body to the largest any route takes.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| Problem::of(ProblemType::PayloadTooLarge))?;
    let path = parts.uri.path().to_owned();
    let request_hash = fingerprint(&path, &body);
    let record_key = record_key(&caller, &key);
    let lease = Record {
        request: request_hash.clone(),
        answer: None,
        done: None,
    };
    let leased =
        crate::records::new_item(record_key.clone(), &lease)?.expiring_at(now_unix() + core.idempotency_lease_secs);
    let version = match core.store.put(Table::Core, &leased).await {
        Ok(version) => version,
        Err(StoreError::ConditionFailed) => return earlier(core, &caller, &record_key, &request_hash).await,
        Err(error) => return Err(error.into()),
    };
    let lease = Lease {
        record: record_key,
        request: request_hash,
        version,
    };
    // The handler's commit marks the key done through the caller it is given.
    if let Some(caller) = parts.extensions.get_mut::<Caller>() {
        caller.lease = Some(lease.clone());
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if response.status().is_server_error() {
        // The write may have happened, and then marked the key done; if not, the lease stays
        // until it ends, so a retry meanwhile is told to wait (409).
        return Ok(response);
    }
    if !response.status().is_success() {
        release(core, &lease).await;
        return Ok(response);
    }
    keep(core, &lease, &path, response).await
}

/// Frees a key whose request did not succeed, so it can be retried; a key marked done stays.
async fn release(core: &Core, lease: &Lease) {
    if let Err(error) = core.store.delete(Table::Core, &lease.record, Some(lease.version)).await {
        tracing::warn!(%error, "an idempotency lease could not be freed; it ends on its own");
    }
}

/// Stores a successful answer under its key, and returns it however that went: the write is
/// made and its key marked done, so a retry is answered either way.
async fn keep(core: &Core, lease: &Lease, path: &str, response: Response) -> Result<Response, CoreError> {
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_STORED_BODY).await else {
        release(core, lease).await;
        return Err(Problem::internal().into());
    };
    if let Err(error) = store_answer(core, lease, path, &parts, &body).await {
        tracing::warn!(?error, "an answer could not be kept for its idempotency key");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Replaces the request's own record (its lease, or the lease its write marked done) with the
/// answer, sealed with the organisation's key under an organisation.
async fn store_answer(
    core: &Core,
    lease: &Lease,
    path: &str,
    parts: &http::response::Parts,
    body: &Bytes,
) -> Result<(), CoreError> {
    let record = &lease.record;
    let org = crate::audit::org_in(path);
    let stored_body = match &org {
        Some(org) => core.keys.seal(org, &context(record), body).await?,
        None => body.to_vec(),
    };
    let answer = Answer {
        status: parts.status.as_u16(),
        headers: STORED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: STANDARD.encode(stored_body),
        org,
    };
    let stored = crate::records::read::<Record>(&*core.store, record).await?;
    let Some(stored) = stored.filter(|stored| stored.value.request == lease.request) else {
        tracing::warn!("an idempotency lease ended before its answer was kept");
        return Ok(());
    };
    let mut item = crate::records::new_item(
        record.clone(),
        &Record {
            request: lease.request.clone(),
            answer: Some(answer),
            done: stored.value.done,
        },
    )?
    .expiring_at(now_unix() + KEPT_SECS);
    item.version = stored.version;
    core.store.put(Table::Core, &item).await?;
    Ok(())
}

/// The answer to a request whose key is taken: the stored answer, 409 while the first request
/// runs, 422 when the key was used for another request. An answer from a route under an
/// organisation is replayed only to a caller still a member of it: one removed since gets 404.
async fn earlier(core: &Core, caller: &Caller, record_key: &Key, request: &str) -> Result<Response, CoreError> {
    let Some(stored) = crate::records::read::<Record>(&*core.store, record_key).await? else {
        // Freed or expired between the two reads: as if still running; a retry goes through.
        return Err(in_flight());
    };
    let record = stored.value;
    if !constant_time_eq(record.request.as_bytes(), request.as_bytes()) {
        return Err(Problem::new(
            ProblemType::Validation,
            "This Idempotency-Key was used for another request; use a new key for a new request.",
        )
        .with_field("/header/idempotency-key", "was used for another request")
        .into());
    }
    let Some(answer) = record.answer else {
        return match record.done {
            Some(target) => made(core, caller, &target).await,
            None => Err(in_flight()),
        };
    };
    let body = STANDARD
        .decode(&answer.body)
        .map_err(|e| CoreError::Store(StoreError::Corrupt(e.to_string())))?;
    let body = match &answer.org {
        Some(org) => {
            crate::orgs::member_for(core, org, caller, crate::permissions::Action::ReadOrg).await?;
            core.keys.open(org, &context(record_key), &body).await?.to_vec()
        }
        None => body,
    };
    let mut response = Response::new(Body::from(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

/// The answer to a retry of a request whose write happened but whose answer was not kept: 303
/// See Other to what it made, for a caller still a member of its organisation.
async fn made(core: &Core, caller: &Caller, target: &str) -> Result<Response, CoreError> {
    let org = crate::audit::org_in(target)
        .ok_or_else(|| StoreError::Corrupt("an idempotency record names no organisation".into()))?;
    crate::orgs::member_for(core, &org, caller, crate::permissions::Action::ReadOrg).await?;
    let location = HeaderValue::from_str(target).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

fn in_flight() -> CoreError {
    Problem::new(
        ProblemType::Conflict,
        "A request with this Idempotency-Key is still running; retry in a moment.",
    )
    .with_retry_after(1)
    .into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_path_from_body() {
        assert_ne!(fingerprint("/v1/orgs", b"{}"), fingerprint("/v1/orgs{}", b""));
        assert_eq!(fingerprint("/v1/orgs", b"{}"), fingerprint("/v1/orgs", b"{}"));
    }

    #[test]
    fn keys_are_visible_ascii_of_1_to_255() {
        let with = |value: &[u8]| {
            let request = http::Request::builder()
                .header(IDEMPOTENCY_KEY, HeaderValue::from_bytes(value).expect("header"))
                .body(Body::empty())
                .expect("request");
            key_of(&request)
        };
        assert_eq!(with(b"3f2a-retry").expect("valid"), Some("3f2a-retry".to_owned()));
        for bad in [&b""[..], b"has space", &[b'a'; 256], b"tab\there"] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
    }
}
