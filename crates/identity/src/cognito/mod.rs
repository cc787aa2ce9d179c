//! The AWS adapter: a Cognito user pool holds users, passwords and MFA.
//!
//! Sign-in uses `USER_PASSWORD_AUTH` from the server side with `SECRET_HASH`; a signed-in user's
//! [`ProviderSession`] carries Cognito's refresh token, and each self-service call (TOTP, password
//! change) first trades it for a short-lived access token with `REFRESH_TOKEN_AUTH`.
//!
//! **Which username.** The pool signs users in by email (`UsernameAttributes = email`), so
//! Cognito's own username for a user is a generated id equal to their `sub`. AWS computes the
//! `SECRET_HASH` of a refresh over that username, never the email, so the adapter signs in with
//! it too (looked up with `AdminGetUser`, which also yields the [`User`] the session needs). That
//! keeps refreshes valid on AWS and on moto, which binds a refresh token to the `USERNAME` the
//! sign-in used.
//!
//! **No Cognito codes.** Cognito's confirmation and reset codes are six digits, too few for the
//! auth API's guessing bound, so the pool sends none (no auto-verified attribute, recovery by
//! administrator only): the auth API mails its own codes and then calls
//! [`confirm_user`](IdentityProvider::confirm_user) (`AdminConfirmSignUp`, and `email_verified`
//! set) or [`set_password`](IdentityProvider::set_password) (`AdminSetUserPassword`).

pub mod provision;

pub use provision::{ProvisionedPool, provision_user_pool};

use std::collections::HashMap;

use aws_lc_rs::hmac;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::operation::admin_get_user::AdminGetUserOutput;
use aws_sdk_cognitoidentityprovider::operation::initiate_auth::{InitiateAuthError, InitiateAuthOutput};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ChallengeNameType, SoftwareTokenMfaSettingsType,
    UserStatusType, VerifySoftwareTokenResponseType,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{
    Email, IdentityError, IdentityProvider, LoginOutcome, Password, ProviderSession, SignUpOutcome, TotpEnrolment,
    UNCONFIRMED_SIGN_UP_TTL_SECS, User, UserStatus, totp,
};

#[derive(Debug, Clone)]
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    client_id: String,
    client_secret: Option<SecretString>,
}

fn unavailable(error: impl std::error::Error) -> IdentityError {
    IdentityError::Unavailable(DisplayErrorContext(&error).to_string())
}

/// Maps a failed call: `specific` sees Cognito's error code and message first; then the errors
/// every operation shares; anything else means Cognito is unavailable or misconfigured.
fn failed<E, R>(error: SdkError<E, R>, specific: impl FnOnce(&str, &str) -> Option<IdentityError>) -> IdentityError
where
    E: ProvideErrorMetadata,
    SdkError<E, R>: std::error::Error,
{
    if let Some(service) = error.as_service_error() {
        let code = service.code().unwrap_or_default();
        if let Some(mapped) = specific(code, service.message().unwrap_or_default()) {
            return mapped;
        }
        match code {
            // Cognito's request-rate quota, spent by everyone's traffic: load to shed.
            "TooManyRequestsException" => return IdentityError::Overloaded,
            "LimitExceededException" => return IdentityError::RateLimited,
            "InvalidPasswordException" => return IdentityError::PasswordRefused,
            _ => {}
        }
    }
    unavailable(error)
}

fn is_disabled(code: &str, message: &str) -> bool {
    code == "NotAuthorizedException" && message.to_ascii_lowercase().contains("disabled")
}

