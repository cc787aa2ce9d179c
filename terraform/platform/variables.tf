variable "aws_region" {
  description = "AWS region of the dev environment."
  type        = string
  default     = "eu-west-1"
}

variable "resource_prefix" {
  description = "Prefix of every physical name in this environment."
  type        = string
  default     = "rampart-dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter and ending with a letter or digit (schema/platform.json resource_prefix)."
  }
}

variable "kms_key_users" {
  description = "IAM principal ARNs allowed to use each schema KMS key, keyed by key name. Empty until the function and service roles exist."
  type        = map(list(string))
  default     = {}
}

variable "cognito_user_pool_tier" {
  description = "Cognito feature plan: LITE, ESSENTIALS or PLUS."
  type        = string
  default     = "PLUS"
}

variable "cognito_threat_protection_mode" {
  description = "Cognito threat protection mode: OFF, AUDIT or ENFORCED (AUDIT and ENFORCED need the PLUS feature plan)."
  type        = string
  default     = "ENFORCED"
}

variable "mail_sender" {
  description = "From address of one-time codes and security notices to account owners (RAMPART_MAIL__SENDER); its domain becomes the SES identity."
  type        = string
  default     = "no-reply@example.com"

  validation {
    condition     = can(regex("@([^>[:space:]]+)>?$", var.mail_sender))
    error_message = "mail_sender must be an address such as no-reply@example.com or \"Rampart <no-reply@example.com>\"."
  }
}
