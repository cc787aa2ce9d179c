//! Conversions between [`Item`] and DynamoDB attribute maps, kept out of the adapter's logic.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::{Item, Key, StoreError};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const BODY: &str = "body";
pub const BLOB: &str = "blob";
pub const EXPIRES_AT: &str = "expires_at";
pub const VERSION: &str = "version";
pub const GSI1: &str = "gsi1";

pub fn key_attributes(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(key.pk.clone())),
        (SK.to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

pub fn to_attributes(item: &Item, version: u64) -> HashMap<String, AttributeValue> {
    let mut attributes = key_attributes(&item.key);
    if let Some(index) = &item.index {
        attributes.insert(GSI1PK.into(), AttributeValue::S(index.pk.clone()));
        attributes.insert(GSI1SK.into(), AttributeValue::S(index.sk.clone()));
    }
    attributes.insert(BODY.into(), AttributeValue::S(item.body.to_string()));
    if let Some(blob) = &item.blob {
        attributes.insert(BLOB.into(), AttributeValue::B(Blob::new(blob.clone())));
    }
    if let Some(at) = item.expires_at {
        attributes.insert(EXPIRES_AT.into(), AttributeValue::N(at.to_string()));
    }
    attributes.insert(VERSION.into(), AttributeValue::N(version.to_string()));
    attributes
}

fn string(attributes: &HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
    match attributes.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is missing or not a string"
        ))),
    }
}

fn number<T: std::str::FromStr>(
    attributes: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match attributes.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a valid number"))),
        Some(_) => Err(StoreError::Corrupt(format!("attribute {name} is not a number"))),
    }
}

pub fn from_attributes(attributes: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let index = match (attributes.get(GSI1PK), attributes.get(GSI1SK)) {
        (Some(_), Some(_)) => Some(Key {
            pk: string(attributes, GSI1PK)?,
            sk: string(attributes, GSI1SK)?,
        }),
        _ => None,
    };
    let body = serde_json::from_str(&string(attributes, BODY)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let blob = match attributes.get(BLOB) {
        None => None,
        Some(AttributeValue::B(blob)) => Some(blob.clone().into_inner()),
        Some(_) => return Err(StoreError::Corrupt(format!("attribute {BLOB} is not binary"))),
    };
    Ok(Item {
        key: Key {
            pk: string(attributes, PK)?,
            sk: string(attributes, SK)?,
        },
        index,
        body,
        blob,
        expires_at: number(attributes, EXPIRES_AT)?,
        version: number(attributes, VERSION)?
            .ok_or_else(|| StoreError::Corrupt("attribute version is missing".into()))?,
    })
}
