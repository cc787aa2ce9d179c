//! The item store: the one storage port the repositories of every component are built on.
//!
//! An item is addressed by a partition key and a sort key, carries a JSON body, optional bytes
//! beside it, an optional secondary-index key and an optional expiry, and a version the store
//! manages. Every write is conditional on that version (0 means "must not exist yet"), so
//! read-modify-write is safe under concurrency without locks: of two writers holding the same
//! version, exactly one succeeds and the other gets [`StoreError::ConditionFailed`]. Expired items
//! are invisible to reads and writes even before the backend deletes them (DynamoDB TTL can lag
//! for hours).

pub mod dynamodb;
pub mod sqlite;

pub use dynamodb::DynamoDbStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;

use rampart_kernel::health::ReadinessProbe;

/// The logical tables of `schema/platform.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Sessions, refresh-token hashes, throttling counters, revocations.
    Auth,
    /// Append-only security audit events.
    Audit,
    /// Core's orgs, projects and documents.
    Core,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Auth, Table::Audit, Table::Core];

    /// The name in the schema; the physical name is `<resource_prefix>-<logical>`.
    pub fn logical(self) -> &'static str {
        match self {
            Table::Auth => "auth",
            Table::Audit => "audit",
            Table::Core => "core",
        }
    }
}

/// Partition and sort key of an item (or of its secondary-index entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    /// Entry in the table's `gsi1` index, for lookups by another key (e.g. sessions by user).
    pub index: Option<Key>,
    pub body: serde_json::Value,
    /// Bytes kept as they are, beside the body (a document's sealed body): in JSON they would be
    /// base64, a third larger, encoded on every write and decoded on every read.
    pub blob: Option<Vec<u8>>,
    /// Unix seconds after which the item no longer exists.
    pub expires_at: Option<i64>,
    /// The version read from the store, 0 for an item not yet written.
    pub version: u64,
}

/// The blob by its length: it can be 256 KiB, and is ciphertext where core writes it.
impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item")
            .field("key", &self.key)
            .field("index", &self.index)
            .field("body", &self.body)
            .field("blob", &self.blob.as_ref().map(|blob| format!("{} bytes", blob.len())))
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish()
    }
}

impl Item {
    /// A new item (version 0: its first write requires that no live item has its key).
    pub fn new(key: Key, body: serde_json::Value) -> Self {
        Self {
            key,
            index: None,
            body,
            blob: None,
            expires_at: None,
            version: 0,
        }
    }

    pub fn with_index(mut self, index: Key) -> Self {
        self.index = Some(index);
        self
    }

    pub fn with_blob(mut self, blob: Vec<u8>) -> Self {
        self.blob = Some(blob);
        self
    }

    pub fn expiring_at(mut self, unix_secs: i64) -> Self {
        self.expires_at = Some(unix_secs);
        self
    }

    fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The version condition did not hold: another writer got there first, or the item exists.
    #[error("the item was changed by another writer or already exists")]
    ConditionFailed,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
    /// A request no adapter can carry out as asked (a programming error, not bad data).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Reads live items.
#[async_trait::async_trait]
pub trait ItemGet: Send + Sync {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>>;

    /// The live items at up to [`MAX_GET_MANY`] distinct `keys`, in their order (`None` where
    /// there is none), read consistently in one call: what a request needs, in one round trip.
    async fn get_many(&self, table: Table, keys: &[Key]) -> Result<Vec<Option<Item>>>;
}

/// Most keys one `get_many` reads: DynamoDB's `BatchGetItem` limit.
pub const MAX_GET_MANY: usize = 100;

/// Refuses what no adapter reads in one call: too many keys, or one twice.
fn check_get_many(keys: &[Key]) -> Result<()> {
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    if keys.len() > MAX_GET_MANY || distinct.len() != keys.len() {
        return Err(StoreError::Invalid(format!(
            "get_many reads up to {MAX_GET_MANY} distinct keys, not {} ({} distinct)",
            keys.len(),
            distinct.len()
        )));
    }
    Ok(())
}

/// Writes an item if the stored version still equals `item.version`; returns the new version.
#[async_trait::async_trait]
pub trait ItemPut: Send + Sync {
    async fn put(&self, table: Table, item: &Item) -> Result<u64>;
}

/// Which index a query reads: the table's own keys, or those of its `gsi1` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Table,
    Index,
}

/// Which sort keys of a partition a query reads: those starting with `prefix` (all for an empty
/// one) and, for the next page of a list, sorting strictly after `after`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SortRange<'a> {
    pub prefix: &'a str,
    pub after: Option<&'a str>,
}

impl<'a> SortRange<'a> {
    pub fn prefix(prefix: &'a str) -> Self {
        Self { prefix, after: None }
    }

    /// Whether `sk` is in the range.
    pub fn contains(&self, sk: &str) -> bool {
        sk.starts_with(self.prefix) && self.after.is_none_or(|after| sk > after)
    }
}

/// Lists live items of one partition, in sort-key order.
#[async_trait::async_trait]
pub trait ItemQuery: Send + Sync {
    /// At most `limit` live items of partition `pk` of `lookup` whose sort keys are in `range`.
    async fn query_range(
        &self,
        table: Table,
        lookup: Lookup,
        pk: &str,
        range: SortRange<'_>,
        limit: usize,
    ) -> Result<Vec<Item>>;

    /// The items whose sort key starts with `sk_prefix`.
    async fn query(&self, table: Table, pk: &str, sk_prefix: &str, limit: usize) -> Result<Vec<Item>> {
        self.query_range(table, Lookup::Table, pk, SortRange::prefix(sk_prefix), limit)
            .await
    }

