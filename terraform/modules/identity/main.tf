# The Cognito user pool and app client described by var.user_pool (the
# "user_pool" of schema/platform.json in this repository's environments). Users sign in with their e-mail address; the auth function
# calls Cognito with the app client's secret (SECRET_HASH), which this module
# stores in the Secrets Manager secret given by the caller.
#
# Cognito sends no mail: its six-digit confirmation and reset codes are too
# guessable for Rampart's bound (docs/security.md), so the auth function mails
# its own 40-bit codes through SES and then calls AdminConfirmSignUp or
# AdminSetUserPassword. Hence no auto-verified attribute and recovery by
# administrator only (which also shuts Cognito's own ForgotPassword).

locals {
  pool = var.user_pool
}

resource "aws_cognito_user_pool" "this" {
  name                = "${var.resource_prefix}-${local.pool.name}"
  user_pool_tier      = var.user_pool_tier
  deletion_protection = "ACTIVE"

  username_attributes = local.pool.username_attributes

  username_configuration {
    case_sensitive = local.pool.username_case_sensitive
  }

  # NIST SP 800-63B: length and a block list (the auth function's), not
  # composition rules; the schema says which, for provision_user_pool and the
  # LocalStack script too.
  password_policy {
    minimum_length                   = local.pool.password_minimum_length
    require_lowercase                = local.pool.password_require_lowercase
    require_uppercase                = local.pool.password_require_uppercase
    require_numbers                  = local.pool.password_require_numbers
    require_symbols                  = local.pool.password_require_symbols
    temporary_password_validity_days = local.pool.temporary_password_validity_days
  }

  mfa_configuration = local.pool.mfa

  software_token_mfa_configuration {
    enabled = local.pool.mfa != "OFF"
  }

  # The schema lists the mechanisms in order of priority (1 first).
  account_recovery_setting {
    dynamic "recovery_mechanism" {
      for_each = local.pool.account_recovery_mechanisms

      content {
        name     = recovery_mechanism.value
        priority = recovery_mechanism.key + 1
      }
    }
  }

  admin_create_user_config {
    allow_admin_create_user_only = false
  }

  # Threat protection (formerly "advanced security"): compromised-credential
  # checks and adaptive authentication. Requires the PLUS feature plan.
  user_pool_add_ons {
    advanced_security_mode = var.threat_protection_mode
  }

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${local.pool.name}" })

  lifecycle {
    precondition {
      condition     = var.threat_protection_mode == "OFF" || var.user_pool_tier == "PLUS"
      error_message = "Cognito threat protection (AUDIT or ENFORCED) requires user_pool_tier = \"PLUS\"."
    }
  }
}

resource "aws_cognito_user_pool_client" "this" {
  name         = "${var.resource_prefix}-${local.pool.client_name}"
  user_pool_id = aws_cognito_user_pool.this.id

  generate_secret               = local.pool.generate_client_secret
  explicit_auth_flows           = local.pool.explicit_auth_flows
  prevent_user_existence_errors = local.pool.prevent_user_existence_errors
  enable_token_revocation       = local.pool.enable_token_revocation
  supported_identity_providers  = ["COGNITO"]

  # Rampart issues its own access and refresh tokens after Cognito has
  # authenticated the user, so Cognito's tokens only need to live long enough
  # for that exchange.
  auth_session_validity  = 3
  access_token_validity  = local.pool.access_token_validity
  id_token_validity      = local.pool.id_token_validity
  refresh_token_validity = local.pool.refresh_token_validity

  token_validity_units {
    access_token  = local.pool.token_validity_units.access_token
    id_token      = local.pool.token_validity_units.id_token
    refresh_token = local.pool.token_validity_units.refresh_token
  }
}

# The secret's value is the bare client secret string.
resource "aws_secretsmanager_secret_version" "client_secret" {
  count = local.pool.generate_client_secret ? 1 : 0

  secret_id     = var.client_secret_secretsmanager_secret_arn
  secret_string = aws_cognito_user_pool_client.this.client_secret
}
