variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; secrets become <resource_prefix>/<secret name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "secrets" {
  description = "The secrets to create, keyed by name (schema/platform.json \"secrets\"); each becomes <resource_prefix>/<name>. A generated one gets a random value here."
  type = map(object({
    purpose   = string
    generated = optional(bool, false)
  }))
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the secrets."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "recovery_window_in_days" {
  description = "Days Secrets Manager keeps a deleted secret recoverable (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30
    error_message = "recovery_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every secret."
  type        = map(string)
  default     = {}
}
