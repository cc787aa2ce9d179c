//! The one contract both store adapters must pass: SQLite on a temp file, DynamoDB on moto.

use std::sync::Arc;
use std::time::Duration;

use rampart_store::dynamodb::provision::provision_tables;
use rampart_store::{
    DynamoDbStore, Item, ItemDelete, ItemGet, ItemPut, ItemQuery, ItemStore, Key, Lookup, SortRange, SqliteStore,
    StoreError, Table, Write,
};
use serde_json::json;

fn unique(label: &str) -> String {
    format!("{label}#{}", rampart_testkit::unique_suffix())
}

async fn contract(store: Arc<dyn ItemStore>) {
    versioned_writes_are_conditional(&*store).await;
    blobs_are_kept_byte_for_byte(&*store).await;
    updates_move_the_index_entry_and_the_expiry(&*store).await;
    many_items_are_read_in_one_call_in_order(&*store).await;
    queries_return_live_items_in_sort_order(&*store).await;
    pages_read_a_partition_exactly_once(&*store).await;
    pages_of_a_prefix_stay_within_it(&*store).await;
    expired_items_are_invisible_and_replaceable(&*store).await;
    conditional_delete(&*store).await;
    transactions_write_all_or_nothing(&*store).await;
    concurrent_writers_of_one_version_yield_one_winner(Arc::clone(&store)).await;
    concurrent_transactions_on_one_check_yield_one_winner(store).await;
}

async fn versioned_writes_are_conditional(store: &dyn ItemStore) {
    let key = Key::new(unique("user"), "profile");
    let item = Item::new(key.clone(), json!({"name": "Ada"}));
    assert_eq!(store.put(Table::Auth, &item).await.expect("first write"), 1);
    assert!(
        matches!(store.put(Table::Auth, &item).await, Err(StoreError::ConditionFailed)),
        "second create must fail"
    );

    let mut read = store.get(Table::Auth, &key).await.expect("get").expect("present");
    assert_eq!(read.body, json!({"name": "Ada"}));
    assert_eq!(read.version, 1);
    read.body = json!({"name": "Ada Lovelace"});
    assert_eq!(store.put(Table::Auth, &read).await.expect("update"), 2);
    assert!(
        matches!(store.put(Table::Auth, &read).await, Err(StoreError::ConditionFailed)),
        "stale version must fail"
    );
    let read = store.get(Table::Auth, &key).await.expect("get").expect("present");
    assert_eq!(
        read.body,
        json!({"name": "Ada Lovelace"}),
        "the failed write changed nothing"
    );
    assert!(
        store
            .get(Table::Auth, &Key::new(unique("nobody"), "x"))
            .await
            .expect("get")
            .is_none()
    );
}

/// An item's blob comes back byte for byte from every read, a write without one removes it, and
/// a transaction writes one too.
async fn blobs_are_kept_byte_for_byte(store: &dyn ItemStore) {
    let pk = unique("blob");
    let every_byte: Vec<u8> = (0..=255).cycle().take(4 * 1024 + 28).collect();
    let item = Item::new(Key::new(pk.clone(), "a"), json!({"n": 1})).with_blob(every_byte.clone());
    assert_eq!(store.put(Table::Core, &item).await.expect("put"), 1);
    let read = store.get(Table::Core, &item.key).await.expect("get").expect("present");
    assert_eq!(
        (read.blob.as_deref(), &read.body),
        (Some(&every_byte[..]), &json!({"n": 1}))
    );
    let many = store
        .get_many(Table::Core, std::slice::from_ref(&item.key))
        .await
        .expect("get_many");
    assert_eq!(many[0].as_ref().and_then(|i| i.blob.as_deref()), Some(&every_byte[..]));
    let listed = store.query(Table::Core, &pk, "", 10).await.expect("query");
    assert_eq!(listed[0].blob.as_deref(), Some(&every_byte[..]));

    let other = Item::new(Key::new(pk.clone(), "b"), json!({})).with_blob(vec![0, 1, 0]);
    store
        .transact(Table::Core, &[Write::Put(other.clone())])
        .await
        .expect("transact");
    let read_other = store.get(Table::Core, &other.key).await.expect("get").expect("present");
    assert_eq!(read_other.blob, Some(vec![0, 1, 0]));

    let without = Item {
        blob: None,
        body: json!({"n": 2}),
        ..read
    };
    assert_eq!(store.put(Table::Core, &without).await.expect("put"), 2);
    let read = store.get(Table::Core, &item.key).await.expect("get").expect("present");
    assert_eq!((read.blob, read.body), (None, json!({"n": 2})));
}

