//! The embedded adapter: one SQLite file, one table per logical table, WAL journaling.

mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::{
    Item, ItemDelete, ItemGet, ItemPut, ItemQuery, ItemTransact, Key, Lookup, Result, SortRange, StoreError, Table,
    Write, check_transaction, now_unix,
};

/// One writer and a few readers on one file. WAL journaling lets readers and the writer work at
/// once, each reader on a snapshot.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Writes, on a thread of their own, committed in groups: a commit waits for the disk, and
    /// must not hold up a runtime worker.
    writer: Arc<writer::Writer>,
    /// Reads run on the calling thread: a point read from the page cache takes microseconds,
    /// less than a hop to another thread and back (docs/performance.md), and in WAL mode it never
    /// waits for the writer. One per core, so the runtime's workers seldom wait for each other.
    readers: Arc<[Mutex<Connection>]>,
    path: Arc<PathBuf>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

const COLUMNS: &str = "pk, sk, gsi1pk, gsi1sk, body, expires_at, version, blob";
/// The columns of a table from before items had a blob.
const COLUMNS_BEFORE_BLOBS: &str = "pk, sk, gsi1pk, gsi1sk, body, expires_at, version";

impl SqliteStore {
    /// Opens (creating if needed) the store file; its directory must exist.
    pub fn open(path: &Path) -> Result<Self> {
        let mut writer = Connection::open(path).map_err(unavailable)?;
        // Owner-only before the WAL exists: SQLite gives the WAL and shared-memory files the
        // database file's mode.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(unavailable)?;
        }
        // secure_delete: a deleted row's bytes are overwritten, so what is deleted (a shredded
        // tenant's wrapped keys) does not linger in the file's free pages. (FAST, which leaves
        // freed pages as they were, wrote as many bytes per document PUT: 35.6 against 36 KiB.)
        writer
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;")
            .map_err(unavailable)?;
        // The savepoint each write of a group runs in keeps what it must undo in memory, not in
        // a temporary file.
        writer
            .execute_batch("PRAGMA temp_store = MEMORY;")
            .map_err(unavailable)?;
        create_tables(&mut writer)?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let readers = (0..cores.clamp(2, 16))
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(unavailable)?;
                reader
                    .execute_batch("PRAGMA busy_timeout = 5000;")
                    .map_err(unavailable)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Arc<[_]>>>()?;
        Ok(Self {
            writer: Arc::new(writer::Writer::start(writer)?),
            readers,
            path: Arc::new(path.to_owned()),
        })
    }

    /// Runs `work` on a free reader, on this thread.
    fn read<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A panic mid-read leaves nothing behind (an open read transaction rolls back as it
        // unwinds), so a poisoned reader is still a good one.
        let mut reader = match self.readers.iter().find_map(|reader| reader.try_lock().ok()) {
            Some(reader) => reader,
            None => self.readers[0].lock().unwrap_or_else(PoisonError::into_inner),
        };
        work(&mut reader)
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// Checkpoints the WAL into the database file every `period`, on a connection of its own,
    /// and from then on the writer makes none itself: otherwise the commit that fills the WAL
    /// runs the checkpoint and its fsync, and every write queued behind it waits (the p99 of
    /// the document PUT in docs/performance.md). PASSIVE: it copies what no reader still needs
    /// and waits for nobody.
    ///
    /// Under writes that never pause, that checkpoint never catches up (frames arrive while it
    /// copies), and SQLite starts the WAL over only once all of it is copied; so the writer then
    /// copies the few frames left, between two commits, and the WAL stays the size of one
    /// period's writes instead of growing for as long as the writes go on. The task ends once
    /// the store is dropped.
    pub fn checkpoint_every(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let writer = Arc::downgrade(&self.writer);
        let path = Arc::clone(&self.path);
        tokio::spawn(async move {
            let opened = tokio::task::spawn_blocking(move || Connection::open(&*path).map_err(unavailable)).await;
            let checkpointer = match opened.map_err(unavailable).and_then(|opened| opened) {
                Ok(connection) => Arc::new(Mutex::new(connection)),
                Err(error) => {
                    tracing::warn!(%error, "no checkpointer; the writer checkpoints");
                    return;
                }
            };
            let Some(first) = writer.upgrade() else {
                return;
            };
            // Alone, outside any group's transaction: a pragma is not rolled back with one, so
            // a group that failed to commit would leave the writer with no checkpoints at all.
            let handed_over = first
                .run_alone(|connection| {
                    connection
                        .execute_batch("PRAGMA wal_autocheckpoint = 0")
                        .map_err(unavailable)
                })
                .await;
            drop(first);
            if let Err(error) = handed_over {
                tracing::warn!(%error, "no checkpointer; the writer checkpoints");
                return;
            }
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if writer.strong_count() == 0 {
                    return;
                }
                let checkpointer = Arc::clone(&checkpointer);
                let checkpoint = tokio::task::spawn_blocking(move || {
                    let connection = checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
                    connection
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        .map_err(unavailable)
                });
                if let Err(error) = checkpoint.await.map_err(unavailable).and_then(|done| done) {
                    tracing::warn!(%error, "a checkpoint failed; retried next period");
                }
                let Some(current) = writer.upgrade() else {
                    return;
                };
                let finished = current
                    .run_alone(|connection| {
                        connection
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                            .map_err(unavailable)
                    })
                    .await;
                drop(current);
                if let Err(error) = finished {
                    tracing::warn!(%error, "a checkpoint failed; retried next period");
                }
            }
        })
    }

    /// Purges expired items every `period`, the first a period from now, as DynamoDB's TTL does
    /// on its own, so the file does not grow without end. The task ends once the store is
    /// dropped.
    pub fn purge_expired_every(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let writer = Arc::downgrade(&self.writer);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                match writer.run(purge).await {
                    Ok(removed) => tracing::debug!(removed, "expired items purged"),
                    Err(error) => tracing::warn!(%error, "purging expired items failed; retried next period"),
                }
            }
        })
    }

    /// Deletes expired items (what DynamoDB's TTL does); returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        self.write(purge).await
    }
}

