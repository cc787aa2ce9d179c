variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; alarms become <resource_prefix>-<alarm>, and the auth API's security metrics go to namespace Rampart/<resource_prefix>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topics (SNS asks it to confirm once); null subscribes nobody, for environments that route the topics elsewhere."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "lambda_function_names" {
  description = "Lambda function names keyed by crate name (modules/functions output lambda_function_names): each gets an Errors and a Throttles alarm."
  type        = map(string)
}

variable "dead_letter_queue_names" {
  description = "SQS dead-letter queue names keyed by crate name (modules/functions output dead_letter_queue_names): each gets a depth alarm."
  type        = map(string)
  default     = {}
}

variable "auth_log_group_name" {
  description = "CloudWatch log group of the auth function (modules/functions output cloudwatch_log_group_names[\"auth\"]); its security-event lines become this environment's failed sign-in and refresh-reuse metrics."
  type        = string
}

variable "api_gateway_name" {
  description = "Name of the REST API (modules/api output api_gateway_name): the ApiName dimension of AWS/ApiGateway metrics."
  type        = string
}

variable "api_gateway_stage_name" {
  description = "Stage of the REST API (modules/api output api_gateway_stage_name)."
  type        = string
}

variable "wafv2_web_acl_name" {
  description = "Name of the CLOUDFRONT-scope web ACL (modules/edge output wafv2_web_acl_name); its metrics, and so its alarm, are in us-east-1."
  type        = string
}

variable "dynamodb_table_names" {
  description = "DynamoDB table names keyed by schema name (modules/data output dynamodb_table_names): each gets throttling alarms."
  type        = map(string)
}

variable "kms_quota_resources" {
  description = "AWS/Usage Resource values of the KMS request quotas this environment draws on: CryptographicOperationsSymmetric (Encrypt, Decrypt, GenerateDataKey: sealing, data and storage keys) and CryptographicOperationsRsa (Sign with the RSA token-signing key). The quotas are per account and Region, shared by every environment in them."
  type        = list(string)
  default     = ["CryptographicOperationsSymmetric", "CryptographicOperationsRsa"]

  validation {
    condition     = alltrue([for resource in var.kms_quota_resources : contains(["CryptographicOperationsSymmetric", "CryptographicOperationsRsa", "CryptographicOperationsEcc"], resource)])
    error_message = "kms_quota_resources may list CryptographicOperationsSymmetric, CryptographicOperationsRsa and CryptographicOperationsEcc."
  }
}

variable "eks_cluster_name" {
  description = "EKS cluster name (modules/eks output eks_cluster_name): the ClusterName dimension the CloudWatch agent adds to the services' Prometheus metrics."
  type        = string
}

variable "eks_metric_namespace" {
  description = "CloudWatch namespace the CloudWatch agent (Container Insights Prometheus) publishes the services' /metrics series into."
  type        = string
  default     = "Rampart/EKS"

  validation {
    condition     = can(regex("^[A-Za-z0-9./_#:-]{1,255}$", var.eks_metric_namespace)) && !startswith(var.eks_metric_namespace, "AWS/")
    error_message = "eks_metric_namespace must be a custom CloudWatch namespace (not AWS/...)."
  }
}

variable "mtls_services" {
  description = "Services whose mTLS certificate time left is alarmed on: the values of the service label of rampart_mtls_certificate_expires_in_seconds."
  type        = list(string)
  default     = ["core", "auth-proxy"]
}

variable "cloudfront_certificate_arns" {
  description = "ARNs of the ACM certificates (in us-east-1) CloudFront serves; each gets a days-to-expiry alarm. Empty when the distribution uses its default certificate."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.cloudfront_certificate_arns : can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", arn))])
    error_message = "cloudfront_certificate_arns must be ACM certificate ARNs in us-east-1 (the only Region CloudFront reads certificates from)."
  }
}

variable "xray_sampling" {
  description = "X-Ray sampling at the API Gateway stage, which the Lambdas and the EKS services follow: reservoir (traced requests per second before the rate applies) and fixed rate, for the auth API's paths and for the rest of the API."
  type = object({
    auth_reservoir_size  = optional(number, 1)
    auth_fixed_rate      = optional(number, 0.05)
    other_reservoir_size = optional(number, 1)
    other_fixed_rate     = optional(number, 0.01)
  })
  default = {}

  validation {
    condition     = var.xray_sampling.auth_fixed_rate >= 0 && var.xray_sampling.auth_fixed_rate <= 1 && var.xray_sampling.other_fixed_rate >= 0 && var.xray_sampling.other_fixed_rate <= 1
    error_message = "X-Ray fixed rates are fractions between 0 and 1."
  }

  validation {
    condition     = var.xray_sampling.auth_reservoir_size >= 0 && var.xray_sampling.other_reservoir_size >= 0
    error_message = "X-Ray reservoir sizes cannot be negative."
  }
}

variable "thresholds" {
  description = "Alarm thresholds; every period is 5 minutes unless the alarm's description says otherwise. Omitted attributes take the defaults shown."
  type = object({
    api_5xx_rate_percent     = optional(number, 1)    # 5xx answers, in % of requests
    api_min_requests         = optional(number, 20)   # below this many requests the 5xx rate is not judged
    api_latency_p99_ms       = optional(number, 1000) # API Gateway Latency, p99
    lambda_errors            = optional(number, 5)    # per function
    lambda_throttles         = optional(number, 1)    # per function
    dead_letter_messages     = optional(number, 1)    # visible messages in a DLQ
    waf_blocked_requests     = optional(number, 500)  # blocks are normal; a surge is an attack or a bad rule
    dynamodb_throttles       = optional(number, 10)   # per table and metric
    kms_quota_percent        = optional(number, 50)   # average per-second use of a KMS request quota over a minute
    mtls_certificate_seconds = optional(number, 900)  # certificates last 1 h and renew at half life
    vault_token_seconds      = optional(number, 600)  # the Vault token (1 h TTL) renews at two thirds of its life
    acm_certificate_days     = optional(number, 30)   # ACM renews managed certificates 60 days ahead
    failed_sign_ins          = optional(number, 50)
    throttled_sign_ins       = optional(number, 20)
    refresh_token_reuse      = optional(number, 1)    # a reuse is a stolen or replayed refresh token
    audit_write_failures     = optional(number, 1)    # a gap in the audit log
  })
  default = {}

  validation {
    condition     = alltrue([for value in values(var.thresholds) : value >= 0])
    error_message = "Thresholds cannot be negative."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
