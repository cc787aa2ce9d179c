//! The AWS adapter: one DynamoDB table per logical table, named `<resource_prefix>-<logical>`.

mod ext;
pub mod provision;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem};
use tracing::instrument;

use self::ext::{EXPIRES_AT, GSI1, GSI1PK, GSI1SK, PK, SK, VERSION};
use crate::{
    Item, ItemDelete, ItemGet, ItemPut, ItemQuery, ItemTransact, Key, Lookup, Result, SortRange, StoreError, Table,
    Write, check_transaction, now_unix,
};

#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    prefix: String,
}

fn unavailable<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&error).to_string())
}

/// A failed write condition is [`StoreError::ConditionFailed`]; anything else is unavailability.
fn write_error<E, R>(error: SdkError<E, R>, condition_failed: impl Fn(&E) -> bool) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if error.as_service_error().is_some_and(condition_failed) {
        StoreError::ConditionFailed
    } else {
        unavailable(error)
    }
}

impl DynamoDbStore {
    pub fn new(client: Client, resource_prefix: &str) -> Self {
        Self {
            client,
            prefix: resource_prefix.to_owned(),
        }
    }

    fn table_name(&self, table: Table) -> String {
        rampart_kernel::schema::resource_name(&self.prefix, table.logical())
    }

    async fn query_on(
        &self,
        table: Table,
        lookup: Lookup,
        pk: &str,
        range: SortRange<'_>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let (index, pk_name, sk_name) = match lookup {
            Lookup::Table => (None, PK, SK),
            Lookup::Index => (Some(GSI1), GSI1PK, GSI1SK),
        };
        let Some(condition) = KeyCondition::of(range) else {
            return Ok(Vec::new());
        };
        let now = now_unix();
        let mut items = Vec::new();
        let mut start = None;
        // Expired items still count against a page's Limit, so page until `limit` live ones.
        loop {
            let request = self
                .client
                .query()
                .table_name(self.table_name(table))
                .set_index_name(index.map(str::to_owned))
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
            let s = |value: &str| AttributeValue::S(value.to_owned());
            let request = match condition {
                KeyCondition::All => request.key_condition_expression("#pk = :pk"),
                KeyCondition::BeginsWith(prefix) => request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":sk", s(prefix)),
                KeyCondition::After(after) => request
                    .key_condition_expression("#pk = :pk AND #sk > :sk")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":sk", s(after)),
                KeyCondition::Between(low, ref high) => request
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":low", s(low))
                    .expression_attribute_values(":high", s(high)),
            };
            let output = request
                .set_consistent_read(index.is_none().then_some(true))
                .set_exclusive_start_key(start)
                .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
                .send()
                .await
                .map_err(unavailable)?;
            for attributes in output.items() {
                let item = ext::from_attributes(attributes)?;
                let sk = match lookup {
                    Lookup::Table => Some(item.key.sk.as_str()),
                    Lookup::Index => item.index.as_ref().map(|index| index.sk.as_str()),
                };
                // BETWEEN includes its lower bound, which a next page starts after.
                if item.is_live(now) && sk.is_some_and(|sk| range.contains(sk)) && items.len() < limit {
                    items.push(item);
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() || items.len() >= limit {
                return Ok(items);
            }
        }
    }
}