    /// Like `query`, over the `gsi1` index keys.
    async fn query_index(&self, table: Table, pk: &str, sk_prefix: &str, limit: usize) -> Result<Vec<Item>> {
        self.query_range(table, Lookup::Index, pk, SortRange::prefix(sk_prefix), limit)
            .await
    }

    /// The items whose sort key sorts strictly after `after_sk`: the next page of a partition
    /// read `limit` items at a time.
    async fn query_after(&self, table: Table, pk: &str, after_sk: &str, limit: usize) -> Result<Vec<Item>> {
        let range = SortRange {
            prefix: "",
            after: Some(after_sk),
        };
        self.query_range(table, Lookup::Table, pk, range, limit).await
    }
}

/// Deletes an item, if `expected_version` is given only while it still has that version.
#[async_trait::async_trait]
pub trait ItemDelete: Send + Sync {
    async fn delete(&self, table: Table, key: &Key, expected_version: Option<u64>) -> Result<()>;
}

/// One write of a transaction ([`ItemTransact`]), with the condition [`ItemPut`] and
/// [`ItemDelete`] would apply to it on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Writes the item if the stored version still equals `item.version` (0: no live item).
    Put(Item),
    /// Deletes the item; with `expected_version`, only while it still has that version.
    Delete { key: Key, expected_version: Option<u64> },
    /// Writes nothing, but requires the item to have `version` (0: no live item), so a write
    /// can depend on an item it does not change (a member change on the last-owner count).
    Check { key: Key, version: u64 },
}

/// Most writes one transaction may hold: DynamoDB's `TransactWriteItems` limit.
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// Several writes to one table, all or none: if any condition fails nothing is written and
/// the answer is [`StoreError::ConditionFailed`]. Each write names a different key.
#[async_trait::async_trait]
pub trait ItemTransact: Send + Sync {
    async fn transact(&self, table: Table, writes: &[Write]) -> Result<()>;
}

/// Refuses what no adapter can do atomically: too many writes, or two on one key.
fn check_transaction(writes: &[Write]) -> Result<()> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
            writes.len()
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for write in writes {
        let key = match write {
            Write::Put(item) => &item.key,
            Write::Delete { key, .. } | Write::Check { key, .. } => key,
        };
        if !keys.insert(key) {
            return Err(StoreError::Invalid(format!("two writes to {key:?} in one transaction")));
        }
    }
    Ok(())
}

/// Whether the store answers for one table.
#[async_trait::async_trait]
pub trait TableHealth: Send + Sync {
    /// `Err` carries the reason for the logs.
    async fn check_table(&self, table: Table) -> std::result::Result<(), String>;
}

/// Every capability; adapters implement the six traits and get this for free.
pub trait ItemStore: ItemGet + ItemPut + ItemQuery + ItemDelete + ItemTransact + TableHealth + std::fmt::Debug {}

impl<T> ItemStore for T where
    T: ItemGet + ItemPut + ItemQuery + ItemDelete + ItemTransact + TableHealth + std::fmt::Debug
{
}

/// `/readyz`'s `store` check on `table`, the one its component uses (core: `Core`, the auth API:
/// `Auth`): on DynamoDB it describes that table, so each role needs `DescribeTable` on its own
/// table only.
pub fn readiness_probe(store: &Arc<dyn ItemStore>, table: Table) -> Arc<dyn ReadinessProbe> {
    Arc::new(StoreProbe {
        store: Arc::clone(store),
        table,
    })
}

struct StoreProbe {
    store: Arc<dyn ItemStore>,
    table: Table,
}

#[async_trait::async_trait]
impl ReadinessProbe for StoreProbe {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> std::result::Result<(), String> {
        self.store.check_table(self.table).await
    }
}

pub(crate) use rampart_kernel::now_unix;

/// How often the embedded store deletes expired items (DynamoDB's TTL takes up to a few days;
/// reads never return an expired item either way).
pub const PURGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How often the embedded store checkpoints its WAL in the background. Short, so that each
/// checkpoint, and the writer's copy of the frames it left, has little to sync: once a second,
/// those syncs and the WAL writes that waited behind them set the PUT's p99
/// (docs/performance.md).
pub const CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// Creates the schema's DynamoDB tables under `prefix`, or finds them: what `rampart bootstrap`
/// runs. Returns their names.
pub async fn provision(aws: &aws_types::SdkConfig, prefix: &str) -> Result<Vec<String>, StoreError> {
    dynamodb::provision::provision_tables(&aws_sdk_dynamodb::Client::new(aws), prefix).await
}

/// The store the settings select: SQLite under `data_dir`, or DynamoDB. Opened inside a tokio
/// runtime, the SQLite store purges expired items every [`PURGE_PERIOD`] and checkpoints every
/// [`CHECKPOINT_PERIOD`].
pub fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<std::sync::Arc<dyn ItemStore>, rampart_kernel::ConfigError> {
    match aws {
        Some(config) => Ok(std::sync::Arc::new(DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(config),
            &settings.resource_prefix,
        ))),
        None => {
            let path = settings.data_file("store.sqlite")?;
            let store = SqliteStore::open(&path)
                .map_err(|e| rampart_kernel::ConfigError::new("data_dir", format!("{}: {e}", path.display())))?;
            if tokio::runtime::Handle::try_current().is_ok() {
                store.purge_expired_every(PURGE_PERIOD);
                store.checkpoint_every(CHECKPOINT_PERIOD);
            }
            Ok(std::sync::Arc::new(store))
        }
    }
}