fn six_digits(code: &str) -> bool {
    let code = code.trim();
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Cognito's username for a user (see the module docs) and the user.
fn user_from(output: &AdminGetUserOutput) -> Result<(String, User), IdentityError> {
    let attribute = |name: &str| {
        output
            .user_attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
    };
    let id = attribute("sub").unwrap_or(output.username()).to_owned();
    let email = Email::parse(
        attribute("email").ok_or_else(|| IdentityError::Unavailable("Cognito user has no email".into()))?,
    )?;
    let status = if output.enabled() {
        status_of(output.user_status())
    } else {
        UserStatus::Disabled
    };
    Ok((output.username().to_owned(), User { id, email, status }))
}

/// What Rampart makes of a Cognito user status. Only a self-service sign-up awaits
/// confirmation. A user an administrator created (`FORCE_CHANGE_PASSWORD`) or flagged
/// (`RESET_REQUIRED`) has an address the administrator vouched for: they count as confirmed, so
/// a password reset (proving the mailbox) lets them set their password, and a registration of
/// their address tells them by mail instead of sending a confirmation code Cognito would refuse.
/// A compromised or archived user, or a status this code does not know, may not act.
fn status_of(status: Option<&UserStatusType>) -> UserStatus {
    match status {
        Some(UserStatusType::Unconfirmed) => UserStatus::Unconfirmed,
        Some(
            UserStatusType::Confirmed
            | UserStatusType::ResetRequired
            | UserStatusType::ForceChangePassword
            | UserStatusType::ExternalProvider,
        ) => UserStatus::Confirmed,
        _ => UserStatus::Disabled,
    }
}

/// A sign-up left unconfirmed past [`UNCONFIRMED_SIGN_UP_TTL_SECS`]: Cognito keeps it forever,
/// Rampart treats it as gone. Only a self-service sign-up (`UNCONFIRMED`): a user an
/// administrator created (`FORCE_CHANGE_PASSWORD`) or flagged (`RESET_REQUIRED`) is theirs to
/// remove, not a stranger's who registers the address.
fn expired_sign_up(output: &AdminGetUserOutput, user: &User) -> bool {
    user.status == UserStatus::Unconfirmed
        && output.user_status() == Some(&UserStatusType::Unconfirmed)
        && output
            .user_create_date()
            .is_some_and(|created| created.secs() <= rampart_kernel::now_unix() - UNCONFIRMED_SIGN_UP_TTL_SECS)
}

impl CognitoIdentity {
    /// `client_secret` is required when the app client has one (then every call carries
    /// SECRET_HASH).
    pub fn new(client: Client, user_pool_id: &str, client_id: &str, client_secret: Option<SecretString>) -> Self {
        Self {
            client,
            user_pool_id: user_pool_id.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
        }
    }

    /// Base64(HMAC-SHA256(client secret, username + client id)), as Cognito defines it.
    fn secret_hash(&self, username: &str) -> Option<String> {
        self.client_secret.as_ref().map(|secret| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
            let tag = hmac::sign(&key, format!("{username}{}", self.client_id).as_bytes());
            STANDARD.encode(tag.as_ref())
        })
    }

    /// `AdminGetUser` by email or by Cognito username; `None` if there is no such user.
    async fn lookup(&self, username: &str) -> Result<Option<(String, User)>, IdentityError> {
        Ok(self
            .lookup_live(username)
            .await?
            .map(|(username, user, _)| (username, user)))
    }

    /// [`Self::lookup`], also saying whether the user is a sign-up that has expired unconfirmed.
    async fn lookup_live(&self, username: &str) -> Result<Option<(String, User, bool)>, IdentityError> {
        let result = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await;
        match result {
            Ok(output) => {
                let (username, user) = user_from(&output)?;
                let expired = expired_sign_up(&output, &user);
                Ok(Some((username, user, expired)))
            }
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_user_not_found_exception() => Ok(None),
                _ => Err(unavailable(error)),
            },
        }
    }

    /// `SignUp`: the new user's `sub`, or `None` if the address is taken.
    async fn create(&self, email: &Email, password: &Password) -> Result<Option<String>, IdentityError> {
        let attribute = AttributeType::builder()
            .name("email")
            .value(email.as_str())
            .build()
            .map_err(unavailable)?;
        let result = self
            .client
            .sign_up()
            .client_id(&self.client_id)
            .set_secret_hash(self.secret_hash(email.as_str()))
            .username(email.as_str())
            .password(password.expose())
            .user_attributes(attribute)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.user_sub)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_username_exists_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(failed(error, |_, _| None)),
        }
    }

    /// `InitiateAuth` in `flow` with `parameters`, plus the secret hash for `username` when the
    /// app client has a secret.
    async fn initiate_auth(
        &self,
        flow: AuthFlowType,
        mut parameters: HashMap<String, String>,
        username: &str,
    ) -> Result<InitiateAuthOutput, SdkError<InitiateAuthError>> {
        if let Some(hash) = self.secret_hash(username) {
            parameters.insert("SECRET_HASH".to_owned(), hash);
        }
        self.client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(flow)
            .set_auth_parameters(Some(parameters))
            .send()
            .await
    }

    /// A fresh access token from the session's refresh token.
    async fn access_token(&self, session: &ProviderSession) -> Result<SecretString, IdentityError> {
        let refresh_token = session.credential.as_ref().ok_or(IdentityError::SessionInvalid)?;
        let parameters = HashMap::from([("REFRESH_TOKEN".to_owned(), refresh_token.expose_secret().to_owned())]);
        let output = self
            .initiate_auth(AuthFlowType::RefreshTokenAuth, parameters, &session.user.id)
            .await
            .map_err(|error| {
                failed(error, |code, message| match code {
                    _ if is_disabled(code, message) => Some(IdentityError::Disabled),
                    "NotAuthorizedException" | "UserNotFoundException" => Some(IdentityError::SessionInvalid),
                    _ => None,
                })
            })?;
        output
            .authentication_result()
            .and_then(AuthenticationResultType::access_token)
            .map(|token| SecretString::from(token.to_owned()))
            .ok_or_else(|| IdentityError::Unavailable("Cognito returned no access token".into()))
    }

    async fn set_totp_preference(&self, session: &ProviderSession, enabled: bool) -> Result<(), IdentityError> {
        let access_token = self.access_token(session).await?;
        self.client
            .set_user_mfa_preference()
            .access_token(access_token.expose_secret())
            .software_token_mfa_settings(
                SoftwareTokenMfaSettingsType::builder()
                    .enabled(enabled)
                    .preferred_mfa(enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, _| match code {
                    "NotAuthorizedException" => Some(IdentityError::SessionInvalid),
                    // Enabling a factor that was never verified.
                    "InvalidParameterException" => Some(IdentityError::InvalidCode),
                    _ => None,
                })
            })?;
        Ok(())
    }
}

