# KMS keys (var.kms_keys, the "kms_keys" of schema/platform.json in this
# repository's environments), plus one storage key that encrypts this platform's
# tables and secrets at rest. The storage key is a Terraform-only concern
# (DynamoDB and Secrets Manager use it transparently), so it is not in the schema.

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"

  # What a key user may do, by key usage. No administration, no key policy edits.
  usage_actions = {
    SIGN_VERIFY     = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"]
    ENCRYPT_DECRYPT = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
  }

  # The account root administers the key; this is what lets IAM policies in this
  # account grant use of the key. No other principal and no wildcard principal.
  root_statement = {
    Sid       = "AccountRootAdministersKey"
    Effect    = "Allow"
    Principal = { AWS = local.account_root }
    Action    = "kms:*"
    Resource  = "*"
  }

  # Only the listed administrators may rewrite a key's policy (which would undo
  # every statement below) or schedule its deletion (which would destroy every
  # token key or data key under it), whatever IAM policies say.
  admin_statement = {
    Sid       = "OnlyPolicyAdministratorsChangeOrDeleteKey"
    Effect    = "Deny"
    Principal = { AWS = "*" }
    Action    = ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]
    Resource  = "*"
    Condition = { ArnNotEquals = { "aws:PrincipalArn" = sort(var.policy_admin_arns) } }
  }

  # The cryptographic operations of each key usage: a key with users denies them to
  # every other principal, the account root and administrators included, so only
  # (say) the auth function's role can sign tokens, whatever IAM policies say.
  crypto_actions = {
    SIGN_VERIFY     = ["kms:Sign", "kms:Verify"]
    ENCRYPT_DECRYPT = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
  }

  # Users are matched by aws:PrincipalArn rather than named as principals: KMS refuses
  # a policy naming a role that does not exist yet, and the roles are created after
  # the keys (their policies name the keys).
  key_policies = {
    for name, key in var.kms_keys : name => jsonencode({
      Version = "2012-10-17"
      # Both arguments are tuples, so the statement shapes need not unify.
      Statement = concat(
        [local.root_statement, local.admin_statement],
        flatten([for arns in [lookup(var.key_users, name, [])] : [
          {
            Sid       = "KeyUsers"
            Effect    = "Allow"
            Principal = { AWS = local.account_root }
            Action    = local.usage_actions[key.key_usage]
            Resource  = "*"
            Condition = { ArnEquals = { "aws:PrincipalArn" = sort(arns) } }
          },
          {
            Sid       = "NoOtherUsers"
            Effect    = "Deny"
            Principal = { AWS = "*" }
            Action    = local.crypto_actions[key.key_usage]
            Resource  = "*"
            Condition = { ArnNotEquals = { "aws:PrincipalArn" = sort(arns) } }
          },
        ] if length(arns) > 0]),
      )
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

resource "aws_kms_key" "this" {
  for_each = var.kms_keys

  description              = "${var.resource_prefix}-${each.key}: ${each.value.purpose}"
  customer_master_key_spec = each.value.key_spec
  key_usage                = each.value.key_usage
  deletion_window_in_days  = var.deletion_window_in_days
  # KMS rotates only symmetric keys. Asymmetric signing keys are rotated by
  # creating a new key (new kid) and keeping the old one in the JWKS until
  # tokens signed with it have expired.
  enable_key_rotation     = each.value.key_spec == "SYMMETRIC_DEFAULT"
  rotation_period_in_days = each.value.key_spec == "SYMMETRIC_DEFAULT" ? var.rotation_period_in_days : null
  policy                  = local.key_policies[each.key]

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${each.key}" })

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(var.key_users) : contains(keys(var.kms_keys), name)])
      error_message = "Every key of var.key_users must name a key of var.kms_keys."
    }
  }
}

resource "aws_kms_alias" "this" {
  for_each = var.kms_keys

  name          = "alias/${var.resource_prefix}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}

resource "aws_kms_key" "storage" {
  description             = "${var.resource_prefix}-storage: encrypts DynamoDB tables and Secrets Manager secrets at rest"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.deletion_window_in_days
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.root_statement, local.admin_statement]
  })

  tags = merge(var.tags, { Name = "${var.resource_prefix}-storage" })

  lifecycle {
    precondition {
      condition     = length(setintersection(keys(var.kms_keys), ["storage", "logs"])) == 0
      error_message = "var.kms_keys names a key \"storage\" or \"logs\", which would collide with this module's own key aliases."
    }
  }
}

resource "aws_kms_alias" "storage" {
  name          = "alias/${var.resource_prefix}-storage"
  target_key_id = aws_kms_key.storage.key_id
}

# Encrypts this platform's CloudWatch log groups (functions, API access logs, flow
# logs, EKS control plane) and the functions' dead-letter queues. CloudWatch Logs
# may use it only for log groups of this account and region.
resource "aws_kms_key" "logs" {
  description             = "${var.resource_prefix}-logs: encrypts CloudWatch log groups and dead-letter queues"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.deletion_window_in_days
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      local.root_statement,
      local.admin_statement,
      {
        Sid       = "CloudWatchLogsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.region}.amazonaws.com" }
        Action    = ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:*"
          }
        }
      },
    ]
  })

  tags = merge(var.tags, { Name = "${var.resource_prefix}-logs" })
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.resource_prefix}-logs"
  target_key_id = aws_kms_key.logs.key_id
}
