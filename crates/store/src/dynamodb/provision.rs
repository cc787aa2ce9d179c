//! Creates the schema's tables on whatever DynamoDB endpoint the client points at
//! (`rampart bootstrap`, and tests against moto). Terraform creates the same tables in AWS.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
};
use rampart_kernel::schema::{TableDef, resource_name, schema};

use crate::StoreError;

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, StoreError> {
    let element = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Unavailable(e.to_string());
    Ok(vec![
        element(hash, KeyType::Hash).map_err(build)?,
        element(range, KeyType::Range).map_err(build)?,
    ])
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Creates every table in the schema that does not exist yet and waits until all are active.
/// Returns the physical names.
pub async fn provision_tables(client: &Client, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for (logical, definition) in &schema().tables {
        let name = resource_name(prefix, logical);
        create_table(client, &name, definition).await?;
        names.push(name);
    }
    for name in &names {
        wait_active(client, name).await?;
    }
    for ((_, definition), name) in schema().tables.iter().zip(&names) {
        if let Some(attribute) = &definition.ttl_attribute {
            let specification = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let result = client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(specification)
                .send()
                .await;
            if let Err(error) = result {
                let text = DisplayErrorContext(&error).to_string();
                // Re-running bootstrap on a table whose TTL is already on is fine.
                if !text.contains("already enabled") {
                    return Err(StoreError::Unavailable(text));
                }
            }
        }
    }
    Ok(names)
}

async fn create_table(client: &Client, name: &str, definition: &TableDef) -> Result<(), StoreError> {
    let mut attributes = vec![
        string_attribute(&definition.hash_key)?,
        string_attribute(&definition.range_key)?,
    ];
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&definition.hash_key, &definition.range_key)?));
    for (index_name, index) in &definition.global_secondary_indexes {
        attributes.push(string_attribute(&index.hash_key)?);
        attributes.push(string_attribute(&index.range_key)?);
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index_name)
                .set_key_schema(Some(key_schema(&index.hash_key, &index.range_key)?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        );
    }
    if let Some(view) = &definition.stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        );
    }
    match request.set_attribute_definitions(Some(attributes)).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(StoreError::Unavailable(DisplayErrorContext(&error).to_string())),
    }
}

async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let output = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        if output.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!("table {name} did not become active")))
}
