//! `rampart users disable`: an administrator ends an account and every session it holds.

use rampart_auth_function::{App, Backends};
use rampart_identity::Email;
use rampart_kernel::Settings;

use crate::Error;

pub async fn disable(settings: &Settings, email: &str) -> Result<(), Error> {
    let email = Email::parse(email).map_err(|error| format!("email: {error}"))?;
    let aws = rampart_kernel::aws::sdk_config_for(settings).await;
    let backends = Backends::connect(settings, aws.as_ref()).await?;
    match App::new(backends, settings, &Default::default())
        .disable_user(&email)
        .await?
    {
        Some(user_id) => {
            println!("disabled user {user_id}; every session they held is revoked");
            Ok(())
        }
        None => Err(format!("no account has the email {}", email.as_str()).into()),
    }
}
