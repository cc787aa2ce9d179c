//! `rampart keys rotate`: adds a new access-token signing key to the ring.

use std::sync::Arc;

use rampart_kernel::Settings;
use rampart_keyring::{KeyRing, PUBLISH_LEAD_SECS};

use crate::Error;

pub async fn rotate(settings: &Settings) -> Result<(), Error> {
    let aws = rampart_kernel::aws::sdk_config_for(settings).await;
    let store = rampart_store::connect(settings, aws.as_ref())?;
    let source = rampart_tokens::key_source(settings, aws.as_ref()).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .try_into()?;
    let ring = KeyRing::new(store, Arc::clone(&source), settings).rotate(now).await?;
    println!("new signing key published; it signs from {PUBLISH_LEAD_SECS} s from now");
    for key in &ring.keys {
        let retires = key
            .retires_at
            .map_or_else(|| "current".to_string(), |at| format!("retires in {} s", at - now));
        println!("{}\tsigns from {:+} s\t{retires}", key.key_ref, key.activates_at - now);
    }
    Ok(())
}
