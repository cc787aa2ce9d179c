# The whole platform of one environment (dev, staging or prod): every module,
# wired. The environments differ only in their variables:
#   terraform/environments/<env>/terraform.tfvars and backend.hcl
# (see docs/deploy.md). The pipeline (terraform/delivery) applies it per stage.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "rampart"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

# CloudFront's web ACL, certificate and their logs live in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = {
      Project     = "rampart"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  schema = jsondecode(file("${path.module}/../../schema/platform.json"))

  cognito_client_secret = "auth/cognito-client-secret"

  # Role names are fixed by the modules (functions: <prefix>-<crate>-function,
  # eks: <prefix>-<service>-irsa), so the key policies can name the roles before
  # they exist: the roles' own policies name the keys.
  role_arn_prefix = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role"
  key_users = {
    "token-signing" = ["${local.role_arn_prefix}/${var.resource_prefix}-auth-function"]
    "sealing"       = ["${local.role_arn_prefix}/${var.resource_prefix}-auth-function"]
    "data"          = ["${local.role_arn_prefix}/${var.resource_prefix}-core-irsa"]
  }

  # The public address clients, the authorizer and the services use: tokens name
  # it as their issuer, and its /.well-known documents are served through the edge.
  issuer = "https://${var.domain_name}"

  # Environment of the deployed functions. Every key must be a name in the
  # schema's "environment" (checked below and by scripts/check_iac.py).
  function_environment = {
    RAMPART_BACKEND                  = "aws"
    RAMPART_RESOURCE_PREFIX          = var.resource_prefix
    RAMPART_AWS__USER_POOL_ID        = module.identity.user_pool_id
    RAMPART_AWS__USER_POOL_CLIENT_ID = module.identity.user_pool_client_id
    RAMPART_MAIL__SENDER             = var.mail_sender
    RAMPART_MAIL__CONFIGURATION_SET  = module.mail.configuration_set_name
    RAMPART_TELEMETRY__LOG_FORMAT    = "json"
    RAMPART_TOKENS__ISSUER           = local.issuer
    # The viewer's address (edge module: CloudFront writes it; the API's web ACL admits only
    # CloudFront), not the edge's, for the auth API's throttles and audit log.
    RAMPART_HTTP__CLIENT_ADDRESS_HEADER = "cloudfront-viewer-address"
  }

  # "Rampart <no-reply@example.com>" or "no-reply@example.com" -> "example.com".
  mail_sender_domain = lower(regex("@([^>[:space:]]+)>?$", var.mail_sender)[0])

  # Zips from scripts/build-lambdas (or the pipeline's build artifact), one per
  # crate: <dir>/rampart-<crate>/bootstrap.zip, cargo lambda's layout.
  lambda_zip_dir = coalesce(var.lambda_zip_dir, "${path.module}/../../target/lambda/${var.lambda_architecture}")

  # The secrets Rampart generates itself, rotated by the rotate-secret function.
  generated_secrets = [for name, secret in local.schema.secrets : name if try(secret.generated, false)]
}

