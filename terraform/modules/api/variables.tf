variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the REST API becomes <resource_prefix>-api."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "stage_name" {
  description = "Name of the API stage; CloudFront's origin path is /<stage_name>, so clients never see it."
  type        = string
  default     = "live"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,128}$", var.stage_name))
    error_message = "stage_name must be 1-128 letters, digits or underscores."
  }
}

# --- Lambda functions (modules/functions outputs) ---

variable "auth_function_name" {
  description = "Name of the auth Lambda function (functions module lambda_function_names[\"auth\"]); API Gateway gets permission to invoke it."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.auth_function_name))
    error_message = "auth_function_name must be a Lambda function name."
  }
}

variable "auth_function_invoke_arn" {
  description = "Invoke ARN of the auth Lambda function (functions module lambda_function_invoke_arns[\"auth\"])."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/", var.auth_function_invoke_arn))
    error_message = "auth_function_invoke_arn must be a Lambda invoke ARN (arn:aws:apigateway:<region>:lambda:path/...)."
  }
}

variable "authorizer_function_name" {
  description = "Name of the authorizer Lambda function (functions module lambda_function_names[\"authorizer\"])."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.authorizer_function_name))
    error_message = "authorizer_function_name must be a Lambda function name."
  }
}

variable "authorizer_function_invoke_arn" {
  description = "Invoke ARN of the authorizer Lambda function (functions module lambda_function_invoke_arns[\"authorizer\"])."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/", var.authorizer_function_invoke_arn))
    error_message = "authorizer_function_invoke_arn must be a Lambda invoke ARN (arn:aws:apigateway:<region>:lambda:path/...)."
  }
}

variable "authorizer_result_ttl_in_seconds" {
  description = "How long API Gateway caches the authorizer's answer per Authorization header (0-5 s). A cached Allow outlives a logout for this long, so it stays within the verifier's 5 s revocation bound (docs/authorizer.md)."
  type        = number
  default     = 5

  validation {
    condition     = var.authorizer_result_ttl_in_seconds >= 0 && var.authorizer_result_ttl_in_seconds <= 5
    error_message = "authorizer_result_ttl_in_seconds must be between 0 and 5 (the revocation bound)."
  }
}

# --- Network and EKS (modules/network and modules/eks outputs) ---

variable "vpc_id" {
  description = "VPC of the internal load balancer (network module vpc_id)."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets the internal load balancer spans, one per Availability Zone (network module private_subnet_ids)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "private_subnet_ids must list at least two subnet IDs (two Availability Zones)."
  }
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC (network module vpc_cidr_block); the load balancer admits path-MTU-discovery ICMP from it, and nothing else but the VPC link."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be an IPv4 CIDR."
  }
}

variable "node_group_autoscaling_group_names" {
  description = "Auto Scaling groups of the EKS managed node group(s) (eks module node_group_autoscaling_group_names); their instances are the load balancer's targets."
  type        = list(string)
}

variable "node_group_autoscaling_group_count" {
  description = "How many Auto Scaling groups node_group_autoscaling_group_names holds (one per managed node group). Given separately because the names are only known once the node groups exist, and Terraform must know the count when it plans."
  type        = number
  default     = 1

  validation {
    condition     = var.node_group_autoscaling_group_count >= 1 && floor(var.node_group_autoscaling_group_count) == var.node_group_autoscaling_group_count
    error_message = "node_group_autoscaling_group_count must be a whole number of at least 1."
  }
}

variable "node_security_group_id" {
  description = "Security group of the EKS nodes (eks module node_security_group_id); this module opens proxy_node_port on it to the load balancer only."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]+$", var.node_security_group_id))
    error_message = "node_security_group_id must be a security group ID."
  }
}

variable "proxy_node_port" {
  description = "NodePort of the auth-proxy Kubernetes Service (deploy/base/auth-proxy.yaml); the load balancer targets the nodes on it."
  type        = number
  default     = 30443

  validation {
    condition     = var.proxy_node_port >= 30000 && var.proxy_node_port <= 32767
    error_message = "proxy_node_port must be in the Kubernetes NodePort range 30000-32767."
  }
}

