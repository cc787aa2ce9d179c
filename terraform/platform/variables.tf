variable "environment" {
  description = "Stage this state holds: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "aws_region" {
  description = "AWS region of the environment."
  type        = string
}

variable "resource_prefix" {
  description = "Prefix of every physical name in this environment (rampart-<environment>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter and ending with a letter or digit (schema/platform.json resource_prefix)."
  }
}

variable "domain_name" {
  description = "Public host name of the platform (CloudFront alias, and the token issuer https://<domain_name>)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lower-case DNS host name such as auth.example.com."
  }
}

variable "acm_certificate_arn" {
  description = "ACM certificate for domain_name, in us-east-1 (CloudFront reads certificates only there)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN in us-east-1."
  }
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

  validation {
    condition     = can(regex("@([^>[:space:]]+)>?$", var.mail_sender))
    error_message = "mail_sender must be an address such as no-reply@example.com or \"Rampart <no-reply@example.com>\"."
  }
}

variable "vpc_cidr_block" {
  description = "CIDR of the environment's VPC (the Kubernetes NetworkPolicies of deploy/overlays/<environment> name it too)."
  type        = string
}

variable "az_count" {
  description = "Availability zones the VPC spans (at least 2)."
  type        = number
  default     = 2
}

variable "delivery_account_id" {
  description = "The pipeline's account, when it is not this one and its Apply project runs in this VPC's private subnets (shared with AWS RAM, docs/deploy.md): the VPC endpoints then admit its principals too. null: the pipeline is in this account, or outside the VPC."
  type        = string
  default     = null

  validation {
    condition     = var.delivery_account_id == null || can(regex("^[0-9]{12}$", var.delivery_account_id))
    error_message = "delivery_account_id must be a 12-digit AWS account id."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, not zone-resilient) instead of one per zone."
  type        = bool
  default     = false
}

variable "log_retention_in_days" {
  description = "Retention of every CloudWatch log group of the environment."
  type        = number
  default     = 365
}

variable "lambda_zip_dir" {
  description = "Directory holding rampart-<crate>/bootstrap.zip for each crate in functions/ (scripts/build-lambdas --out, or the pipeline's build artifact). Null: target/lambda/<lambda_architecture> of this checkout, build-lambdas' default."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Instruction set of the functions: arm64 or x86_64 (must match the zips)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_size" {
  description = "Memory of each function in MiB (CPU grows with it)."
  type        = number
  default     = 256
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of each function: its ceiling, and what it keeps from the rest of the account."
  type        = number
  default     = 20
}

variable "secret_rotation_days" {
  description = "Days between rotations of the secrets Rampart generates (schema secrets marked generated)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_rotation_days >= 1 && var.secret_rotation_days <= 365
    error_message = "secret_rotation_days must be between 1 and 365."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (scripts/check-deploy validates the manifests against the same one)."
  type        = string
  default     = "1.33"
}

variable "cluster_admin_principal_arns" {
  description = "The environment's administrators, the pipeline's deploy role of this environment and the operators' break-glass role: they get EKS cluster-admin access entries, and only they may change the KMS key policies or schedule a key's deletion."
  type        = list(string)
}

variable "node_instance_types" {
  description = "Instance types of the EKS managed node group (Graviton by default, as the images are built for arm64)."
  type        = list(string)
  default     = ["m7g.large"]
}

variable "node_ami_type" {
  description = "AMI type of the EKS nodes; must match node_instance_types' architecture."
  type        = string
  default     = "AL2023_ARM_64_STANDARD"
}

variable "node_min_size" {
  description = "Fewest EKS nodes."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "EKS nodes at creation (the autoscaler moves it afterwards)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Most EKS nodes."
  type        = number
  default     = 4
}

variable "manage_api_gateway_account" {
  description = "Whether this environment sets the account's API Gateway CloudWatch role (one per account and region: true in exactly one environment sharing them)."
  type        = bool
  default     = false
}

variable "enable_shield_advanced" {
  description = "Protect the CloudFront distribution with Shield Advanced (the account must already subscribe)."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topics (null: none; subscribe a pager through SNS instead)."
  type        = string
  default     = null
}

variable "iam_permissions_boundary_arn" {
  description = "Permissions boundary set on every IAM role the platform creates. The deploy role may create roles only under it (docs/deploy.md, step 3), so a compromised deploy cannot mint a role stronger than the boundary."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/", var.iam_permissions_boundary_arn))
    error_message = "iam_permissions_boundary_arn must be an IAM policy ARN."
  }
}