locals {
  # Least-privilege grants of each Lambda's role, keyed by crate in functions/:
  # exactly the AWS calls its code makes (scripts/check_iam.py checks them
  # against the Rust code; run it after changing either).
  function_policy_statements = {
    auth = [
      {
        # rampart-store (sessions, refresh tokens, throttling, key ring on
        # "auth"; audit events on "audit"): GetItem, BatchGetItem, PutItem,
        # DeleteItem, Query (also on gsi1), and TransactWriteItems, which IAM
        # authorises as PutItem, DeleteItem and ConditionCheckItem.
        sid     = "AuthAndAuditItems"
        actions = ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
        resources = [
          module.data.dynamodb_table_arns["auth"],
          "${module.data.dynamodb_table_arns["auth"]}/index/*",
          module.data.dynamodb_table_arns["audit"],
          "${module.data.dynamodb_table_arns["audit"]}/index/*",
        ]
      },
      {
        # The store's readiness probe (/readyz) describes the auth table.
        sid       = "StoreReadiness"
        actions   = ["dynamodb:DescribeTable"]
        resources = [module.data.dynamodb_table_arns["auth"]]
      },
      {
        # rampart-identity's Cognito adapter: the IAM-authorised admin calls.
        # InitiateAuth, SignUp, RespondToAuthChallenge, ChangePassword,
        # AssociateSoftwareToken, VerifySoftwareToken and SetUserMFAPreference
        # are not IAM-authorised (public or access-token calls), so not granted.
        sid       = "UserPoolAdmin"
        actions   = ["cognito-idp:AdminConfirmSignUp", "cognito-idp:AdminDeleteUser", "cognito-idp:AdminGetUser", "cognito-idp:AdminSetUserPassword", "cognito-idp:AdminUpdateUserAttributes", "cognito-idp:AdminUserGlobalSignOut"]
        resources = [module.identity.user_pool_arn]
      },
      {
        # rampart-tokens' KMS signer: the public key for the JWKS, Sign for
        # each access token.
        sid       = "SignAccessTokens"
        actions   = ["kms:GetPublicKey", "kms:Sign"]
        resources = [module.keys.kms_key_arns["token-signing"]]
      },
      {
        # rampart-seal: the Cognito refresh tokens kept with sessions.
        sid       = "SealSessionCredentials"
        actions   = ["kms:Decrypt", "kms:Encrypt"]
        resources = [module.keys.kms_key_arns["sealing"]]
      },
      {
        # The app client secret, for SECRET_HASH.
        sid       = "ReadClientSecret"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [module.secrets.secretsmanager_secret_arns["auth/cognito-client-secret"]]
      },
      {
        # Secrets Manager decrypts that secret under the storage key with the
        # caller's permissions: only through Secrets Manager, only that secret
        # (the storage key also protects the tables and every other secret).
        sid        = "DecryptSecrets"
        actions    = ["kms:Decrypt"]
        resources  = [module.keys.storage_kms_key_arn]
        conditions = {
          StringEquals = {
            "kms:ViaService"                  = ["secretsmanager.${var.aws_region}.amazonaws.com"]
            "kms:EncryptionContext:SecretARN" = [module.secrets.secretsmanager_secret_arns["auth/cognito-client-secret"]]
          }
        }
      },
      {
        # rampart-mailer: codes and security notices, from the sender domain,
        # through the configuration set.
        sid       = "SendMail"
        actions   = ["ses:SendEmail"]
        resources = [module.mail.email_identity_arn, module.mail.configuration_set_arn]
      },
    ]

    # Verifies tokens against the issuer's JWKS over HTTPS: no AWS call.
    authorizer = []

    "rotate-secret" = [
      {
        # AWS's four rotation steps on the secrets Rampart generates.
        sid       = "RotateGeneratedSecrets"
        actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
        resources = [for name, secret in local.schema.secrets : module.secrets.secretsmanager_secret_arns[name] if try(secret.generated, false)]
      },
      {
        # Reading and writing a version under the storage key: only through
        # Secrets Manager, only for the secrets it rotates.
        sid        = "SecretsKey"
        actions    = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources  = [module.keys.storage_kms_key_arn]
        conditions = {
          StringEquals = {
            "kms:ViaService"                  = ["secretsmanager.${var.aws_region}.amazonaws.com"]
            "kms:EncryptionContext:SecretARN" = [for name, secret in local.schema.secrets : module.secrets.secretsmanager_secret_arns[name] if try(secret.generated, false)]
          }
        }
      },
    ]
  }

  # Least-privilege grants of each EKS service's IRSA role (modules/eks).
  service_policy_statements = {
    core = [
      {
        # rampart-store on core's table: GetItem, BatchGetItem, PutItem,
        # DeleteItem, Query (also on gsi1), TransactWriteItems (PutItem,
        # DeleteItem, ConditionCheckItem).
        sid     = "CoreItems"
        actions = ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
        resources = [
          module.data.dynamodb_table_arns["core"],
          "${module.data.dynamodb_table_arns["core"]}/index/*",
        ]
      },
      {
        # The store's readiness probe describes core's table.
        sid       = "StoreReadiness"
        actions   = ["dynamodb:DescribeTable"]
        resources = [module.data.dynamodb_table_arns["core"]]
      },
      {
        # rampart-envelope: per-tenant data keys wrapped by the data key.
        sid       = "TenantDataKeys"
        actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
        resources = [module.keys.kms_key_arns["data"]]
      },
      {
        # The list-cursor HMAC key (AWSCURRENT and AWSPREVIOUS).
        sid       = "ReadCursorKey"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [module.secrets.secretsmanager_secret_arns["core/cursor-key"]]
      },
      {
        # Only through Secrets Manager, only the cursor key.
        sid        = "DecryptSecrets"
        actions    = ["kms:Decrypt"]
        resources  = [module.keys.storage_kms_key_arn]
        conditions = {
          StringEquals = {
            "kms:ViaService"                  = ["secretsmanager.${var.aws_region}.amazonaws.com"]
            "kms:EncryptionContext:SecretARN" = [module.secrets.secretsmanager_secret_arns["core/cursor-key"]]
          }
        }
      },
    ]

    # Verifies tokens (JWKS over HTTPS) and gets its certificates from Vault:
    # no AWS call.
    "auth-proxy" = []
  }
}

