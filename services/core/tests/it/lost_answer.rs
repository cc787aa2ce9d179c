//! A write whose answer is lost on the way is not made twice when the client retries it under
//! its Idempotency-Key: the key was marked done in the write's own transaction, and the retry is
//! sent to what the first request made (303 See Other).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_store::{Item, ItemDelete, ItemGet, ItemPut, ItemQuery, ItemStore, ItemTransact, Key, Lookup, SortRange};
use rampart_store::{Result, StoreError, Table, TableHealth, Write};
use serde_json::json;

use crate::stack::{Stack, User};

/// The real store, which once armed makes its next transaction and then answers as if it had
/// failed: what core sees when the store's answer to a write is lost on the way.
#[derive(Debug)]
struct LosesAnAnswer {
    store: Arc<dyn ItemStore>,
    armed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl ItemTransact for LosesAnAnswer {
    async fn transact(&self, table: Table, writes: &[Write]) -> Result<()> {
        self.store.transact(table, writes).await?;
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the answer was lost".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ItemGet for LosesAnAnswer {
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>> {
        self.store.get(table, key).await
    }

    async fn get_many(&self, table: Table, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.store.get_many(table, keys).await
    }
}

#[async_trait::async_trait]
impl ItemPut for LosesAnAnswer {
    async fn put(&self, table: Table, item: &Item) -> Result<u64> {
        self.store.put(table, item).await
    }
}

#[async_trait::async_trait]
impl ItemQuery for LosesAnAnswer {
    async fn query_range(
        &self,
        table: Table,
        lookup: Lookup,
        pk: &str,
        range: SortRange<'_>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        self.store.query_range(table, lookup, pk, range, limit).await
    }
}

#[async_trait::async_trait]
impl ItemDelete for LosesAnAnswer {
    async fn delete(&self, table: Table, key: &Key, expected_version: Option<u64>) -> Result<()> {
        self.store.delete(table, key, expected_version).await
    }
}

#[async_trait::async_trait]
impl TableHealth for LosesAnAnswer {
    async fn check_table(&self, table: Table) -> std::result::Result<(), String> {
        self.store.check_table(table).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_not_made_twice() {
    let armed = Arc::new(AtomicBool::new(false));
    let lossy = Arc::clone(&armed);
    let stack = Stack::embedded_with(|store| Arc::new(LosesAnAnswer { store, armed: lossy })).await;
    let (ada, eve) = (stack.user().await, stack.user().await);
    let org = stack.org(&ada, "Acme").await;
    let documents = stack.documents_of_new_project(&ada, &org).await;
    assert_eq!(stack.add(&ada, &org, &eve, "editor").await.status, 201);
    let post = |user: &User| {
        stack
            .http
            .post(format!("{}{documents}", stack.core))
            .bearer_auth(&user.token)
            .header("idempotency-key", "draft-1")
            .header("content-type", "application/json")
            .body(json!({"title": "Roadmap", "body": "lost on the way"}).to_string())
    };

    armed.store(true, Ordering::SeqCst);
    let lost = stack.send(post(&ada)).await;
    assert_eq!(lost.status, 503, "{lost:?}");
    assert!(!armed.load(Ordering::SeqCst), "the write was made");

    let retry = stack.send(post(&ada)).await;
    assert_eq!(retry.status, 303, "{retry:?}");
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let location = retry.headers["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with(&format!("{documents}/")), "{location}");
    let made = stack.get(&ada, &location).await;
    assert_eq!((made.status, &made.body["title"]), (200, &json!("Roadmap")));
    let listed = stack.get(&ada, &documents).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "one document");

    // The key is Ada's alone: Eve's same key and body make her own document.
    let theirs = stack.send(post(&eve)).await;
    assert_eq!(theirs.status, 201, "{theirs:?}");
    // Once Ada has left (Eve made owner first), her retry no longer leads to the organisation's
    // document.
    let promoted = stack
        .call(
            &ada,
            http::Method::PATCH,
            &format!("/v1/orgs/{org}/members/{}", eve.id),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(promoted.status, 200, "{promoted:?}");
    let left = stack
        .call(
            &ada,
            http::Method::DELETE,
            &format!("/v1/orgs/{org}/members/{}", ada.id),
            None,
        )
        .await;
    assert_eq!(left.status, 204, "{left:?}");
    let retry = stack.send(post(&ada)).await;
    assert_eq!(retry.status, 404, "{retry:?}");
    assert!(retry.headers.get("location").is_none());
}
