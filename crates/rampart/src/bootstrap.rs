//! `rampart bootstrap`: creates on the configured AWS endpoint everything the AWS backend uses,
//! from the same schema Terraform reads. Safe to run again: existing resources are kept.

use rampart_identity::CLIENT_SECRET_NAME;
use rampart_kernel::Settings;
use rampart_secrets::{SecretSink, SecretsManagerSource};

use crate::Error;

pub async fn run(settings: &Settings) -> Result<(), Error> {
    let config = rampart_kernel::aws::sdk_config().await;
    let prefix = &settings.resource_prefix;

    let tables =
        rampart_store::dynamodb::provision::provision_tables(&aws_sdk_dynamodb::Client::new(&config), prefix).await?;
    println!("tables: {}", tables.join(", "));

    let keys = rampart_tokens::kms::provision_keys(&aws_sdk_kms::Client::new(&config), prefix).await?;
    for (alias, key_id) in &keys {
        println!("kms key: {alias} ({key_id})");
    }

    let pool =
        rampart_identity::cognito::provision_user_pool(&aws_sdk_cognitoidentityprovider::Client::new(&config), prefix)
            .await?;
    if let Some(secret) = &pool.client_secret {
        SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&config), prefix)
            .put(CLIENT_SECRET_NAME, secret)
            .await?;
        println!(
            "secret: {}",
            rampart_kernel::schema::secret_name(prefix, CLIENT_SECRET_NAME)
        );
    }
    println!("user pool: {} (client {})", pool.user_pool_id, pool.client_id);
    println!();
    println!("# To run against these resources:");
    println!("export RAMPART_BACKEND=aws RAMPART_RESOURCE_PREFIX={prefix}");
    println!(
        "export RAMPART_AWS__USER_POOL_ID={} RAMPART_AWS__USER_POOL_CLIENT_ID={}",
        pool.user_pool_id, pool.client_id
    );
    Ok(())
}