/// An update that changes the index key moves the item in the index, one that leaves it keeps it
/// there, one without it removes it, and a new expiry takes effect; a stale version fails
/// whether the index key changes or not.
async fn updates_move_the_index_entry_and_the_expiry(store: &dyn ItemStore) {
    let (first, second) = (unique("owner"), unique("owner"));
    let key = Key::new(unique("indexed"), "item");
    let item = Item::new(key.clone(), json!({"n": 1})).with_index(Key::new(&first, "a"));
    store.put(Table::Auth, &item).await.expect("create");
    let indexed = |pk: String| async move {
        store
            .query_index(Table::Auth, &pk, "", 10)
            .await
            .expect("query the index")
            .into_iter()
            .map(|item| (item.index.expect("index").sk, item.body))
            .collect::<Vec<_>>()
    };
    let read = || async { store.get(Table::Auth, &key).await.expect("get") };

    let kept = Item {
        body: json!({"n": 2}),
        ..read().await.expect("item")
    };
    store.put(Table::Auth, &kept).await.expect("update, index unchanged");
    assert_eq!(indexed(first.clone()).await, vec![("a".to_owned(), json!({"n": 2}))]);
    assert!(matches!(
        store.put(Table::Auth, &kept).await,
        Err(StoreError::ConditionFailed)
    ));

    let moved = Item {
        index: Some(Key::new(&second, "b")),
        ..read().await.expect("item")
    };
    let stale = Item {
        version: moved.version - 1,
        ..moved.clone()
    };
    assert!(matches!(
        store.put(Table::Auth, &stale).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(indexed(second.clone()).await.is_empty(), "a failed write moves nothing");
    store.put(Table::Auth, &moved).await.expect("update, index moved");
    assert!(indexed(first.clone()).await.is_empty());
    assert_eq!(indexed(second.clone()).await, vec![("b".to_owned(), json!({"n": 2}))]);

    let unindexed = Item {
        index: None,
        ..read().await.expect("item")
    };
    store.put(Table::Auth, &unindexed).await.expect("update, index removed");
    assert!(indexed(second).await.is_empty());
    assert_eq!(read().await.map(|item| item.index), Some(None));

    let expiring = read().await.expect("item").expiring_at(1);
    store.put(Table::Auth, &expiring).await.expect("update, expiry set");
    assert!(read().await.is_none(), "the new expiry, in the past, hides the item");
}

/// `get_many` answers in the order asked, `None` for an item missing or expired, and refuses
/// a key asked twice.
async fn many_items_are_read_in_one_call_in_order(store: &dyn ItemStore) {
    let pk = unique("many");
    let key = |sk: &str| Key::new(&pk, sk);
    store
        .put(Table::Core, &Item::new(key("b"), json!({"n": 2})))
        .await
        .expect("put");
    store
        .put(Table::Core, &Item::new(key("a"), json!({"n": 1})))
        .await
        .expect("put");
    let expired = Item::new(key("old"), json!({})).expiring_at(1);
    store.put(Table::Core, &expired).await.expect("put");
    let keys = [key("b"), key("missing"), key("a"), key("old")];
    let read = store.get_many(Table::Core, &keys).await.expect("get_many");
    let bodies: Vec<_> = read
        .iter()
        .map(|item| item.as_ref().map(|i| i.body["n"].clone()))
        .collect();
    assert_eq!(bodies, [Some(json!(2)), None, Some(json!(1)), None]);
    assert_eq!(read[0].as_ref().map(|i| i.version), Some(1));
    assert!(store.get_many(Table::Core, &[]).await.expect("none").is_empty());
    assert!(matches!(
        store.get_many(Table::Core, &[key("a"), key("a")]).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn queries_return_live_items_in_sort_order(store: &dyn ItemStore) {
    let pk = unique("tenant");
    let user = unique("user");
    for sk in ["session#3", "session#1", "other#1", "session#2"] {
        let item = Item::new(Key::new(&pk, sk), json!({ "sk": sk })).with_index(Key::new(&user, sk));
        store.put(Table::Core, &item).await.expect("put");
    }
    let sessions = store.query(Table::Core, &pk, "session#", 10).await.expect("query");
    let order: Vec<_> = sessions.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(order, ["session#1", "session#2", "session#3"]);
    assert_eq!(
        store.query(Table::Core, &pk, "session#", 2).await.expect("query").len(),
        2
    );
    let by_user = store
        .query_index(Table::Core, &user, "session#", 10)
        .await
        .expect("index query");
    assert_eq!(by_user.len(), 3);
    assert_eq!(by_user[0].index, Some(Key::new(&user, "session#1")));
}

/// Reading page after page from the last sort key seen returns every live item once, in
/// order, past the limit of one page and past expired items.
async fn pages_read_a_partition_exactly_once(store: &dyn ItemStore) {
    let pk = unique("feed");
    let mut written = Vec::new();
    for n in 0..25 {
        let sk = format!("{n:03}#entry");
        let item = Item::new(Key::new(&pk, &sk), json!({}));
        // Every fifth item has expired: a page skips it, and its place is not lost.
        let item = if n % 5 == 0 {
            item.expiring_at(1)
        } else {
            written.push(sk);
            item
        };
        store.put(Table::Auth, &item).await.expect("put");
    }
    let mut read = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.query_after(Table::Auth, &pk, &after, 7).await.expect("page");
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.key.sk.clone();
        read.extend(page.into_iter().map(|item| item.key.sk));
    }
    assert_eq!(read, written);
    // A bound that is a prefix of a key sorts before it (the revocation feed's `since` relies on it).
    let tail = store.query_after(Table::Auth, &pk, "012", 100).await.expect("tail");
    assert_eq!(tail.first().map(|i| i.key.sk.as_str()), Some("012#entry"));
    assert_eq!(tail.len(), 11);
}

/// A list of one kind of item, read page after page from the last key seen, returns each item
/// of that kind once and nothing of the kinds sorting before or after it, on the table and on
/// its index alike.
async fn pages_of_a_prefix_stay_within_it(store: &dyn ItemStore) {
    let pk = unique("org");
    let user = unique("user");
    for sk in ["a#1", "member#3", "member#1", "memberz", "member#2", "member#10", "z#1"] {
        let item = Item::new(Key::new(&pk, sk), json!({})).with_index(Key::new(&user, sk));
        store.put(Table::Core, &item).await.expect("put");
    }
    for lookup in [Lookup::Table, Lookup::Index] {
        let partition = if lookup == Lookup::Table { &pk } else { &user };
        let mut read = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let range = SortRange {
                prefix: "member#",
                after: after.as_deref(),
            };
            let page = store
                .query_range(Table::Core, lookup, partition, range, 2)
                .await
                .expect("page");
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            let sk = |item: &Item| match lookup {
                Lookup::Table => item.key.sk.clone(),
                Lookup::Index => item.index.clone().expect("indexed").sk,
            };
            after = Some(sk(last));
            read.extend(page.iter().map(sk));
        }
        assert_eq!(read, ["member#1", "member#10", "member#2", "member#3"], "{lookup:?}");
        // A bound before the prefix reads all of it; one after it, nothing.
        for (bound, expected) in [("a#1", 4), ("memberz", 0), ("n", 0)] {
            let range = SortRange {
                prefix: "member#",
                after: Some(bound),
            };
            let page = store
                .query_range(Table::Core, lookup, partition, range, 10)
                .await
                .expect("page");
            assert_eq!(page.len(), expected, "{lookup:?} after {bound}");
        }
    }
}

async fn expired_items_are_invisible_and_replaceable(store: &dyn ItemStore) {
    let key = Key::new(unique("session"), "meta");
    let expired = Item::new(key.clone(), json!({"old": true})).expiring_at(1);
    store.put(Table::Auth, &expired).await.expect("write expired");
    assert!(store.get(Table::Auth, &key).await.expect("get").is_none());
    assert!(
        store
            .query(Table::Auth, &key.pk, "", 10)
            .await
            .expect("query")
            .is_empty()
    );
    let fresh = Item::new(key.clone(), json!({"old": false})).expiring_at(i64::from(u32::MAX));
    store
        .put(Table::Auth, &fresh)
        .await
        .expect("a new item may take an expired item's key");
    let read = store.get(Table::Auth, &key).await.expect("get").expect("present");
    assert_eq!(read.body, json!({"old": false}));
}

async fn conditional_delete(store: &dyn ItemStore) {
    let key = Key::new(unique("doc"), "v");
    store
        .put(Table::Audit, &Item::new(key.clone(), json!(1)))
        .await
        .expect("put");
    assert!(matches!(
        store.delete(Table::Audit, &key, Some(7)).await,
        Err(StoreError::ConditionFailed)
    ));
    store.delete(Table::Audit, &key, Some(1)).await.expect("delete");
    assert!(store.get(Table::Audit, &key).await.expect("get").is_none());
    store
        .delete(Table::Audit, &key, None)
        .await
        .expect("deleting nothing is fine");
}

async fn concurrent_writers_of_one_version_yield_one_winner(store: Arc<dyn ItemStore>) {
    let key = Key::new(unique("refresh"), "token");
    store
        .put(Table::Auth, &Item::new(key.clone(), json!({"n": 0})))
        .await
        .expect("put");
    let read = store.get(Table::Auth, &key).await.expect("get").expect("present");
    let attempts = (0..8).map(|n| {
        let (store, mut item) = (Arc::clone(&store), read.clone());
        item.body = json!({ "n": n + 1 });
        tokio::spawn(async move { store.put(Table::Auth, &item).await })
    });
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.expect("join") {
            Ok(2) => winners += 1,
            Err(StoreError::ConditionFailed) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(winners, 1);
}

/// An org with its owner membership: both items or neither, each write with its own condition.
async fn transactions_write_all_or_nothing(store: &dyn ItemStore) {
    let org = unique("org");
    let profile = Item::new(Key::new(org.clone(), "profile"), json!({"name": "Acme"}));
    let owner = Item::new(Key::new(org.clone(), "member#ada"), json!({"role": "owner"}));
    store
        .transact(Table::Core, &[Write::Put(profile.clone()), Write::Put(owner.clone())])
        .await
        .expect("both written");
    let stored = store.get(Table::Core, &owner.key).await.expect("get").expect("owner");
    assert_eq!(stored.version, 1);

    // A second org under the same key fails on the profile: its member is not written either.
    let other = Item::new(Key::new(org.clone(), "member#eve"), json!({"role": "owner"}));
    assert!(matches!(
        store
            .transact(Table::Core, &[Write::Put(other.clone()), Write::Put(profile.clone())])
            .await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(store.get(Table::Core, &other.key).await.expect("get").is_none());

    // A check that no longer holds stops the writes beside it.
    let demoted = Item {
        body: json!({"role": "viewer"}),
        ..stored.clone()
    };
    let stale_check = Write::Check {
        key: profile.key.clone(),
        version: 7,
    };
    assert!(matches!(
        store
            .transact(Table::Core, &[Write::Put(demoted.clone()), stale_check])
            .await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        store
            .get(Table::Core, &owner.key)
            .await
            .expect("get")
            .expect("owner")
            .body["role"],
        "owner"
    );

    // With the check holding, the write happens; a delete with a stale version stops it.
    let check = Write::Check {
        key: profile.key.clone(),
        version: 1,
    };
    store
        .transact(Table::Core, &[Write::Put(demoted), check])
        .await
        .expect("written");
    let stale_delete = Write::Delete {
        key: profile.key.clone(),
        expected_version: Some(9),
    };
    let absent = Write::Check {
        key: other.key.clone(),
        version: 0,
    };
    assert!(matches!(
        store.transact(Table::Core, &[stale_delete, absent.clone()]).await,
        Err(StoreError::ConditionFailed)
    ));
    let delete = Write::Delete {
        key: profile.key.clone(),
        expected_version: Some(1),
    };
    store.transact(Table::Core, &[delete, absent]).await.expect("deleted");
    assert!(store.get(Table::Core, &profile.key).await.expect("get").is_none());

    // What no adapter can do atomically is refused before anything is sent.
    assert!(matches!(
        store.transact(Table::Core, &[]).await,
        Err(StoreError::Invalid(_))
    ));
    let twice = Write::Check {
        key: owner.key.clone(),
        version: 2,
    };
    assert!(matches!(
        store.transact(Table::Core, &[twice.clone(), twice]).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Two demotions racing on the last-owner rule: each checks the other owner's version and
/// writes its own change, so at most one can win.
async fn concurrent_transactions_on_one_check_yield_one_winner(store: Arc<dyn ItemStore>) {
    let org = unique("org");
    let guard = Item::new(Key::new(org.clone(), "owners"), json!({"count": 2}));
    store.put(Table::Core, &guard).await.expect("put");
    let read = store.get(Table::Core, &guard.key).await.expect("get").expect("guard");
    let attempts = (0..8).map(|n| {
        let store = Arc::clone(&store);
        let mut guard = read.clone();
        guard.body = json!({ "count": 1 });
        let member = Item::new(Key::new(org.clone(), format!("member#{n}")), json!({"role": "admin"}));
        tokio::spawn(async move {
            store
                .transact(Table::Core, &[Write::Put(guard), Write::Put(member)])
                .await
        })
    });
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.expect("join") {
            Ok(()) => winners += 1,
            Err(StoreError::ConditionFailed) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    let members = store.query(Table::Core, &org, "member#", 10).await.expect("query");
    assert_eq!(members.len(), 1, "only the winner's member was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_adapter_passes_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("store.sqlite")).expect("open");
    contract(Arc::new(store)).await;
    let store = SqliteStore::open(&dir.path().join("purged.sqlite")).expect("open");
    let expired = Item::new(Key::new(unique("old"), "x"), json!({})).expiring_at(1);
    store.put(Table::Auth, &expired).await.expect("put");
    assert_eq!(
        store.purge_expired().await.expect("purge"),
        1,
        "the expired item is purged"
    );
}

/// Expired rows still in the SQLite file, read past the adapter (which never returns them).
fn expired_rows(path: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(path).expect("open");
    connection
        .query_row(
            "SELECT COUNT(*) FROM items_auth WHERE expires_at <= unixepoch()",
            [],
            |row| row.get(0),
        )
        .expect("count")
}

/// The embedded store purges on its own, as DynamoDB's TTL does, and stops once dropped.
#[tokio::test]
async fn the_sqlite_store_purges_expired_items_on_a_timer_until_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let purger = store.purge_expired_every(Duration::from_millis(20));
    for n in 0..3 {
        let expired = Item::new(Key::new(unique("old"), format!("{n}")), json!({})).expiring_at(1);
        store.put(Table::Auth, &expired).await.expect("put");
    }
    let live = Item::new(Key::new(unique("live"), "x"), json!({})).expiring_at(4_000_000_000);
    store.put(Table::Auth, &live).await.expect("put");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // Nothing left for a manual purge once the timer has run.
    while expired_rows(&path) != 0 {
        assert!(std::time::Instant::now() < deadline, "expired items were not purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        store.get(Table::Auth, &live.key).await.expect("get").is_some(),
        "a live item stays"
    );
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), purger)
        .await
        .expect("the purge task ends with its store")
        .expect("join");
}

/// `rampart_store::connect`, what `rampart up` and core call, starts that timer for the embedded
/// store: an expired item is there until a period has passed, then gone, and so is one written
/// after the first purge.
#[tokio::test]
async fn the_store_connect_opens_purges_expired_items_on_its_timer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rampart_store::connect(&rampart_testkit::embedded_settings(dir.path()), None).expect("connect");
    let path = dir.path().join("store.sqlite");
    for round in 0..2 {
        let expired = Item::new(Key::new(unique("old"), format!("{round}")), json!({})).expiring_at(1);
        // On the running clock: a paused one would jump ahead while the put waits for the
        // writer thread, and the purge could run before the row is counted.
        store.put(Table::Auth, &expired).await.expect("put");
        assert_eq!(expired_rows(&path), 1);
        // The paused clock jumps a period; the purge itself runs on the writer thread.
        tokio::time::pause();
        tokio::time::sleep(rampart_store::PURGE_PERIOD).await;
        tokio::time::resume();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while expired_rows(&path) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: not purged a period later"
            );
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_adapter_passes_the_contract() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws.config);
    let tables = provision_tables(&client, &aws.prefix).await.expect("provision");
    assert_eq!(tables.len(), 3);
    // Provisioning twice is harmless (bootstrap is re-runnable).
    provision_tables(&client, &aws.prefix).await.expect("re-provision");
    contract(Arc::new(DynamoDbStore::new(client, &aws.prefix))).await;
}

/// `/readyz`'s store check asks about the table its component uses, and that table alone (core's
/// role may describe only its own): with the auth table gone, core's probe passes and the auth
/// API's fails.
async fn the_readiness_probe_checks_its_own_table(store: Arc<dyn ItemStore>, drop_auth: impl AsyncFnOnce()) {
    let core = rampart_store::readiness_probe(&store, Table::Core);
    let auth = rampart_store::readiness_probe(&store, Table::Auth);
    assert_eq!(core.name(), "store");
    assert_eq!(core.check().await, Ok(()));
    assert_eq!(auth.check().await, Ok(()));
    drop_auth().await;
    assert_eq!(core.check().await, Ok(()), "core's probe does not touch the auth table");
    assert!(auth.check().await.is_err(), "the auth API's probe sees its table gone");
}

#[tokio::test]
async fn the_sqlite_readiness_probe_checks_its_own_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    the_readiness_probe_checks_its_own_table(store, async || {
        let connection = rusqlite::Connection::open(&path).expect("open");
        connection.execute_batch("DROP TABLE items_auth").expect("drop");
    })
    .await;
}

#[tokio::test]
async fn the_dynamodb_readiness_probe_describes_its_own_table() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws.config);
    provision_tables(&client, &aws.prefix).await.expect("provision");
    let store = Arc::new(DynamoDbStore::new(client.clone(), &aws.prefix));
    the_readiness_probe_checks_its_own_table(store, async || {
        client
            .delete_table()
            .table_name(rampart_kernel::schema::resource_name(&aws.prefix, "auth"))
            .send()
            .await
            .expect("delete the auth table");
    })
    .await;
}

/// A store file written by an earlier release opens with every item kept, readable and
/// writable, blob included: one whose tables are `WITHOUT ROWID`, and one whose rowid tables have
/// no blob column and a full index. Its tables and index end as this release makes them; a
/// second open changes nothing.
#[tokio::test]
async fn a_store_file_from_an_earlier_release_keeps_its_items() {
    for without_rowid in ["WITHOUT ROWID", ""] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        {
            let earlier = rusqlite::Connection::open(&path).expect("open");
            earlier
                .execute_batch(&format!(
                    "CREATE TABLE items_core (
                        pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT,
                        body TEXT NOT NULL, expires_at INTEGER, version INTEGER NOT NULL,
                        PRIMARY KEY (pk, sk)
                    ) {without_rowid};
                    CREATE INDEX items_core_gsi1 ON items_core (gsi1pk, gsi1sk);
                    CREATE INDEX items_core_expiry ON items_core (expires_at) WHERE expires_at IS NOT NULL;
                    INSERT INTO items_core VALUES ('org#1', 'doc#1', 'user#1', 'org#1', '{{\"title\":\"kept\"}}', NULL, 3);"
                ))
                .expect("earlier schema");
        }
        for _ in 0..2 {
            let store = SqliteStore::open(&path).expect("open");
            let item = store
                .get(Table::Core, &Key::new("org#1", "doc#1"))
                .await
                .expect("get")
                .expect("the item is kept");
            assert_eq!(
                (item.body["title"].as_str(), item.version, item.blob),
                (Some("kept"), 3, None)
            );
            let indexed = store
                .query_index(Table::Core, "user#1", "org#", 10)
                .await
                .expect("query the index");
            assert_eq!(indexed.len(), 1, "the index is rebuilt");
        }
        let store = SqliteStore::open(&path).expect("open");
        let mut item = store
            .get(Table::Core, &Key::new("org#1", "doc#1"))
            .await
            .expect("get")
            .expect("item");
        item.body = json!({"title": "changed"});
        item.blob = Some(b"sealed".to_vec());
        assert_eq!(store.put(Table::Core, &item).await.expect("put"), 4);
        let read = store.get(Table::Core, &item.key).await.expect("get").expect("item");
        assert_eq!(read.blob.as_deref(), Some(&b"sealed"[..]));
        let schema: Vec<String> = rusqlite::Connection::open(&path)
            .expect("open")
            .prepare("SELECT sql FROM sqlite_schema WHERE type = 'table'")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(!schema.is_empty());
        assert!(
            schema
                .iter()
                .all(|sql| !sql.to_ascii_uppercase().contains("WITHOUT ROWID") && sql.contains("blob")),
            "{schema:?}"
        );
        let index: String = rusqlite::Connection::open(&path)
            .expect("open")
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'items_core_gsi1'",
                [],
                |row| row.get(0),
            )
            .expect("the index");
        assert!(
            index.contains("WHERE gsi1pk IS NOT NULL"),
            "only items with an index key: {index}"
        );
    }
}

/// The embedded store checkpoints its WAL in the background: what is written reaches the
/// database file itself without any writer's commit running a checkpoint (it is far below the
/// 1,000 pages at which SQLite's own would run), and the task ends once the store is dropped.
#[tokio::test]
async fn the_sqlite_store_checkpoints_in_the_background_until_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let checkpointer = store.checkpoint_every(Duration::from_millis(20));
    let before = std::fs::metadata(&path).expect("file").len();
    for n in 0..50 {
        let item = Item::new(
            Key::new(unique("wal"), format!("{n}")),
            json!({"text": "x".repeat(2000)}),
        );
        store.put(Table::Core, &item).await.expect("put");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&path).expect("file").len() < before + 50 * 2000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the rows did not reach the database file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), checkpointer)
        .await
        .expect("the checkpointer ends with the store")
        .expect("no panic");
}