variable "enable_deletion_protection" {
  description = "Protect the internal load balancer from deletion (turn off only in stages that are torn down)."
  type        = bool
  default     = true
}

# --- Throttling ---

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the stage accepts on any route without its own entry in route_throttling (all callers together)."
  type        = number
  default     = 500

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be positive."
  }
}

variable "throttling_burst_limit" {
  description = "Burst the stage accepts on any route without its own entry in route_throttling."
  type        = number
  default     = 1000

  validation {
    condition     = var.throttling_burst_limit > 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a positive whole number."
  }
}

variable "route_throttling" {
  description = "Per-route limits (all callers together), keyed by \"METHOD /path\" as the API defines it, e.g. \"POST /v1/auth/login\". The defaults keep a flood of sign-ins, sign-ups and recoveries within Cognito's account quotas (UserAuthentication 120/s, UserCreation 50/s, UserAccountRecovery 30/s) and the SES sending rate; per-client limits are the edge WAF's rate rules and the auth function's own throttles."
  type = map(object({
    rate_limit  = number
    burst_limit = number
  }))
  default = {
    "POST /v1/auth/login"           = { rate_limit = 50, burst_limit = 100 }
    "POST /v1/auth/login/mfa"       = { rate_limit = 50, burst_limit = 100 }
    "POST /v1/auth/token"           = { rate_limit = 50, burst_limit = 100 }
    "POST /v1/auth/refresh"         = { rate_limit = 100, burst_limit = 200 }
    "POST /v1/auth/register"        = { rate_limit = 10, burst_limit = 20 }
    "POST /v1/auth/confirm"         = { rate_limit = 20, burst_limit = 40 }
    "POST /v1/auth/confirm/resend"  = { rate_limit = 5, burst_limit = 10 }
    "POST /v1/auth/password/forgot" = { rate_limit = 5, burst_limit = 10 }
    "POST /v1/auth/password/reset"  = { rate_limit = 10, burst_limit = 20 }
  }

  validation {
    condition     = alltrue([for key, limit in var.route_throttling : can(regex("^(DELETE|GET|HEAD|OPTIONS|PATCH|POST|PUT) /", key)) && limit.rate_limit > 0 && limit.burst_limit > 0])
    error_message = "route_throttling keys must be \"METHOD /path\" and every limit positive."
  }
}

variable "integration_timeout_milliseconds" {
  description = "How long API Gateway waits for the auth function or the auth-proxy (50-29000 ms)."
  type        = number
  default     = 29000

  validation {
    condition     = var.integration_timeout_milliseconds >= 50 && var.integration_timeout_milliseconds <= 29000
    error_message = "integration_timeout_milliseconds must be between 50 and 29000."
  }
}

# --- Origin verification ---

variable "origin_verify_secret_version" {
  description = "Change (e.g. increment) to generate a new origin-verify secret. CloudFront and the web ACL update in the same apply; requests in flight through edges still using the old value get 403 for the few minutes CloudFront takes to deploy."
  type        = number
  default     = 1
}

# --- Logs ---

variable "log_retention_in_days" {
  description = "Days CloudWatch Logs keeps the access, execution and WAF logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "log_kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the log groups; its key policy must let the CloudWatch Logs service principal of this region use it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

variable "manage_api_gateway_account" {
  description = "Set the region's API Gateway account setting (the CloudWatch Logs role every API of the account and region logs through). It is one setting per account and region: exactly one Terraform root per account and region may set this to true, and logging fails until one has."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "iam_permissions_boundary_arn" {
  description = "Permissions boundary set on every IAM role this module creates (null: none). Lets the deploy role create roles only under that boundary."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/", var.iam_permissions_boundary_arn))
    error_message = "iam_permissions_boundary_arn must be an IAM policy ARN."
  }
}
