variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; tables become <resource_prefix>-<table name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "tables" {
  description = "The tables to create, keyed by name (schema/platform.json \"tables\"): key attributes (all strings), optional TTL attribute, stream view type and global secondary indexes."
  type = map(object({
    purpose       = string
    hash_key      = string
    range_key     = optional(string)
    ttl_attribute = optional(string)
    stream        = optional(string)
    global_secondary_indexes = optional(map(object({
      hash_key  = string
      range_key = optional(string)
    })), {})
  }))

  validation {
    condition     = alltrue([for table in values(var.tables) : table.stream == null || contains(["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"], table.stream)])
    error_message = "A table's stream must be null or a DynamoDB stream view type."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the tables at rest."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every table."
  type        = map(string)
  default     = {}
}
