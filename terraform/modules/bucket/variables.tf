variable "name" {
  description = "Bucket name (global: include the account id)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be a valid S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens."
  }
}

variable "kms_key_arn" {
  description = "KMS key the objects are encrypted with (SSE-KMS, with a bucket key). null: SSE-S3, for a target of S3 server access logging, which supports nothing else."
  type        = string
  default     = null
}

variable "expiration_days" {
  description = "Days after which an object expires."
  type        = number

  validation {
    condition     = var.expiration_days >= 1
    error_message = "expiration_days must be at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object's previous version is kept."
  type        = number
  default     = 7
}

variable "abort_incomplete_upload_days" {
  description = "Days after which an unfinished multipart upload is aborted."
  type        = number
  default     = 1
}

variable "access_log_target" {
  description = "Where S3 server access logs of this bucket go (a bucket made with this module, whose log_writers admit this one), or null for none."
  type = object({
    bucket = string
    prefix = string
  })
  default = null
}

variable "log_writers" {
  description = "AWS services that write logs into this bucket, each under its own prefix and only for the source ARN given (aws:SourceArn, ArnLike) in this account (aws:SourceAccount); owner_full_control also requires the bucket-owner-full-control ACL header the service sends."
  type = list(object({
    service            = string
    prefix             = string
    source_arn         = string
    owner_full_control = optional(bool, false)
  }))
  default = []
}

variable "force_destroy" {
  description = "Let terraform destroy the bucket with its objects."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags of the bucket."
  type        = map(string)
  default     = {}
}