module "keys" {
  source = "../modules/keys"

  resource_prefix = var.resource_prefix
  kms_keys        = local.schema.kms_keys
  key_users       = local.key_users
  # The environment's administrators: its deploy role and the break-glass role.
  policy_admin_arns = var.cluster_admin_principal_arns
}

module "data" {
  source = "../modules/data"

  resource_prefix = var.resource_prefix
  tables          = local.schema.tables
  kms_key_arn     = module.keys.storage_kms_key_arn
}

module "secrets" {
  source = "../modules/secrets"

  resource_prefix         = var.resource_prefix
  secrets                 = local.schema.secrets
  kms_key_arn             = module.keys.storage_kms_key_arn
  recovery_window_in_days = 7
}

module "identity" {
  source = "../modules/identity"

  resource_prefix                         = var.resource_prefix
  user_pool                               = local.schema.user_pool
  client_secret_secretsmanager_secret_arn = module.secrets.secretsmanager_secret_arns[local.cognito_client_secret]
  user_pool_tier                          = var.cognito_user_pool_tier
  threat_protection_mode                  = var.cognito_threat_protection_mode
}

module "mail" {
  source = "../modules/mail"

  resource_prefix = var.resource_prefix
  sender_domain   = local.mail_sender_domain
}

module "network" {
  source = "../modules/network"

  iam_permissions_boundary_arn = var.iam_permissions_boundary_arn
  resource_prefix              = var.resource_prefix
  vpc_cidr_block               = var.vpc_cidr_block
  az_count                     = var.az_count
  single_nat_gateway           = var.single_nat_gateway
  log_retention_in_days        = var.log_retention_in_days
  log_kms_key_arn              = module.keys.logs_kms_key_arn
  endpoint_principal_accounts  = compact([var.delivery_account_id])
}

module "functions" {
  source = "../modules/functions"

  iam_permissions_boundary_arn = var.iam_permissions_boundary_arn
  resource_prefix              = var.resource_prefix
  functions                    = {
    for name, statements in local.function_policy_statements : name => {
      zip_path                       = "${local.lambda_zip_dir}/rampart-${name}/bootstrap.zip"
      environment                    = local.function_environment
      memory_size                    = var.lambda_memory_size
      timeout                        = 10
      reserved_concurrent_executions = var.lambda_reserved_concurrency
      policy_statements              = statements
    }
  }
  architecture          = var.lambda_architecture
  log_retention_in_days = var.log_retention_in_days
  log_kms_key_arn       = module.keys.logs_kms_key_arn
  vpc_id                = module.network.vpc_id
  vpc_subnet_ids        = module.network.private_subnet_ids
}

# Secrets Manager invokes rotate-secret for each secret Rampart generates.
resource "aws_lambda_permission" "rotate_secret" {
  for_each = toset(local.generated_secrets)

  statement_id  = "SecretsManagerRotates${replace(title(replace(each.key, "/[^a-zA-Z0-9]/", " ")), " ", "")}"
  action        = "lambda:InvokeFunction"
  function_name = module.functions.lambda_function_names["rotate-secret"]
  principal     = "secretsmanager.amazonaws.com"
  source_arn    = module.secrets.secretsmanager_secret_arns[each.key]
}

