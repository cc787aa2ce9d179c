//! Provisioning: the schema's user pool and app client, created or found by name, as
//! `rampart bootstrap` and the tests on moto need them (Terraform creates them in AWS). Every
//! setting comes from the schema's `user_pool`, as it does for Terraform's identity module and
//! the LocalStack script.

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

/// A schema number as the `i32` the SDK takes; only a broken schema makes this fail.
fn sdk_number(field: &str, value: u32) -> Result<i32, IdentityError> {
    i32::try_from(value)
        .map_err(|_| IdentityError::Unavailable(format!("schema user_pool.{field} = {value} is out of range")))
}

/// Creates the schema's user pool `<prefix>-users` and app client, or finds them by name.
pub async fn provision_user_pool(client: &Client, prefix: &str) -> Result<ProvisionedPool, IdentityError> {
    let definition = &schema().user_pool;
    let pool_name = resource_name(prefix, &definition.name);
    let client_name = resource_name(prefix, &definition.client_name);

    // Every page: an account with more than a page of pools still finds its own.
    let mut pools = client.list_user_pools().max_results(60).into_paginator().items().send();
    let mut existing = None;
    while let Some(pool) = pools.next().await {
        let pool = pool.map_err(unavailable)?;
        if pool.name() == Some(pool_name.as_str()) {
            existing = pool.id().map(str::to_owned);
            break;
        }
    }
    let user_pool_id = match existing {
        Some(id) => id,
        None => {
            // NIST SP 800-63B: length and a block list, not composition rules.
            let policy = PasswordPolicyType::builder()
                .minimum_length(sdk_number(
                    "password_minimum_length",
                    definition.password_minimum_length,
                )?)
                .require_lowercase(definition.password_require_lowercase)
                .require_uppercase(definition.password_require_uppercase)
                .require_numbers(definition.password_require_numbers)
                .require_symbols(definition.password_require_symbols)
                .temporary_password_validity_days(sdk_number(
                    "temporary_password_validity_days",
                    definition.temporary_password_validity_days,
                )?)
                .build();
            let username_attributes = definition
                .username_attributes
                .iter()
                .map(|a| UsernameAttributeType::from(a.as_str()))
                .collect();
            // Cognito sends no codes of its own (see the module docs): recovery by administrator
            // only. The schema lists the mechanisms in order of priority, 1 first.
            let recovery_mechanisms = definition
                .account_recovery_mechanisms
                .iter()
                .zip(1..)
                .map(|(name, priority)| {
                    RecoveryOptionType::builder()
                        .name(RecoveryOptionNameType::from(name.as_str()))
                        .priority(priority)
                        .build()
                        .map_err(unavailable)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let created = client
                .create_user_pool()
                .pool_name(&pool_name)
                .policies(UserPoolPolicyType::builder().password_policy(policy).build())
                .set_username_attributes(Some(username_attributes))
                .username_configuration(
                    UsernameConfigurationType::builder()
                        .case_sensitive(definition.username_case_sensitive)
                        .build()
                        .map_err(unavailable)?,
                )
                .account_recovery_setting(
                    AccountRecoverySettingType::builder()
                        .set_recovery_mechanisms(Some(recovery_mechanisms))
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
            // TOTP whenever MFA is on or optional, as Terraform's identity module and the
            // LocalStack script set it.
            if definition.mfa != "OFF" {
                client
                    .set_user_pool_mfa_config()
                    .user_pool_id(&id)
                    .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
                    .mfa_configuration(UserPoolMfaType::from(definition.mfa.as_str()))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            id
        }
    };

    // Every page, as for the pools.
    let mut clients = client
        .list_user_pool_clients()
        .user_pool_id(&user_pool_id)
        .max_results(60)
        .into_paginator()
        .items()
        .send();
    let mut existing = None;
    while let Some(listed) = clients.next().await {
        let listed = listed.map_err(unavailable)?;
        if listed.client_name() == Some(client_name.as_str()) {
            existing = listed.client_id().map(str::to_owned);
            break;
        }
    }
    let client_id = match existing {
        Some(id) => id,
        None => {
            let flows = definition
                .explicit_auth_flows
                .iter()
                .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
                .collect();
            let units = &definition.token_validity_units;
            let created = client
                .create_user_pool_client()
                .user_pool_id(&user_pool_id)
                .client_name(&client_name)
                .generate_secret(definition.generate_client_secret)
                .set_explicit_auth_flows(Some(flows))
                .prevent_user_existence_errors(PreventUserExistenceErrorTypes::from(
                    definition.prevent_user_existence_errors.as_str(),
                ))
                .enable_token_revocation(definition.enable_token_revocation)
                .access_token_validity(sdk_number("access_token_validity", definition.access_token_validity)?)
                .id_token_validity(sdk_number("id_token_validity", definition.id_token_validity)?)
                .refresh_token_validity(sdk_number("refresh_token_validity", definition.refresh_token_validity)?)
                .token_validity_units(
                    TokenValidityUnitsType::builder()
                        .access_token(TimeUnitsType::from(units.access_token.as_str()))
                        .id_token(TimeUnitsType::from(units.id_token.as_str()))
                        .refresh_token(TimeUnitsType::from(units.refresh_token.as_str()))
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