/// Under writes that never pause, the WAL still starts over: a checkpoint that runs beside the
/// writer never catches up with it (new frames arrive while it copies), so the writer finishes
/// each one between two commits. Without that the WAL grows by every page written, for as long
/// as the writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_writes_that_never_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let _checkpointer = store.checkpoint_every(Duration::from_millis(20));
    // For long enough that many checkpoints run (one over a large WAL, fsync included, can
    // take most of a second), however fast the disk takes the writes.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let tasks: Vec<_> = (0..8)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut writes = 0u64;
                while std::time::Instant::now() < until {
                    let item = Item::new(
                        Key::new(format!("busy-{writer}"), format!("{writes}")),
                        json!({"text": "x".repeat(2000)}),
                    );
                    store.put(Table::Core, &item).await.expect("put");
                    writes += 1;
                }
                writes
            })
        })
        .collect();
    let mut writes = 0u64;
    for task in tasks {
        writes += task.await.expect("writer");
    }
    // Every write appended at least its own 4 KiB leaf page to the WAL.
    let appended = writes * 4096;
    let wal = std::fs::metadata(path.with_extension("sqlite-wal")).expect("wal").len();
    assert!(
        wal < appended / 4,
        "the WAL reached {wal} bytes of the {appended} or more appended: it never started over"
    );
}

