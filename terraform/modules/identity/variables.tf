variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the pool becomes <resource_prefix>-<user_pool.name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "user_pool" {
  description = "The pool and app client (schema/platform.json \"user_pool\"): names (prefixed with resource_prefix), sign-in attributes, password policy, MFA, account recovery (mechanisms in order of priority), and the client's secret, auth flows, user-existence errors, token revocation and token lifetimes."
  type = object({
    name                             = string
    username_attributes              = list(string)
    username_case_sensitive          = bool
    password_minimum_length          = number
    password_require_lowercase       = bool
    password_require_uppercase       = bool
    password_require_numbers         = bool
    password_require_symbols         = bool
    temporary_password_validity_days = number
    mfa                              = string
    account_recovery_mechanisms      = list(string)
    client_name                      = string
    generate_client_secret           = bool
    explicit_auth_flows              = list(string)
    prevent_user_existence_errors    = string
    enable_token_revocation          = bool
    access_token_validity            = number
    id_token_validity                = number
    refresh_token_validity           = number
    token_validity_units = object({
      access_token  = string
      id_token      = string
      refresh_token = string
    })
  })

  validation {
    condition     = contains(["OFF", "ON", "OPTIONAL"], var.user_pool.mfa) && var.user_pool.password_minimum_length >= 8
    error_message = "user_pool.mfa must be OFF, ON or OPTIONAL, and password_minimum_length at least 8."
  }

  # Security properties the auth API relies on: a sign-in that fails says nothing about whether
  # the email is known, and a refresh token revoked by sign-out is refused.
  validation {
    condition     = var.user_pool.prevent_user_existence_errors == "ENABLED" && var.user_pool.enable_token_revocation
    error_message = "user_pool.prevent_user_existence_errors must be ENABLED and enable_token_revocation true."
  }

  validation {
    condition     = alltrue([for unit in values(var.user_pool.token_validity_units) : contains(["seconds", "minutes", "hours", "days"], unit)])
    error_message = "user_pool.token_validity_units must each be seconds, minutes, hours or days."
  }
}

variable "client_secret_secretsmanager_secret_arn" {
  description = "ARN of the Secrets Manager secret (schema secret \"auth/cognito-client-secret\") that receives the app client secret."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.client_secret_secretsmanager_secret_arn))
    error_message = "client_secret_secretsmanager_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "user_pool_tier" {
  description = "Cognito feature plan: LITE, ESSENTIALS or PLUS. Threat protection needs PLUS."
  type        = string
  default     = "PLUS"

  validation {
    condition     = contains(["LITE", "ESSENTIALS", "PLUS"], var.user_pool_tier)
    error_message = "user_pool_tier must be LITE, ESSENTIALS or PLUS."
  }
}

variable "threat_protection_mode" {
  description = "Cognito threat protection for password sign-in: OFF, AUDIT (log risk only) or ENFORCED (block or challenge risky sign-ins)."
  type        = string
  default     = "ENFORCED"

  validation {
    condition     = contains(["OFF", "AUDIT", "ENFORCED"], var.threat_protection_mode)
    error_message = "threat_protection_mode must be OFF, AUDIT or ENFORCED."
  }
}

variable "tags" {
  description = "Tags added to the user pool."
  type        = map(string)
  default     = {}
}
