//! How organisations and memberships are kept in the core table (single-table design):
//!
//! | Item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | organisation | `org#<org>` | `profile` | |
//! | membership | `org#<org>` | `member#<user>` | `user#<user>` / `org#<org>` |
//! | project | `org#<org>` | `project#<project>` | |
//! | document | `org#<org>` | `doc#<project>#<document>` | |
//! | audit record (`audit`) | `audit#<org>` | `<time counting down>#<id>` | |
//! | data key (`rampart_envelope`) | `tenantkey#<org>` | `v<version>` | |
//!
//! The organisation item counts its owners, and every change to an owner's membership writes
//! that count in the same transaction, conditional on its version: two concurrent demotions of
//! the last two owners cannot both succeed.

use rampart_store::{Item, ItemStore, Key, Lookup, SortRange, StoreError, Table};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::permissions::Role;

/// Most organisations a user belongs to: each has its own data key, which costs a KMS call to
/// make, so one account cannot make them without end.
pub const MAX_ORGS_PER_USER: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    /// How many members are owners: never below one.
    pub owners: u32,
    /// Set first when the organisation is deleted: from then on it answers 404 and takes no
    /// change, and every membership write, conditional on this item's version, fails.
    #[serde(default)]
    pub deleting: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub user_id: String,
    pub role: Role,
    pub added_at: i64,
}

/// A user id as the auth API issues them: 1 to 128 characters of letters, digits, `-` and `_`
/// (so never a key separator).
pub fn is_user_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The partition of an organisation's items.
pub fn partition(org: &str) -> String {
    format!("org#{org}")
}

pub fn org_key(org: &str) -> Key {
    Key::new(partition(org), "profile")
}

pub fn member_key(org: &str, user: &str) -> Key {
    Key::new(partition(org), format!("member#{user}"))
}

/// A record as stored, with the version its next write must name.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub value: T,
    /// The item's bytes beside the record (a document's sealed body).
    pub blob: Option<Vec<u8>>,
    pub version: u64,
    pub key: Key,
}

impl<T: Serialize> Stored<T> {
    /// The item that replaces this record with `value`, if it is still at this version. It has
    /// no blob: a document, whose sealed body is its blob, is written by `documents` alone.
    pub fn replaced_by(&self, value: &T) -> Result<Item, CoreError> {
        let mut item = Item::new(self.key.clone(), to_body(value)?);
        item.version = self.version;
        Ok(item)
    }
}

fn to_body(value: &impl Serialize) -> Result<serde_json::Value, CoreError> {
    serde_json::to_value(value).map_err(|e| CoreError::Store(StoreError::Corrupt(e.to_string())))
}

pub fn decode<T: DeserializeOwned>(item: Item) -> Result<Stored<T>, CoreError> {
    let value = serde_json::from_value(item.body).map_err(|e| CoreError::Store(StoreError::Corrupt(e.to_string())))?;
    Ok(Stored {
        value,
        blob: item.blob,
        version: item.version,
        key: item.key,
    })
}

pub fn new_org_item(org: &Org) -> Result<Item, CoreError> {
    Ok(Item::new(org_key(&org.id), to_body(org)?))
}

pub fn new_member_item(org: &str, member: &Membership) -> Result<Item, CoreError> {
    Ok(Item::new(member_key(org, &member.user_id), to_body(member)?)
        .with_index(Key::new(format!("user#{}", member.user_id), partition(org))))
}

pub async fn org(store: &dyn ItemStore, org: &str) -> Result<Option<Stored<Org>>, CoreError> {
    store.get(Table::Core, &org_key(org)).await?.map(decode).transpose()
}

/// The ids of the organisations `user` belongs to (one more than [`MAX_ORGS_PER_USER`] at most,
/// to tell a full quota).
pub async fn orgs_of(store: &dyn ItemStore, user: &str) -> Result<Vec<String>, CoreError> {
    let entries = store
        .query_index(Table::Core, &format!("user#{user}"), "org#", MAX_ORGS_PER_USER + 1)
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|item| item.key.pk.strip_prefix("org#").map(str::to_owned))
        .collect())
}

/// The keys of every item in the organisation's partition whose sort key starts with
/// `prefix` (all of them for an empty one), for a deletion.
pub async fn all_keys(store: &dyn ItemStore, org: &str, prefix: &str) -> Result<Vec<Key>, CoreError> {
    let mut keys: Vec<Key> = Vec::new();
    loop {
        let range = SortRange {
            prefix,
            after: keys.last().map(|key| key.sk.as_str()),
        };
        let page = store
            .query_range(Table::Core, Lookup::Table, &partition(org), range, 100)
            .await?;
        if page.is_empty() {
            return Ok(keys);
        }
        keys.extend(page.into_iter().map(|item| item.key));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// Where a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
    Archived,
}

/// A document as stored: its title and body sealed with the organisation's data key, bound to
/// the project, the document and this revision. The sealed title is here, base64-encoded; the
/// sealed body is the item's blob ([`Stored::blob`]), as bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub project_id: String,
    /// 1 on creation, one more on every change: part of what the sealed fields are bound to.
    pub revision: u64,
    pub title: String,
    /// The sealed body, base64-encoded, of a revision written before bodies moved to the blob:
    /// read, never written.
    #[serde(default, rename = "body", skip_serializing)]
    pub earlier_body: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
    pub created_at: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

pub fn project_key(org: &str, project: &str) -> Key {
    Key::new(partition(org), format!("project#{project}"))
}

pub fn document_key(org: &str, project: &str, document: &str) -> Key {
    Key::new(partition(org), format!("doc#{project}#{document}"))
}

pub fn new_item<T: Serialize>(key: Key, value: &T) -> Result<Item, CoreError> {
    Ok(Item::new(key, to_body(value)?))
}

pub async fn read<T: DeserializeOwned>(store: &dyn ItemStore, key: &Key) -> Result<Option<Stored<T>>, CoreError> {
    store.get(Table::Core, key).await?.map(decode).transpose()
}

/// Where a page of a list starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    /// The sort key the page starts after; `None` for the first page.
    pub after: Option<String>,
}

/// One page of the records in partition `pk` of `lookup` whose sort keys start with `prefix`,
/// and the sort key the next page starts after, if there are more.
pub async fn page<T: DeserializeOwned>(
    store: &dyn ItemStore,
    lookup: Lookup,
    pk: &str,
    prefix: &str,
    page: &Page,
) -> Result<(Vec<Stored<T>>, Option<String>), CoreError> {
    let range = SortRange {
        prefix,
        after: page.after.as_deref(),
    };
    // One more than asked, to tell whether a next page exists.
    let mut items = store
        .query_range(Table::Core, lookup, pk, range, page.limit + 1)
        .await?;
    let more = items.len() > page.limit;
    items.truncate(page.limit);
    let next = items.last().filter(|_| more).and_then(|item| match lookup {
        Lookup::Table => Some(item.key.sk.clone()),
        Lookup::Index => item.index.as_ref().map(|index| index.sk.clone()),
    });
    Ok((items.into_iter().map(decode).collect::<Result<_, _>>()?, next))
}
