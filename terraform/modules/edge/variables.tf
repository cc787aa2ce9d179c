variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the web ACL becomes <resource_prefix>-edge."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

# --- Origin (modules/api outputs) ---

variable "origin_domain_name" {
  description = "Host name of the API Gateway regional endpoint (api module api_gateway_domain_name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]+[a-z0-9]$", var.origin_domain_name))
    error_message = "origin_domain_name must be a host name, without scheme or path."
  }
}

variable "origin_path" {
  description = "Path CloudFront prefixes to every origin request: \"/<stage name>\" (api module api_gateway_stage_name)."
  type        = string

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_]+)?$", var.origin_path))
    error_message = "origin_path must be empty or \"/<stage name>\"."
  }
}

variable "origin_verify_header_name" {
  description = "Header CloudFront adds to every origin request (api module origin_verify_header_name); the API's web ACL refuses requests without it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.origin_verify_header_name))
    error_message = "origin_verify_header_name must be a lower-case header name."
  }
}

variable "origin_verify_header_value" {
  description = "Secret value of the origin-verify header (api module origin_verify_header_value)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.origin_verify_header_value) >= 32
    error_message = "origin_verify_header_value must be at least 32 characters."
  }
}

# --- Web ACL rate limits (requests per client IP in any 5-minute window) ---

variable "rate_limit" {
  description = "Requests one client IP may send to any path in 5 minutes before it is refused (429) for the rest of the window."
  type        = number
  default     = 2000

  validation {
    condition     = var.rate_limit >= 10 && floor(var.rate_limit) == var.rate_limit
    error_message = "rate_limit must be a whole number of at least 10 (the WAF minimum)."
  }
}

variable "sign_in_rate_limit" {
  description = "Requests one client IP may send to the sign-in and refresh paths (POST /v1/auth/login, /v1/auth/login/mfa, /v1/auth/token, /v1/auth/refresh) in 5 minutes: the credential-stuffing limit."
  type        = number
  default     = 100

  validation {
    condition     = var.sign_in_rate_limit >= 10 && floor(var.sign_in_rate_limit) == var.sign_in_rate_limit
    error_message = "sign_in_rate_limit must be a whole number of at least 10 (the WAF minimum)."
  }
}

variable "mail_rate_limit" {
  description = "Requests one client IP may send in 5 minutes to the paths that make the auth API send an e-mail (/v1/auth/register, /v1/auth/confirm/resend, /v1/auth/password/forgot): against mail bombing and SES cost."
  type        = number
  default     = 20

  validation {
    condition     = var.mail_rate_limit >= 10 && floor(var.mail_rate_limit) == var.mail_rate_limit
    error_message = "mail_rate_limit must be a whole number of at least 10 (the WAF minimum)."
  }
}

variable "rate_limit_exempt_cidrs" {
  description = "IPv4 CIDRs the global rate rule does not count: the platform's own egress (network module nat_gateway_public_ips, each as /32), from which every auth-proxy pod polls the revocation feed and the JWKS through this edge. The sign-in and mail limits still apply to them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.rate_limit_exempt_cidrs : can(cidrhost(cidr, 0)) && strcontains(cidr, ".")])
    error_message = "rate_limit_exempt_cidrs must be IPv4 CIDRs, e.g. \"203.0.113.10/32\"."
  }
}

# --- Distribution ---

variable "domain_names" {
  description = "Custom host names (CNAMEs) of the distribution, e.g. [\"api.example.com\"]; needs acm_certificate_arn. Empty: the *.cloudfront.net name only."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ARN of an ACM certificate in us-east-1 covering domain_names. With it, viewers must use TLS 1.2 or later (TLSv1.2_2021); without it CloudFront serves its default certificate, on which it cannot enforce a TLS minimum. Set it in every stage clients use."
  type        = string
  default     = null

  validation {
    condition     = var.acm_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN in us-east-1 (CloudFront reads certificates only there)."
  }
}

variable "price_class" {
  description = "CloudFront price class: which edge locations serve the API."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_All", "PriceClass_200", "PriceClass_100"], var.price_class)
    error_message = "price_class must be PriceClass_All, PriceClass_200 or PriceClass_100."
  }
}

variable "geo_restriction_type" {
  description = "Country restriction: none, whitelist (only geo_restriction_locations) or blacklist (all but them)."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "whitelist", "blacklist"], var.geo_restriction_type)
    error_message = "geo_restriction_type must be none, whitelist or blacklist."
  }
}

variable "geo_restriction_locations" {
  description = "ISO 3166-1 alpha-2 country codes for geo_restriction_type."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for code in var.geo_restriction_locations : can(regex("^[A-Z]{2}$", code))])
    error_message = "geo_restriction_locations must be ISO 3166-1 alpha-2 codes, e.g. \"DE\"."
  }
}

variable "enable_shield_advanced" {
  description = "Put the distribution under AWS Shield Advanced protection. The account must already be subscribed to Shield Advanced (a one-year commitment, so it is not done here)."
  type        = bool
  default     = false
}

# --- Logs ---

variable "log_retention_in_days" {
  description = "Days the web ACL's log (CloudWatch Logs) and the CloudFront access logs (S3) are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "access_log_bucket_force_destroy" {
  description = "Let Terraform delete the access-log bucket with its logs in it (only for stages that are torn down)."
  type        = bool
  default     = false
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before KMS deletes the edge log key once scheduled for deletion."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
