//! `rampart users disable`: an administrator ends an account and every session it holds.

use rampart_auth_function::{App, Backends};
use rampart_identity::Email;
use rampart_kernel::{Backend, Settings};

use crate::Error;

pub async fn disable(settings: &Settings, email: &str) -> Result<(), Error> {
    let email = Email::parse(email).map_err(|error| format!("email: {error}"))?;
    let aws = match settings.backend {
        Backend::Aws => Some(rampart_kernel::aws::sdk_config().await),
        Backend::Embedded => None,
    };
    let backends = Backends::connect(settings, aws.as_ref()).await?;
    match App::new(backends, settings).disable_user(&email).await? {
        Some(user_id) => {
            println!("disabled user {user_id}; every session they held is revoked");
            Ok(())
        }
        None => Err(format!("no account has the email {}", email.as_str()).into()),
    }
}
