variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the pool becomes <resource_prefix>-<user_pool.name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "user_pool" {
  description = "The pool and app client (schema/platform.json \"user_pool\"): names (prefixed with resource_prefix), client secret, password length, MFA and auth flows."
  type = object({
    name                    = string
    client_name             = string
    generate_client_secret  = bool
    password_minimum_length = number
    mfa                     = string
    explicit_auth_flows     = list(string)
  })

  validation {
    condition     = contains(["OFF", "ON", "OPTIONAL"], var.user_pool.mfa) && var.user_pool.password_minimum_length >= 8
    error_message = "user_pool.mfa must be OFF, ON or OPTIONAL, and password_minimum_length at least 8."
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

variable "access_token_validity_minutes" {
  description = "Lifetime of Cognito access tokens, in minutes (5-1440)."
  type        = number
  default     = 15

  validation {
    condition     = var.access_token_validity_minutes >= 5 && var.access_token_validity_minutes <= 1440
    error_message = "access_token_validity_minutes must be between 5 and 1440."
  }
}

variable "id_token_validity_minutes" {
  description = "Lifetime of Cognito ID tokens, in minutes (5-1440)."
  type        = number
  default     = 15

  validation {
    condition     = var.id_token_validity_minutes >= 5 && var.id_token_validity_minutes <= 1440
    error_message = "id_token_validity_minutes must be between 5 and 1440."
  }
}

variable "refresh_token_validity_minutes" {
  description = "Lifetime of Cognito refresh tokens, in minutes (60 is Cognito's minimum; Rampart keeps its own refresh tokens)."
  type        = number
  default     = 60

  validation {
    condition     = var.refresh_token_validity_minutes >= 60 && var.refresh_token_validity_minutes <= 5256000
    error_message = "refresh_token_validity_minutes must be between 60 and 5256000 (ten years)."
  }
}

variable "tags" {
  description = "Tags added to the user pool."
  type        = map(string)
  default     = {}
}