/// The store's files are the owner's alone, whatever the umask.
#[tokio::test]
async fn the_sqlite_store_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    store
        .put(Table::Core, &Item::new(Key::new(unique("mode"), "1"), json!({"a": 1})))
        .await
        .expect("put");
    for file in [
        path.clone(),
        path.with_extension("sqlite-wal"),
        path.with_extension("sqlite-shm"),
    ] {
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}

/// A deleted small item (as a tenant's wrapped data key is) leaves no trace in the SQLite files
/// once checkpointed: its bytes are overwritten, not just unlinked. Items around it in the same
/// page stay.
#[tokio::test]
async fn a_deleted_small_item_is_gone_from_the_sqlite_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let marker = format!("wrapped-key-{}", unique("marker"));
    let partition = unique("tenantkey");
    for n in 0..3 {
        let body = if n == 1 {
            json!({"key": marker})
        } else {
            json!({"key": "neighbour"})
        };
        store
            .put(Table::Core, &Item::new(Key::new(&partition, format!("v{n}")), body))
            .await
            .expect("put");
    }
    store
        .delete(Table::Core, &Key::new(&partition, "v1"), None)
        .await
        .expect("delete");
    let checkpoint = rusqlite::Connection::open(&path).expect("open");
    checkpoint
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0))
        .expect("checkpoint");
    for file in ["store.sqlite", "store.sqlite-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(marker.len()).any(|window| window == marker.as_bytes()),
            "the deleted item is still in {file}"
        );
    }
    let left = store.query(Table::Core, &partition, "v", 10).await.expect("query");
    assert_eq!(left.len(), 2, "its neighbours stay");
}
