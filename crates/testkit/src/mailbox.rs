//! moto's stand-in for the password-reset email.

use std::sync::{Arc, Mutex};

use aws_sdk_cognitoidentityprovider::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_cognitoidentityprovider::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cognitoidentityprovider::error::BoxError;

/// An SDK interceptor that keeps the reset code moto returns in the
/// `x-moto-forgot-password-confirmation-code` response header, where AWS would email it.
/// Install it on the Cognito client under test; [`MotoMailbox::take`] reads the latest code.
#[derive(Debug, Clone, Default)]
pub struct MotoMailbox(Arc<Mutex<Option<String>>>);

impl MotoMailbox {
    /// The latest code received, removed from the mailbox.
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok()?.take()
    }

    /// A Cognito client for `config` with this mailbox installed.
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_cognitoidentityprovider::Client {
        let config = aws_sdk_cognitoidentityprovider::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_cognitoidentityprovider::Client::from_conf(config)
    }
}

impl Intercept for MotoMailbox {
    fn name(&self) -> &'static str {
        "MotoMailbox"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(code) = context
            .response()
            .headers()
            .get("x-moto-forgot-password-confirmation-code")
            && let Ok(mut slot) = self.0.lock()
        {
            *slot = Some(code.to_owned());
        }
        Ok(())
    }
}