/// Creates each table and its indexes, bringing a table made by an earlier release up to date:
/// its rows are moved out of a `WITHOUT ROWID` table, it gains the `blob` column, and its index
/// keeps only the items that have an index key.
///
/// The `gsi1` index is partial, as DynamoDB's sparse index is: an item without an index key (a
/// document, an audit record) has no entry, so writing one never writes an index page. (A full
/// index rewrote its entry on every update of such an item, a page a document PUT did not need:
/// docs/performance.md.)
///
/// Rows are rowid rows under a unique (pk, sk) index. A `WITHOUT ROWID` table (what earlier
/// releases made) keeps whole rows in its key b-tree, and a lookup that passes a row bigger than
/// a page on its way reads all of that row's overflow pages: tens of page reads for one small
/// read once documents of a few KiB are stored (docs/performance.md).
fn create_tables(connection: &mut Connection) -> Result<()> {
    // Immediate: another connection opening the same file at once waits rather than fails.
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    for table in Table::ALL {
        let name = table.logical();
        let earlier = schema_sql(&transaction, &format!("items_{name}"))?
            .is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
        let full_index = schema_sql(&transaction, &format!("items_{name}_gsi1"))?
            .is_some_and(|sql| !sql.to_ascii_uppercase().contains("WHERE"));
        if earlier {
            transaction
                .execute_batch(&format!(
                    "DROP INDEX items_{name}_gsi1; DROP INDEX items_{name}_expiry;
                     ALTER TABLE items_{name} RENAME TO items_{name}_earlier;"
                ))
                .map_err(unavailable)?;
        } else if full_index {
            transaction
                .execute_batch(&format!("DROP INDEX items_{name}_gsi1"))
                .map_err(unavailable)?;
        }
        transaction
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS items_{name} (
                    pk TEXT NOT NULL, sk TEXT NOT NULL,
                    gsi1pk TEXT, gsi1sk TEXT,
                    body TEXT NOT NULL, expires_at INTEGER, version INTEGER NOT NULL, blob BLOB,
                    PRIMARY KEY (pk, sk)
                );
                CREATE INDEX IF NOT EXISTS items_{name}_gsi1 ON items_{name} (gsi1pk, gsi1sk)
                    WHERE gsi1pk IS NOT NULL;
                CREATE INDEX IF NOT EXISTS items_{name}_expiry ON items_{name} (expires_at)
                    WHERE expires_at IS NOT NULL;"
            ))
            .map_err(unavailable)?;
        let has_blob: bool = transaction
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('items_{name}') WHERE name = 'blob'"),
                [],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        if !has_blob {
            transaction
                .execute_batch(&format!("ALTER TABLE items_{name} ADD COLUMN blob BLOB"))
                .map_err(unavailable)?;
        }
        if earlier {
            transaction
                .execute_batch(&format!(
                    "INSERT INTO items_{name} ({COLUMNS_BEFORE_BLOBS})
                        SELECT {COLUMNS_BEFORE_BLOBS} FROM items_{name}_earlier;
                     DROP TABLE items_{name}_earlier;"
                ))
                .map_err(unavailable)?;
        }
    }
    transaction.commit().map_err(unavailable)
}

