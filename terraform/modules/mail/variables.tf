variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the configuration set becomes <resource_prefix>-mail."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "sender_domain" {
  description = "Domain of the From address (mail.sender), verified as an SES identity with Easy DKIM; publish the DKIM records from the dkim_tokens output."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.sender_domain))
    error_message = "sender_domain must be a lower-case DNS name such as example.com."
  }
}

variable "mail_from_subdomain" {
  description = "Optional custom MAIL FROM subdomain (e.g. \"mail\" for mail.<sender_domain>), so SPF aligns with the From domain for DMARC; null keeps SES's amazonses.com."
  type        = string
  default     = null

  validation {
    condition     = var.mail_from_subdomain == null || can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.mail_from_subdomain))
    error_message = "mail_from_subdomain must be a single lower-case DNS label."
  }
}

variable "tags" {
  description = "Tags added to the identity and the configuration set."
  type        = map(string)
  default     = {}
}