/// A sort range as the one condition on the sort key DynamoDB allows.
#[derive(Debug, Clone, PartialEq)]
enum KeyCondition<'a> {
    All,
    BeginsWith(&'a str),
    After(&'a str),
    /// Inclusive at both ends: the item at the lower bound is dropped after reading.
    Between(&'a str, String),
}

impl<'a> KeyCondition<'a> {
    /// `None` when no sort key can be in the range. (DynamoDB refuses an empty string in a key
    /// condition: an empty prefix or bound means "no bound".)
    fn of(range: SortRange<'a>) -> Option<Self> {
        let after = range.after.filter(|after| !after.is_empty());
        Some(match (range.prefix, after) {
            ("", None) => Self::All,
            ("", Some(after)) => Self::After(after),
            (prefix, None) => Self::BeginsWith(prefix),
            // Every key with the prefix sorts after a bound below the prefix...
            (prefix, Some(after)) if after < prefix => Self::BeginsWith(prefix),
            // ...and before a bound above it that does not start with it.
            (prefix, Some(after)) if !after.starts_with(prefix) => return None,
            // Keys with the prefix sort below the prefix followed by the highest character.
            (prefix, Some(after)) => Self::Between(after, format!("{prefix}\u{10FFFF}")),
        })
    }
}

#[async_trait::async_trait]
impl ItemGet for DynamoDbStore {
    #[instrument(name = "store.get", skip(self, key), fields(table = table.logical()))]
    async fn get(&self, table: Table, key: &Key) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(self.table_name(table))
            .set_key(Some(ext::key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let now = now_unix();
        match output.item {
            Some(attributes) => Ok(Some(ext::from_attributes(&attributes)?).filter(|item| item.is_live(now))),
            None => Ok(None),
        }
    }

    /// One `BatchGetItem`, consistent, asked again for any keys DynamoDB leaves unprocessed.
    #[instrument(name = "store.get_many", skip(self, keys), fields(table = table.logical(), keys = keys.len()))]
    async fn get_many(&self, table: Table, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        crate::check_get_many(keys)?;
        let name = self.table_name(table);
        let mut found: HashMap<Key, Item> = HashMap::new();
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys.iter().map(ext::key_attributes).collect();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > 10 {
                return Err(StoreError::Unavailable(
                    "BatchGetItem left keys unprocessed ten times".into(),
                ));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&name, request)
                .send()
                .await
                .map_err(unavailable)?;
            for attributes in output.responses.and_then(|mut r| r.remove(&name)).unwrap_or_default() {
                let item = ext::from_attributes(&attributes)?;
                found.insert(item.key.clone(), item);
            }
            if let Some(mut unprocessed) = output.unprocessed_keys
                && let Some(left) = unprocessed.remove(&name)
            {
                pending = left.keys;
            }
        }
        let now = now_unix();
        Ok(keys
            .iter()
            .map(|key| found.remove(key).filter(|item| item.is_live(now)))
            .collect())
    }
}

#[async_trait::async_trait]
impl ItemPut for DynamoDbStore {
    #[instrument(name = "store.put", skip(self, item), fields(table = table.logical()))]
    async fn put(&self, table: Table, item: &Item) -> Result<u64> {
        let next = item.version + 1;
        let now = AttributeValue::N(now_unix().to_string());
        let request = self
            .client
            .put_item()
            .table_name(self.table_name(table))
            .set_item(Some(ext::to_attributes(item, next)))
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":now", now);
        let request = if item.version == 0 {
            request
                .condition_expression("attribute_not_exists(#pk) OR (attribute_exists(#exp) AND #exp <= :now)")
                .expression_attribute_names("#pk", PK)
        } else {
            request
                .condition_expression("#v = :v AND (attribute_not_exists(#exp) OR #exp > :now)")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(item.version.to_string()))
        };
        request
            .send()
            .await
            .map(|_| next)
            .map_err(|e| write_error(e, PutItemError::is_conditional_check_failed_exception))
    }
}

#[async_trait::async_trait]
impl ItemQuery for DynamoDbStore {
    #[instrument(name = "store.query", skip(self, pk, range), fields(table = table.logical()))]
    async fn query_range(
        &self,
        table: Table,
        lookup: Lookup,
        pk: &str,
        range: SortRange<'_>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        self.query_on(table, lookup, pk, range, limit).await
    }
}