/// The `CREATE` statement of the table or index `name`, if there is one.
fn schema_sql(connection: &Connection, name: &str) -> Result<Option<String>> {
    connection
        .query_row("SELECT sql FROM sqlite_schema WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()
        .map_err(unavailable)
}

fn purge(connection: &Connection) -> Result<usize> {
    let now = now_unix();
    let mut removed = 0;
    for table in Table::ALL {
        removed += connection
            .execute(
                &format!(
                    "DELETE FROM items_{} WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                    table.logical()
                ),
                params![now],
            )
            .map_err(unavailable)?;
    }
    Ok(removed)
}

/// A row as read, before its body is parsed: key, index key, body, expiry, version, blob.
type RawRow = (Key, Option<Key>, String, Option<i64>, i64, Option<Vec<u8>>);

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    let index = match (row.get::<_, Option<String>>(2)?, row.get::<_, Option<String>>(3)?) {
        (Some(pk), Some(sk)) => Some(Key { pk, sk }),
        _ => None,
    };
    Ok((
        Key {
            pk: row.get(0)?,
            sk: row.get(1)?,
        },
        index,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn decode(raw: RawRow) -> Result<Item> {
    let (key, index, body, expires_at, version, blob) = raw;
    let body = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let version = u64::try_from(version).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Item {
        key,
        index,
        body,
        blob,
        expires_at,
        version,
    })
}

fn select_live(connection: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Item>> {
    let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
    let rows = statement.query_map(args, row_to_item).map_err(unavailable)?;
    rows.map(|row| row.map_err(unavailable).and_then(decode)).collect()
}

#[async_trait::async_trait]
impl ItemGet for SqliteStore {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>> {
        let mut items = self.get_many(table, std::slice::from_ref(key)).await?;
        Ok(items.pop().flatten())
    }

    /// A point read per key, all in one read transaction: one snapshot.
    async fn get_many(&self, table: Table, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        crate::check_get_many(keys)?;
        let now = now_unix();
        self.read(|connection| {
            let sql = format!(
                "SELECT {COLUMNS} FROM items_{} WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                table.logical()
            );
            let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
            // BEGIN and COMMIT as cached statements: rusqlite's `transaction()` parses both anew
            // on every call, a measurable part of a read.
            connection
                .prepare_cached("BEGIN")
                .and_then(|mut begin| begin.execute([]))
                .map_err(unavailable)?;
            let items = keys
                .iter()
                .map(|key| {
                    let raw = statement
                        .query_row(params![key.pk, key.sk, now], row_to_item)
                        .optional()
                        .map_err(unavailable)?;
                    raw.map(decode).transpose()
                })
                .collect();
            // Ends the read transaction however the reads went; a reader is never left inside one.
            let ended = connection
                .prepare_cached("COMMIT")
                .and_then(|mut commit| commit.execute([]));
            if ended.is_err() && !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            ended.map_err(unavailable)?;
            items
        })
    }
}

#[async_trait::async_trait]
impl ItemPut for SqliteStore {
    async fn put(&self, table: Table, item: &Item) -> Result<u64> {
        let item = item.clone();
        let now = now_unix();
        self.write(move |connection| put_row(connection, table, &item, now))
            .await
    }
}

/// Writes `item` if its version condition holds ([`ItemPut`]); returns the new version.
fn put_row(connection: &Connection, table: Table, item: &Item, now: i64) -> Result<u64> {
    let next = item.version + 1;
    let next_sql = i64::try_from(next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let name = table.logical();
    let (gsi1pk, gsi1sk) = match &item.index {
        Some(index) => (Some(index.pk.as_str()), Some(index.sk.as_str())),
        None => (None, None),
    };
    let body = item.body.to_string();
    // The columns in COLUMNS' order, then the time; an update adds the version it expects.
    let values: [&dyn rusqlite::ToSql; 10] = [
        &item.key.pk,
        &item.key.sk,
        &gsi1pk,
        &gsi1sk,
        &body,
        &item.expires_at,
        &next_sql,
        &item.blob,
        &now,
        &(next_sql - 1),
    ];
    // Version 0 inserts, or replaces an item that has expired but not yet been purged; any
    // other version updates only the live item that still has it.
    let changed = if item.version == 0 {
        let sql = format!(
            "INSERT INTO items_{name} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (pk, sk) DO UPDATE SET
                gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk, body = excluded.body,
                expires_at = excluded.expires_at, version = excluded.version, blob = excluded.blob
             WHERE items_{name}.expires_at IS NOT NULL AND items_{name}.expires_at <= ?9"
        );
        connection
            .prepare_cached(&sql)
            .map_err(unavailable)?
            .execute(&values[..9])
    } else {
        let sql = format!(
            "UPDATE items_{name} SET gsi1pk = ?3, gsi1sk = ?4, body = ?5, expires_at = ?6, version = ?7, blob = ?8
             WHERE pk = ?1 AND sk = ?2 AND version = ?10 AND (expires_at IS NULL OR expires_at > ?9)"
        );
        connection
            .prepare_cached(&sql)
            .map_err(unavailable)?
            .execute(&values[..])
    }
    .map_err(unavailable)?;
    if changed == 1 {
        Ok(next)
    } else {
        Err(StoreError::ConditionFailed)
    }
}

/// Deletes an item, with `expected_version` only while it still has that version.
fn delete_row(connection: &Connection, table: Table, key: &Key, expected_version: Option<u64>) -> Result<()> {
    let name = table.logical();
    let Some(version) = expected_version else {
        connection
            .execute(
                &format!("DELETE FROM items_{name} WHERE pk = ?1 AND sk = ?2"),
                params![key.pk, key.sk],
            )
            .map_err(unavailable)?;
        return Ok(());
    };
    let version = i64::try_from(version).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let removed = connection
        .execute(
            &format!("DELETE FROM items_{name} WHERE pk = ?1 AND sk = ?2 AND version = ?3"),
            params![key.pk, key.sk, version],
        )
        .map_err(unavailable)?;
    if removed == 1 {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

/// Requires the live item at `key` to have `version` (0: no live item).
fn check_row(connection: &Connection, table: Table, key: &Key, version: u64, now: i64) -> Result<()> {
    let stored: Option<i64> = connection
        .query_row(
            &format!(
                "SELECT version FROM items_{} WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                table.logical()
            ),
            params![key.pk, key.sk, now],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    if stored.map_or(0, |v| u64::try_from(v).unwrap_or(u64::MAX)) == version {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

#[async_trait::async_trait]
impl ItemTransact for SqliteStore {
    async fn transact(&self, table: Table, writes: &[Write]) -> Result<()> {
        check_transaction(writes)?;
        let writes = writes.to_vec();
        let now = now_unix();
        // All or nothing: the writer rolls back everything a write did if it returns an error.
        self.write(move |connection| {
            for write in &writes {
                match write {
                    Write::Put(item) => put_row(connection, table, item, now).map(|_| ())?,
                    Write::Delete { key, expected_version } => delete_row(connection, table, key, *expected_version)?,
                    Write::Check { key, version } => check_row(connection, table, key, *version, now)?,
                }
            }
            Ok(())
        })
        .await
    }
}

#[async_trait::async_trait]
impl ItemQuery for SqliteStore {
    async fn query_range(
        &self,
        table: Table,
        lookup: Lookup,
        pk: &str,
        range: SortRange<'_>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let (pk_column, sk_column) = match lookup {
            Lookup::Table => ("pk", "sk"),
            Lookup::Index => ("gsi1pk", "gsi1sk"),
        };
        let now = now_unix();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|connection| {
            // substr() rather than LIKE: sort keys may contain % and _.
            let sql = format!(
                "SELECT {COLUMNS} FROM items_{} WHERE {pk_column} = ?1
                 AND substr({sk_column}, 1, length(?2)) = ?2 AND (?5 IS NULL OR {sk_column} > ?5)
                 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY {sk_column} LIMIT ?4",
                table.logical()
            );
            select_live(connection, &sql, params![pk, range.prefix, now, limit, range.after])
        })
    }
}

#[async_trait::async_trait]
impl ItemDelete for SqliteStore {
    async fn delete(&self, table: Table, key: &Key, expected_version: Option<u64>) -> Result<()> {
        let key = key.clone();
        self.write(move |connection| delete_row(connection, table, &key, expected_version))
            .await
    }
}

#[async_trait::async_trait]
impl crate::TableHealth for SqliteStore {
    async fn check_table(&self, table: Table) -> Result<(), String> {
        let sql = format!("SELECT 1 FROM items_{} LIMIT 1", table.logical());
        self.read(|connection| {
            connection
                .prepare_cached(&sql)
                .and_then(|mut statement| statement.exists([]))
                .map(|_| ())
                .map_err(unavailable)
        })
        .map_err(|e| e.to_string())
    }
}
