//! `rampart bootstrap`: creates on the configured AWS endpoint everything the AWS backend uses,
//! from the same schema Terraform reads. Safe to run again: existing resources are kept.

use rampart_auth_function::Backends;
use rampart_identity::CLIENT_SECRET_NAME;
use rampart_kernel::Settings;

use crate::Error;

pub async fn run(settings: &Settings) -> Result<(), Error> {
    let config = rampart_kernel::aws::sdk_config().await;
    let prefix = &settings.resource_prefix;
    let made = Backends::provision(&config, prefix).await?;
    println!("tables: {}", made.tables.join(", "));
    for (alias, key_id) in &made.keys {
        println!("kms key: {alias} ({key_id})");
    }
    if made.pool.client_secret.is_some() {
        println!(
            "secret: {}",
            rampart_kernel::schema::secret_name(prefix, CLIENT_SECRET_NAME)
        );
    }
    for secret in &made.generated_secrets {
        println!("secret: {secret}");
    }
    println!("user pool: {} (client {})", made.pool.user_pool_id, made.pool.client_id);
    println!();
    println!("# To run against these resources:");
    println!("export RAMPART_BACKEND=aws RAMPART_RESOURCE_PREFIX={prefix}");
    println!(
        "export RAMPART_AWS__USER_POOL_ID={} RAMPART_AWS__USER_POOL_CLIENT_ID={}",
        made.pool.user_pool_id, made.pool.client_id
    );
    Ok(())
}