#[async_trait::async_trait]
impl ItemTransact for DynamoDbStore {
    /// One `TransactWriteItems` call, each write with the condition it has on its own.
    #[instrument(name = "store.transact", skip(self, writes), fields(table = table.logical(), writes = writes.len()))]
    async fn transact(&self, table: Table, writes: &[Write]) -> Result<()> {
        check_transaction(writes)?;
        let name = self.table_name(table);
        let now = AttributeValue::N(now_unix().to_string());
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let item = match write {
                Write::Put(item) => {
                    let put = Put::builder()
                        .table_name(&name)
                        .set_item(Some(ext::to_attributes(item, item.version + 1)))
                        .expression_attribute_names("#exp", EXPIRES_AT)
                        .expression_attribute_values(":now", now.clone());
                    let put = if item.version == 0 {
                        put.condition_expression(
                            "attribute_not_exists(#pk) OR (attribute_exists(#exp) AND #exp <= :now)",
                        )
                        .expression_attribute_names("#pk", PK)
                    } else {
                        put.condition_expression("#v = :v AND (attribute_not_exists(#exp) OR #exp > :now)")
                            .expression_attribute_names("#v", VERSION)
                            .expression_attribute_values(":v", AttributeValue::N(item.version.to_string()))
                    };
                    TransactWriteItem::builder().put(put.build().map_err(invalid)?)
                }
                Write::Delete { key, expected_version } => {
                    let mut delete = Delete::builder()
                        .table_name(&name)
                        .set_key(Some(ext::key_attributes(key)));
                    if let Some(version) = expected_version {
                        delete = delete
                            .condition_expression("#v = :v")
                            .expression_attribute_names("#v", VERSION)
                            .expression_attribute_values(":v", AttributeValue::N(version.to_string()));
                    }
                    TransactWriteItem::builder().delete(delete.build().map_err(invalid)?)
                }
                Write::Check { key, version } => {
                    let check = ConditionCheck::builder()
                        .table_name(&name)
                        .set_key(Some(ext::key_attributes(key)))
                        .expression_attribute_names("#exp", EXPIRES_AT)
                        .expression_attribute_values(":now", now.clone());
                    let check = if *version == 0 {
                        check
                            .condition_expression(
                                "attribute_not_exists(#pk) OR (attribute_exists(#exp) AND #exp <= :now)",
                            )
                            .expression_attribute_names("#pk", PK)
                    } else {
                        check
                            .condition_expression("#v = :v AND (attribute_not_exists(#exp) OR #exp > :now)")
                            .expression_attribute_names("#v", VERSION)
                            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                    };
                    TransactWriteItem::builder().condition_check(check.build().map_err(invalid)?)
                }
            };
            items.push(item.build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            // A condition that failed, or another transaction on the same items at the same
            // moment: either way another writer got there first. Any other cause (throttling,
            // validation) is unavailability.
            .map_err(|e| write_error(e, lost_to_another_writer))
    }
}

fn lost_to_another_writer(error: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(canceled) = error else {
        return false;
    };
    canceled
        .cancellation_reasons()
        .iter()
        .any(|reason| matches!(reason.code(), Some("ConditionalCheckFailed" | "TransactionConflict")))
}

fn invalid(error: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(error.to_string())
}

#[async_trait::async_trait]
impl ItemDelete for DynamoDbStore {
    #[instrument(name = "store.delete", skip(self, key), fields(table = table.logical()))]
    async fn delete(&self, table: Table, key: &Key, expected_version: Option<u64>) -> Result<()> {
        let mut request = self
            .client
            .delete_item()
            .table_name(self.table_name(table))
            .set_key(Some(ext::key_attributes(key)));
        if let Some(version) = expected_version {
            request = request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()));
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| write_error(e, DeleteItemError::is_conditional_check_failed_exception))
    }
}

#[async_trait::async_trait]
impl crate::TableHealth for DynamoDbStore {
    async fn check_table(&self, table: Table) -> Result<(), String> {
        self.client
            .describe_table()
            .table_name(self.table_name(table))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }
}
