variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; the cluster becomes <resource_prefix>-eks."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster (the network module's vpc_id)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets, in at least two AZs, of the control-plane network interfaces and the nodes (the network module's private_subnet_ids)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and nodes, e.g. \"1.33\"."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as \"1.33\"."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM role or user ARNs given cluster-admin through an EKS access entry (AmazonEKSClusterAdminPolicy), e.g. the deploy role of the pipeline and the operators' role. Nobody else, not even the creator, gets access."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.cluster_admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", arn))])
    error_message = "cluster_admin_principal_arns must be IAM role or user ARNs."
  }
}

variable "endpoint_ingress_cidr_blocks" {
  description = "CIDR blocks inside the VPC (or reaching it by VPN / peering) allowed to the private API endpoint on 443, e.g. the subnets of the CodeBuild deploy stage. The nodes reach it without this."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.endpoint_ingress_cidr_blocks : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "endpoint_ingress_cidr_blocks must be IPv4 CIDR blocks, never 0.0.0.0/0."
  }
}

variable "service_policy_statements" {
  description = "Least-privilege IAM statements of each service's IRSA role, keyed by service (core, auth-proxy): what its code calls, resources from the other modules' outputs. An empty list gives a role with no permissions."
  type = map(list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
    # IAM condition block: operator => key => values.
    conditions = optional(map(map(list(string))), {})
  })))

  validation {
    condition     = alltrue([for name in keys(var.service_policy_statements) : can(regex("^[a-z][a-z0-9-]{0,30}$", name)) && name != "vpc-cni"])
    error_message = "service_policy_statements keys must be service names (lower-case letters, digits, hyphens), not \"vpc-cni\" (the CNI's own IRSA role)."
  }

  validation {
    # Least privilege: the grants name actions and resources, never a wildcard.
    condition = alltrue(flatten([for statements in values(var.service_policy_statements) : [for s in statements : [
      can(regex("^[A-Za-z0-9]+$", s.sid)),
      length(s.actions) > 0 && length(s.resources) > 0,
      alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))]),
      !contains(s.resources, "*"),
    ]]]))
    error_message = "Each policy statement needs an alphanumeric sid, at least one action and one resource, actions of the form service:Action (no wildcard) and no \"*\" resource."
  }
}

variable "service_account_namespace" {
  description = "Kubernetes namespace of the services' ServiceAccounts: each IRSA role trusts only system:serviceaccount:<namespace>:<service>."
  type        = string
  default     = "rampart"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.service_account_namespace))
    error_message = "service_account_namespace must be a Kubernetes namespace name."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group; their architecture must match node_ami_type and the service images."
  type        = list(string)
  default     = ["m7g.large"]
}

variable "node_ami_type" {
  description = "EKS-optimised AMI type of the nodes: AL2023_ARM_64_STANDARD (Graviton, default) or AL2023_x86_64_STANDARD."
  type        = string
  default     = "AL2023_ARM_64_STANDARD"

  validation {
    condition     = contains(["AL2023_ARM_64_STANDARD", "AL2023_x86_64_STANDARD"], var.node_ami_type)
    error_message = "node_ami_type must be AL2023_ARM_64_STANDARD or AL2023_x86_64_STANDARD."
  }
}

variable "node_min_size" {
  description = "Fewest nodes; at least 2 so a PodDisruptionBudget can always be met across AZs."
  type        = number
  default     = 2

  validation {
    condition     = var.node_min_size >= 1
    error_message = "node_min_size must be at least 1."
  }
}

variable "node_desired_size" {
  description = "Nodes at creation; the cluster autoscaler or an operator changes it later (ignored after creation)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Most nodes."
  type        = number
  default     = 4

  validation {
    condition     = var.node_max_size >= var.node_min_size && var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size
    error_message = "node sizes must satisfy node_min_size <= node_desired_size <= node_max_size."
  }
}

variable "node_volume_size_gib" {
  description = "Size in GiB of each node's encrypted gp3 root volume."
  type        = number
  default     = 50

  validation {
    condition     = var.node_volume_size_gib >= 20
    error_message = "node_volume_size_gib must be at least 20."
  }
}

variable "cluster_log_types" {
  description = "Control-plane logs sent to CloudWatch Logs."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  validation {
    condition     = alltrue([for t in var.cluster_log_types : contains(["api", "audit", "authenticator", "controllerManager", "scheduler"], t)])
    error_message = "cluster_log_types may hold only api, audit, authenticator, controllerManager and scheduler."
  }
}

variable "log_retention_in_days" {
  description = "Days CloudWatch Logs keeps the control-plane logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "log_kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the control-plane log group; its key policy must let the CloudWatch Logs service principal of this region use it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before KMS deletes the secrets-encryption key once scheduled for deletion."
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

variable "iam_permissions_boundary_arn" {
  description = "Permissions boundary set on every IAM role this module creates (null: none). Lets the deploy role create roles only under that boundary."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/", var.iam_permissions_boundary_arn))
    error_message = "iam_permissions_boundary_arn must be an IAM policy ARN."
  }
}
