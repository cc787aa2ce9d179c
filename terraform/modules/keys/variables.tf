variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; aliases become alias/<resource_prefix>-<key name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_keys" {
  description = "The keys to create, keyed by name (schema/platform.json \"kms_keys\"): purpose, KMS key spec and key usage."
  type = map(object({
    purpose   = string
    key_spec  = string
    key_usage = string
  }))

  validation {
    condition     = alltrue([for key in values(var.kms_keys) : contains(["SIGN_VERIFY", "ENCRYPT_DECRYPT"], key.key_usage)])
    error_message = "A key's key_usage must be SIGN_VERIFY or ENCRYPT_DECRYPT."
  }
}

variable "policy_admin_arns" {
  description = "The only IAM roles that may change these keys' policies or schedule their deletion (the environment's deploy role, which applies this module, and a break-glass role); every other principal is denied kms:PutKeyPolicy and kms:ScheduleKeyDeletion, account administrators included. KMS refuses a key policy that would lock out the principal applying it, so applying as a role not listed fails rather than locking the keys. Give each ARN exactly as IAM shows it, path included (aws:PrincipalArn carries the path)."
  type        = list(string)

  validation {
    condition     = length(var.policy_admin_arns) > 0 && alltrue([for arn in var.policy_admin_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "policy_admin_arns must list at least one IAM role ARN."
  }
}

variable "key_users" {
  description = "IAM principal ARNs allowed to use each schema key, keyed by key name (e.g. { \"token-signing\" = [\"arn:aws:iam::123456789012:role/auth\"] }). Users get only the usage actions for the key's usage (sign/verify or encrypt/decrypt), and a key with users denies its cryptographic operations to every other principal. The roles need not exist yet (they are matched by aws:PrincipalArn)."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for arns in values(var.key_users) : alltrue([for arn in arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])])
    error_message = "key_users must hold IAM role ARNs (no wildcard, no account root)."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before KMS deletes a key scheduled for deletion."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period of the symmetric keys."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "rotation_period_in_days must be between 90 and 2560."
  }
}

variable "tags" {
  description = "Tags added to every key."
  type        = map(string)
  default     = {}
}