resource "aws_secretsmanager_secret_rotation" "generated" {
  for_each = toset(local.generated_secrets)

  secret_id           = module.secrets.secretsmanager_secret_arns[each.key]
  rotation_lambda_arn = module.functions.lambda_function_arns["rotate-secret"]

  rotation_rules {
    automatically_after_days = var.secret_rotation_days
  }

  # After the secret's first value is written (module.secrets), so the first
  # rotation never races it.
  depends_on = [aws_lambda_permission.rotate_secret, module.secrets]
}

module "eks" {
  source = "../modules/eks"

  iam_permissions_boundary_arn = var.iam_permissions_boundary_arn
  resource_prefix              = var.resource_prefix
  vpc_id                       = module.network.vpc_id
  private_subnet_ids           = module.network.private_subnet_ids
  kubernetes_version           = var.kubernetes_version
  cluster_admin_principal_arns = var.cluster_admin_principal_arns
  # The private API endpoint is reached from the private subnets only, where the
  # pipeline's Apply projects run; not from the public ones (NAT gateways).
  endpoint_ingress_cidr_blocks = module.network.private_subnet_cidr_blocks
  service_policy_statements    = local.service_policy_statements
  node_instance_types          = var.node_instance_types
  node_ami_type                = var.node_ami_type
  node_min_size                = var.node_min_size
  node_desired_size            = var.node_desired_size
  node_max_size                = var.node_max_size
  log_retention_in_days        = var.log_retention_in_days
  log_kms_key_arn              = module.keys.logs_kms_key_arn
}

module "api" {
  source = "../modules/api"

  iam_permissions_boundary_arn       = var.iam_permissions_boundary_arn
  resource_prefix                    = var.resource_prefix
  auth_function_name                 = module.functions.lambda_function_names["auth"]
  auth_function_invoke_arn           = module.functions.lambda_function_invoke_arns["auth"]
  authorizer_function_name           = module.functions.lambda_function_names["authorizer"]
  authorizer_function_invoke_arn     = module.functions.lambda_function_invoke_arns["authorizer"]
  vpc_id                             = module.network.vpc_id
  private_subnet_ids                 = module.network.private_subnet_ids
  vpc_cidr_block                     = module.network.vpc_cidr_block
  node_group_autoscaling_group_names = module.eks.node_group_autoscaling_group_names
  node_security_group_id             = module.eks.node_security_group_id
  manage_api_gateway_account         = var.manage_api_gateway_account
  log_retention_in_days              = var.log_retention_in_days
  log_kms_key_arn                    = module.keys.logs_kms_key_arn
}

module "edge" {
  source = "../modules/edge"
  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  resource_prefix            = var.resource_prefix
  origin_domain_name         = module.api.api_gateway_domain_name
  origin_path                = "/${module.api.api_gateway_stage_name}"
  origin_verify_header_name  = module.api.origin_verify_header_name
  origin_verify_header_value = module.api.origin_verify_header_value
  domain_names               = [var.domain_name]
  acm_certificate_arn        = var.acm_certificate_arn
  # The services poll the revocation feed and JWKS through the edge from the NAT
  # addresses: they must not trip the per-IP rate limits.
  rate_limit_exempt_cidrs = [for ip in module.network.nat_gateway_public_ips : "${ip}/32"]
  enable_shield_advanced  = var.enable_shield_advanced
  log_retention_in_days   = var.log_retention_in_days
}

module "observability" {
  source = "../modules/observability"

  resource_prefix             = var.resource_prefix
  alarm_email                 = var.alarm_email
  lambda_function_names       = module.functions.lambda_function_names
  dead_letter_queue_names     = module.functions.dead_letter_queue_names
  auth_log_group_name         = module.functions.cloudwatch_log_group_names["auth"]
  api_gateway_name            = module.api.api_gateway_name
  api_gateway_stage_name      = module.api.api_gateway_stage_name
  wafv2_web_acl_name          = module.edge.wafv2_web_acl_name
  dynamodb_table_names        = module.data.dynamodb_table_names
  eks_cluster_name            = module.eks.eks_cluster_name
  cloudfront_certificate_arns = [var.acm_certificate_arn]
}