/// A signed-in session from Cognito's tokens, or the MFA challenge it asks for instead.
fn login_outcome(
    user: User,
    challenge: Option<&ChallengeNameType>,
    session: Option<&str>,
    result: Option<&AuthenticationResultType>,
) -> Result<LoginOutcome, IdentityError> {
    if let Some(refresh_token) = result.and_then(AuthenticationResultType::refresh_token) {
        return Ok(LoginOutcome::Authenticated(ProviderSession {
            user,
            credential: Some(SecretString::from(refresh_token.to_owned())),
        }));
    }
    match (challenge, session) {
        (Some(ChallengeNameType::SoftwareTokenMfa), Some(session)) => Ok(LoginOutcome::MfaRequired {
            challenge: SecretString::from(session.to_owned()),
        }),
        (Some(other), _) => Err(IdentityError::Unavailable(format!(
            "Cognito asked for an unsupported challenge: {}",
            other.as_str()
        ))),
        _ => Err(IdentityError::Unavailable(
            "Cognito returned neither tokens nor a challenge".into(),
        )),
    }
}

#[async_trait::async_trait]
impl IdentityProvider for CognitoIdentity {
    #[instrument(name = "identity.sign_up", skip_all)]
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError> {
        if let Some(user_id) = self.create(email, password).await? {
            return Ok(SignUpOutcome::Created { user_id });
        }
        match self.lookup_live(email.as_str()).await? {
            // The squatter's day is over: the address goes to whoever registers now.
            Some((username, _, true)) => {
                self.client
                    .admin_delete_user()
                    .user_pool_id(&self.user_pool_id)
                    .username(&username)
                    .send()
                    .await
                    .map_err(|error| failed(error, |_, _| None))?;
                match self.create(email, password).await? {
                    Some(user_id) => Ok(SignUpOutcome::Created { user_id }),
                    // Someone else registered it in between.
                    None => Ok(SignUpOutcome::AlreadyRegistered),
                }
            }
            Some((_, user, false)) if user.status == UserStatus::Unconfirmed => {
                Ok(SignUpOutcome::AwaitingConfirmation { user_id: user.id })
            }
            _ => Ok(SignUpOutcome::AlreadyRegistered),
        }
    }

