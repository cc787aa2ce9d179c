# The dev environment: everything schema/platform.json describes, named
# "<resource_prefix>-...". Later issues add network, edge, api, eks, pipeline
# and observability modules here.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "rampart"
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}

locals {
  schema = jsondecode(file("${path.module}/../../../schema/platform.json"))

  cognito_client_secret = "auth/cognito-client-secret"

  # Environment of the deployed functions and services. Every key must be a
  # name in the schema's "environment" (checked below and by scripts/check_iac.py).
  function_environment = {
    RAMPART_BACKEND                  = "aws"
    RAMPART_RESOURCE_PREFIX          = var.resource_prefix
    RAMPART_AWS__USER_POOL_ID        = module.identity.user_pool_id
    RAMPART_AWS__USER_POOL_CLIENT_ID = module.identity.user_pool_client_id
    RAMPART_MAIL__SENDER             = var.mail_sender
    RAMPART_MAIL__CONFIGURATION_SET  = module.mail.configuration_set_name
  }

  # "Rampart <no-reply@example.com>" or "no-reply@example.com" -> "example.com".
  mail_sender_domain = lower(regex("@([^>[:space:]]+)>?$", var.mail_sender)[0])
}

module "keys" {
  source = "../../modules/keys"

  resource_prefix = var.resource_prefix
  kms_keys        = local.schema.kms_keys
  key_users       = var.kms_key_users
}

module "data" {
  source = "../../modules/data"

  resource_prefix = var.resource_prefix
  tables          = local.schema.tables
  kms_key_arn     = module.keys.storage_kms_key_arn
}

module "secrets" {
  source = "../../modules/secrets"

  resource_prefix         = var.resource_prefix
  secrets                 = local.schema.secrets
  kms_key_arn             = module.keys.storage_kms_key_arn
  recovery_window_in_days = 7
}

module "identity" {
  source = "../../modules/identity"

  resource_prefix                         = var.resource_prefix
  user_pool                               = local.schema.user_pool
  client_secret_secretsmanager_secret_arn = module.secrets.secretsmanager_secret_arns[local.cognito_client_secret]
  user_pool_tier                          = var.cognito_user_pool_tier
  threat_protection_mode                  = var.cognito_threat_protection_mode
}

module "mail" {
  source = "../../modules/mail"

  resource_prefix = var.resource_prefix
  sender_domain   = local.mail_sender_domain
}
