//! Provisioning: the schema's user pool and app client, created or found by name, as
//! `rampart bootstrap` and the tests on moto need them (Terraform creates them in AWS).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AccountRecoverySettingType, ExplicitAuthFlowsType, PasswordPolicyType, PreventUserExistenceErrorTypes,
    RecoveryOptionNameType, RecoveryOptionType, SoftwareTokenMfaConfigType, TimeUnitsType, TokenValidityUnitsType,
    UserPoolMfaType, UserPoolPolicyType, UsernameAttributeType, UsernameConfigurationType,
};
use rampart_kernel::schema::{resource_name, schema};
use secrecy::SecretString;

use super::unavailable;
use crate::IdentityError;

/// The user pool and app client `rampart bootstrap` made (or found).
#[derive(Debug)]
pub struct ProvisionedPool {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// Creates the schema's user pool `<prefix>-users` and app client, or finds them by name.
pub async fn provision_user_pool(client: &Client, prefix: &str) -> Result<ProvisionedPool, IdentityError> {
    let definition = &schema().user_pool;
    let pool_name = resource_name(prefix, &definition.name);
    let client_name = resource_name(prefix, &definition.client_name);

    // Every page: an account with more than a page of pools still finds its own.
    let mut next_token = None;
    let existing = loop {
        let page = client
            .list_user_pools()
            .max_results(60)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(unavailable)?;
        let found = page
            .user_pools()
            .iter()
            .find(|p| p.name() == Some(pool_name.as_str()))
            .and_then(|p| p.id());
        if let Some(id) = found {
            break Some(id.to_owned());
        }
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => break None,
        }
    };
    let user_pool_id = match existing {
        Some(id) => id,
        None => {
            let policy = PasswordPolicyType::builder()
                .minimum_length(i32::try_from(definition.password_minimum_length).unwrap_or(12))
                // NIST SP 800-63B: length and a block list, not composition rules.
                .require_lowercase(false)
                .require_uppercase(false)
                .require_numbers(false)
                .require_symbols(false)
                .temporary_password_validity_days(3)
                .build();
            let created = client
                .create_user_pool()
                .pool_name(&pool_name)
                .policies(UserPoolPolicyType::builder().password_policy(policy).build())
                .username_attributes(UsernameAttributeType::Email)
                .username_configuration(
                    UsernameConfigurationType::builder()
                        .case_sensitive(false)
                        .build()
                        .map_err(unavailable)?,
                )
                // Cognito sends no codes of its own: see the module docs.
                .account_recovery_setting(
                    AccountRecoverySettingType::builder()
                        .recovery_mechanisms(
                            RecoveryOptionType::builder()
                                .name(RecoveryOptionNameType::AdminOnly)
                                .priority(1)
                                .build()
                                .map_err(unavailable)?,
                        )
                        .build(),
                )
                .mfa_configuration(UserPoolMfaType::from(definition.mfa.as_str()))
                .send()
                .await
                .map_err(unavailable)?;
            let id = created
                .user_pool()
                .and_then(|p| p.id())
                .ok_or_else(|| IdentityError::Unavailable("Cognito returned no pool id".into()))?
                .to_owned();
            client
                .set_user_pool_mfa_config()
                .user_pool_id(&id)
                .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
                .mfa_configuration(UserPoolMfaType::from(definition.mfa.as_str()))
                .send()
                .await
                .map_err(unavailable)?;
            id
        }
    };

    let clients = client
        .list_user_pool_clients()
        .user_pool_id(&user_pool_id)
        .max_results(60)
        .send()
        .await
        .map_err(unavailable)?;
    let existing = clients
        .user_pool_clients()
        .iter()
        .find(|c| c.client_name() == Some(client_name.as_str()))
        .and_then(|c| c.client_id())
        .map(str::to_owned);
    let client_id = match existing {
        Some(id) => id,
        None => {
            let flows = definition
                .explicit_auth_flows
                .iter()
                .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
                .collect();
            let created = client
                .create_user_pool_client()
                .user_pool_id(&user_pool_id)
                .client_name(&client_name)
                .generate_secret(definition.generate_client_secret)
                .set_explicit_auth_flows(Some(flows))
                .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
                .enable_token_revocation(true)
                // Terraform's identity module defaults: 15-minute access and ID tokens,
                // a one-hour refresh token.
                .access_token_validity(15)
                .id_token_validity(15)
                .refresh_token_validity(60)
                .token_validity_units(
                    TokenValidityUnitsType::builder()
                        .access_token(TimeUnitsType::Minutes)
                        .id_token(TimeUnitsType::Minutes)
                        .refresh_token(TimeUnitsType::Minutes)
                        .build(),
                )
                .send()
                .await
                .map_err(unavailable)?;
            created
                .user_pool_client()
                .and_then(|c| c.client_id())
                .ok_or_else(|| IdentityError::Unavailable("Cognito returned no client id".into()))?
                .to_owned()
        }
    };
    let described = client
        .describe_user_pool_client()
        .user_pool_id(&user_pool_id)
        .client_id(&client_id)
        .send()
        .await
        .map_err(unavailable)?;
    let client_secret = described
        .user_pool_client()
        .and_then(|c| c.client_secret())
        .map(|s| SecretString::from(s.to_owned()));
    Ok(ProvisionedPool {
        user_pool_id,
        client_id,
        client_secret,
    })
}
