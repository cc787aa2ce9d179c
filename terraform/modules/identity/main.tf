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

  username_attributes = ["email"]

  username_configuration {
    case_sensitive = false
  }

  # NIST SP 800-63B: length and a block list (the auth function's), not
  # composition rules, as provision_user_pool sets it for the local stack.
  password_policy {
    minimum_length                   = local.pool.password_minimum_length
    require_lowercase                = false
    require_uppercase                = false
    require_numbers                  = false
    require_symbols                  = false
    temporary_password_validity_days = 3
  }

  mfa_configuration = local.pool.mfa

  software_token_mfa_configuration {
    enabled = local.pool.mfa != "OFF"
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "admin_only"
      priority = 1
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
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
  supported_identity_providers  = ["COGNITO"]

  # Rampart issues its own access and refresh tokens after Cognito has
  # authenticated the user, so Cognito's tokens only need to live long enough
  # for that exchange.
  auth_session_validity  = 3
  access_token_validity  = var.access_token_validity_minutes
  id_token_validity      = var.id_token_validity_minutes
  refresh_token_validity = var.refresh_token_validity_minutes

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "minutes"
  }
}

# The secret's value is the bare client secret string.
resource "aws_secretsmanager_secret_version" "client_secret" {
  count = local.pool.generate_client_secret ? 1 : 0

  secret_id     = var.client_secret_secretsmanager_secret_arn
  secret_string = aws_cognito_user_pool_client.this.client_secret
}
