output "function_environment" {
  description = "RAMPART_* environment variables for the deployed functions and services, keyed by variable name."
  value       = local.function_environment

  precondition {
    condition     = alltrue([for name in keys(local.function_environment) : contains(keys(local.schema.environment), name)])
    error_message = "function_environment has a variable that schema/platform.json \"environment\" does not name."
  }
}

output "user_pool_id" {
  description = "ID of the Cognito user pool."
  value       = module.identity.user_pool_id
}

output "user_pool_client_id" {
  description = "ID of the Cognito app client."
  value       = module.identity.user_pool_client_id
}

output "dynamodb_table_names" {
  description = "Physical table names, keyed by schema name."
  value       = module.data.dynamodb_table_names
}

output "kms_alias_names" {
  description = "KMS aliases, keyed by schema name."
  value       = module.keys.kms_alias_names
}

output "secretsmanager_secret_names" {
  description = "Secrets Manager secret names, keyed by schema name."
  value       = module.secrets.secretsmanager_secret_names
}

output "mail_dkim_tokens" {
  description = "Easy DKIM tokens of the sender domain: publish <token>._domainkey.<domain> CNAME <token>.dkim.amazonses.com for each before mail can be sent."
  value       = module.mail.dkim_tokens
}
