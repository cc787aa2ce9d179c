variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the VPC becomes <resource_prefix>-vpc."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC, /16 to /20. Each AZ gets a private subnet of 1/8 of it (EKS pods take VPC addresses) and a public subnet of 1/64 (NAT gateways only)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0)) && try(tonumber(split("/", var.vpc_cidr_block)[1]) >= 16 && tonumber(split("/", var.vpc_cidr_block)[1]) <= 20, false)
    error_message = "vpc_cidr_block must be an IPv4 CIDR with a prefix length between /16 and /20."
  }
}

variable "az_count" {
  description = "Number of Availability Zones the VPC spans (2-6). Two is the minimum for EKS and for a load balancer that survives the loss of a zone."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number between 2 and 6."
  }
}

variable "single_nat_gateway" {
  description = "true: one NAT gateway for all zones (cheaper; egress stops if its zone fails). false: one per zone (production)."
  type        = bool
  default     = false
}

variable "flow_log_traffic_type" {
  description = "Traffic the VPC flow log records: ALL, ACCEPT or REJECT."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ALL, ACCEPT or REJECT."
  }
}

variable "log_retention_in_days" {
  description = "Days CloudWatch Logs keeps the VPC flow log."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "log_kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the flow log group; its key policy must let the CloudWatch Logs service principal of this region use it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
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

variable "endpoint_principal_accounts" {
  description = "Other AWS accounts whose principals may use the VPC endpoints that are confined to this account's: the delivery account, when its Apply project runs in these subnets (shared to it with AWS RAM) and reaches its own key and logs through them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for account in var.endpoint_principal_accounts : can(regex("^[0-9]{12}$", account))])
    error_message = "endpoint_principal_accounts must be 12-digit AWS account ids."
  }
}
