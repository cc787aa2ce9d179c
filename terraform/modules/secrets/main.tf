# Secrets Manager secrets (var.secrets, the "secrets" of schema/platform.json in
# this repository's environments). This module creates the containers, and the
# values of the secrets Rampart generates itself ("generated": true); the other
# values are written by whatever owns them (the identity module writes the
# Cognito app client secret).

resource "aws_secretsmanager_secret" "this" {
  # Rotation is attached where the rotation function exists: terraform/platform
  # gives every generated secret (core/cursor-key) to functions/rotate-secret
  # (aws_secretsmanager_secret_rotation.generated), which checkov cannot see from
  # here. The Cognito app client secret needs a function that adds a second client
  # secret in Cognito, stages it and retires the old one; until then it is rotated
  # by replacing the app client.
  #checkov:skip=CKV2_AWS_57:Generated secrets are rotated by terraform/platform (outside this module); the Cognito client secret is rotated by replacing the app client (see comment above).
  for_each = var.secrets

  name                    = "${var.resource_prefix}/${each.key}"
  description             = each.value.purpose
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = merge(var.tags, { Name = "${var.resource_prefix}/${each.key}" })
}

locals {
  generated = { for name, secret in var.secrets : name => secret if secret.generated }
}

# A generated secret's value is random text written once, through a write-only
# argument, so it is never kept in the Terraform state or plan.
ephemeral "random_password" "generated" {
  for_each = local.generated

  length  = 64
  special = false
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = local.generated

  secret_id                = aws_secretsmanager_secret.this[each.key].id
  secret_string_wo         = ephemeral.random_password.generated[each.key].result
  secret_string_wo_version = 1
}