    #[instrument(name = "identity.find_user", skip_all)]
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        Ok(self
            .lookup_live(email.as_str())
            .await?
            .and_then(|(_, user, expired)| (!expired).then_some(user)))
    }

    #[instrument(name = "identity.confirm_user", skip_all)]
    async fn confirm_user(&self, user_id: &str) -> Result<(), IdentityError> {
        let Some((username, user, false)) = self.lookup_live(user_id).await? else {
            return Err(IdentityError::InvalidCode);
        };
        if user.status != UserStatus::Unconfirmed {
            return Err(IdentityError::InvalidCode);
        }
        // The code the auth API checked went to this address: it is verified. Marked first, as
        // it can be marked again: if confirming then fails, the user is still unconfirmed and
        // the next right code completes both.
        let verified = AttributeType::builder()
            .name("email_verified")
            .value("true")
            .build()
            .map_err(unavailable)?;
        self.client
            .admin_update_user_attributes()
            .user_pool_id(&self.user_pool_id)
            .username(&username)
            .user_attributes(verified)
            .send()
            .await
            .map_err(|error| failed(error, |_, _| None))?;
        self.client
            .admin_confirm_sign_up()
            .user_pool_id(&self.user_pool_id)
            .username(&username)
            .send()
            .await
            .map_err(|error| failed(error, |_, _| None))?;
        Ok(())
    }

    #[instrument(name = "identity.authenticate", skip_all)]
    async fn authenticate(&self, email: &Email, password: &Password) -> Result<LoginOutcome, IdentityError> {
        let found = self.lookup(email.as_str()).await?;
        // An unknown email still makes the InitiateAuth call, so it costs the same round trips
        // as a wrong password.
        let username = found
            .as_ref()
            .map_or(email.as_str(), |(username, _)| username.as_str())
            .to_owned();
        let parameters = HashMap::from([
            ("USERNAME".to_owned(), username.clone()),
            ("PASSWORD".to_owned(), password.expose().to_owned()),
        ]);
        let output = self
            .initiate_auth(AuthFlowType::UserPasswordAuth, parameters, &username)
            .await
            .map_err(|error| {
                failed(error, |code, message| match code {
                    _ if is_disabled(code, message) => Some(IdentityError::Disabled),
                    "NotAuthorizedException" if message.contains("attempts exceeded") => {
                        Some(IdentityError::RateLimited)
                    }
                    "NotAuthorizedException" | "UserNotFoundException" => Some(IdentityError::InvalidCredentials),
                    "UserNotConfirmedException" => Some(IdentityError::NotConfirmed),
                    _ => None,
                })
            })?;
        // Created between the lookup and the sign-in: rare enough to ask for a retry.
        let Some((_, user)) = found else {
            return Err(IdentityError::InvalidCredentials);
        };
        login_outcome(
            user,
            output.challenge_name(),
            output.session(),
            output.authentication_result(),
        )
    }

    #[instrument(name = "identity.answer_mfa", skip_all)]
    async fn answer_mfa(&self, email: &Email, challenge: &str, code: &str) -> Result<ProviderSession, IdentityError> {
        if !six_digits(code) {
            return Err(IdentityError::InvalidCode);
        }
        let Some((username, user)) = self.lookup(email.as_str()).await? else {
            return Err(IdentityError::ChallengeExpired);
        };
        let mut responses = HashMap::from([
            ("USERNAME".to_owned(), username.clone()),
            ("SOFTWARE_TOKEN_MFA_CODE".to_owned(), code.trim().to_owned()),
        ]);
        if let Some(hash) = self.secret_hash(&username) {
            responses.insert("SECRET_HASH".to_owned(), hash);
        }
        let output = self
            .client
            .respond_to_auth_challenge()
            .client_id(&self.client_id)
            .challenge_name(ChallengeNameType::SoftwareTokenMfa)
            .session(challenge)
            .set_challenge_responses(Some(responses))
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, message| match code {
                    "CodeMismatchException" | "ExpiredCodeException" => Some(IdentityError::InvalidCode),
                    _ if is_disabled(code, message) => Some(IdentityError::Disabled),
                    "NotAuthorizedException" | "UserNotFoundException" => Some(IdentityError::ChallengeExpired),
                    _ => None,
                })
            })?;
        match login_outcome(
            user,
            output.challenge_name(),
            output.session(),
            output.authentication_result(),
        )? {
            LoginOutcome::Authenticated(session) => Ok(session),
            LoginOutcome::MfaRequired { .. } => Err(IdentityError::Unavailable(
                "Cognito asked for MFA again after an MFA answer".into(),
            )),
        }
    }

    #[instrument(name = "identity.begin_totp_enrolment", skip_all)]
    async fn begin_totp_enrolment(&self, session: &ProviderSession) -> Result<TotpEnrolment, IdentityError> {
        let access_token = self.access_token(session).await?;
        let output = self
            .client
            .associate_software_token()
            .access_token(access_token.expose_secret())
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, _| {
                    (code == "NotAuthorizedException").then_some(IdentityError::SessionInvalid)
                })
            })?;
        let secret = output
            .secret_code()
            .ok_or_else(|| IdentityError::Unavailable("Cognito returned no TOTP secret".into()))?;
        Ok(TotpEnrolment {
            otpauth_uri: SecretString::from(totp::otpauth_uri(session.user.email.as_str(), secret)),
            secret: SecretString::from(secret.to_owned()),
        })
    }

    #[instrument(name = "identity.confirm_totp_enrolment", skip_all)]
    async fn confirm_totp_enrolment(&self, session: &ProviderSession, code: &str) -> Result<(), IdentityError> {
        if !six_digits(code) {
            return Err(IdentityError::InvalidCode);
        }
        let access_token = self.access_token(session).await?;
        let output = self
            .client
            .verify_software_token()
            .access_token(access_token.expose_secret())
            .user_code(code.trim())
            .friendly_device_name(totp::ISSUER)
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, _| match code {
                    "CodeMismatchException" | "EnableSoftwareTokenMFAException" | "InvalidParameterException" => {
                        Some(IdentityError::InvalidCode)
                    }
                    "NotAuthorizedException" => Some(IdentityError::SessionInvalid),
                    _ => None,
                })
            })?;
        if output.status() != Some(&VerifySoftwareTokenResponseType::Success) {
            return Err(IdentityError::InvalidCode);
        }
        self.set_totp_preference(session, true).await
    }

    #[instrument(name = "identity.disable_totp", skip_all)]
    async fn disable_totp(&self, session: &ProviderSession) -> Result<(), IdentityError> {
        self.set_totp_preference(session, false).await
    }

    #[instrument(name = "identity.totp_enabled", skip_all)]
    async fn totp_enabled(&self, session: &ProviderSession) -> Result<bool, IdentityError> {
        let output = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(&session.user.id)
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, _| {
                    (code == "UserNotFoundException").then_some(IdentityError::SessionInvalid)
                })
            })?;
        Ok(output
            .user_mfa_setting_list()
            .iter()
            .any(|setting| setting == "SOFTWARE_TOKEN_MFA"))
    }

    #[instrument(name = "identity.set_password", skip_all)]
    async fn set_password(&self, user_id: &str, new_password: &Password) -> Result<(), IdentityError> {
        match self.lookup(user_id).await? {
            Some((username, user)) if user.status == UserStatus::Confirmed => {
                self.client
                    .admin_set_user_password()
                    .user_pool_id(&self.user_pool_id)
                    .username(&username)
                    .password(new_password.expose())
                    .permanent(true)
                    .send()
                    .await
                    .map_err(|error| failed(error, |_, _| None))?;
                Ok(())
            }
            _ => Err(IdentityError::InvalidCode),
        }
    }

    #[instrument(name = "identity.change_password", skip_all)]
    async fn change_password(
        &self,
        session: &ProviderSession,
        old: &Password,
        new: &Password,
    ) -> Result<(), IdentityError> {
        let access_token = self.access_token(session).await?;
        self.client
            .change_password()
            .access_token(access_token.expose_secret())
            .previous_password(old.expose())
            .proposed_password(new.expose())
            .send()
            .await
            .map_err(|error| {
                failed(error, |code, message| match code {
                    _ if is_disabled(code, message) => Some(IdentityError::Disabled),
                    "NotAuthorizedException" if message.contains("attempts exceeded") => {
                        Some(IdentityError::RateLimited)
                    }
                    "NotAuthorizedException" => Some(IdentityError::InvalidCredentials),
                    _ => None,
                })
            })?;
        Ok(())
    }

    #[instrument(name = "identity.sign_out_everywhere", skip_all)]
    async fn sign_out_everywhere(&self, user_id: &str) -> Result<(), IdentityError> {
        let result = self
            .client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(user_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(failed(error, |_, _| None)),
        }
    }

    #[instrument(name = "identity.disable_user", skip_all)]
    async fn disable_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let Some((username, user)) = self.lookup(email.as_str()).await? else {
            return Ok(None);
        };
        self.client
            .admin_disable_user()
            .user_pool_id(&self.user_pool_id)
            .username(&username)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(Some(User {
            status: UserStatus::Disabled,
            ..user
        }))
    }

    #[instrument(name = "identity.current_user", skip_all)]
    async fn current_user(&self, user_id: &str) -> Result<Option<User>, IdentityError> {
        Ok(self.lookup(user_id).await?.map(|(_, user)| user))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::primitives::DateTime;

    use super::*;

    fn user(status: UserStatusType, age_secs: i64) -> AdminGetUserOutput {
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("attribute")
        };
        AdminGetUserOutput::builder()
            .username("0b6c2f4e-user")
            .enabled(true)
            .user_status(status)
            .user_create_date(DateTime::from_secs(rampart_kernel::now_unix() - age_secs))
            .user_attributes(attribute("sub", "0b6c2f4e-user"))
            .user_attributes(attribute("email", "ada@example.com"))
            .build()
            .expect("output")
    }

    fn expired(output: &AdminGetUserOutput) -> bool {
        let (_, user) = user_from(output).expect("user");
        expired_sign_up(output, &user)
    }

    #[test]
    fn administrators_users_count_as_confirmed_and_unknown_statuses_may_not_act() {
        for (status, expected) in [
            (UserStatusType::Unconfirmed, UserStatus::Unconfirmed),
            (UserStatusType::Confirmed, UserStatus::Confirmed),
            (UserStatusType::ResetRequired, UserStatus::Confirmed),
            (UserStatusType::ForceChangePassword, UserStatus::Confirmed),
            (UserStatusType::Compromised, UserStatus::Disabled),
            (UserStatusType::Archived, UserStatus::Disabled),
            (UserStatusType::from("SOMETHING_NEW"), UserStatus::Disabled),
        ] {
            let (_, user) = user_from(&user(status.clone(), 60)).expect("user");
            assert_eq!(user.status, expected, "{status:?}");
        }
    }

    #[test]
    fn only_a_self_service_sign_up_past_a_day_unconfirmed_expires() {
        let day = UNCONFIRMED_SIGN_UP_TTL_SECS;
        assert!(expired(&user(UserStatusType::Unconfirmed, day + 1)));
        assert!(!expired(&user(UserStatusType::Unconfirmed, day - 60)));
        // Users an administrator made or flagged stay, however old: registering their address
        // must not delete them.
        for status in [
            UserStatusType::ForceChangePassword,
            UserStatusType::ResetRequired,
            UserStatusType::Confirmed,
        ] {
            assert!(!expired(&user(status, 30 * day)));
        }
    }
}
