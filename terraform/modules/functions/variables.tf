variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-dev\"; a function becomes <resource_prefix>-<crate name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "functions" {
  description = "The Lambdas, keyed by crate directory under functions/: the cargo lambda zip, RAMPART_* environment, memory (MB), timeout (s), reserved concurrency, and the least-privilege IAM statements of what the code calls (resources from the other modules' outputs)."
  type = map(object({
    zip_path                       = string
    environment                    = map(string)
    memory_size                    = number
    timeout                        = number
    reserved_concurrent_executions = number
    policy_statements = list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
      # IAM condition block: operator => key => values.
      conditions = optional(map(map(list(string))), {})
    }))
  }))

  validation {
    condition     = alltrue([for name in keys(var.functions) : can(regex("^[a-z][a-z0-9-]*$", name))])
    error_message = "Every key of functions must be a crate directory name: lower-case letters, digits and hyphens."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_size >= 128 && f.memory_size <= 10240 && f.timeout >= 1 && f.timeout <= 900 && f.reserved_concurrent_executions >= 0])
    error_message = "memory_size must be 128-10240, timeout 1-900 and reserved_concurrent_executions at least 0."
  }

  validation {
    # Least privilege: the grants name actions and resources, never a wildcard.
    condition = alltrue(flatten([for f in values(var.functions) : [for s in f.policy_statements : [
      can(regex("^[A-Za-z0-9]+$", s.sid)),
      length(s.actions) > 0 && length(s.resources) > 0,
      alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))]),
      !contains(s.resources, "*"),
    ]]]))
    error_message = "Each policy statement needs an alphanumeric sid, at least one action and one resource, actions of the form service:Action (no wildcard) and no \"*\" resource."
  }
}

variable "architecture" {
  description = "Instruction set of every function: \"arm64\" (Graviton, cargo lambda --arm64) or \"x86_64\"; the zips must be built for it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "log_retention_in_days" {
  description = "Days CloudWatch Logs keeps each function's logs."
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

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key that encrypts the functions' environment variables and dead-letter queues; null uses log_kms_key_arn. Each function's role may use it only through SQS (its dead-letter queue); Lambda decrypts the environment through its own grant."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN."
  }
}

variable "dead_letter_queue_message_retention_seconds" {
  description = "Seconds a failed asynchronous invocation stays in a function's dead-letter queue (60 s to 14 days)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dead_letter_queue_message_retention_seconds >= 60 && var.dead_letter_queue_message_retention_seconds <= 1209600
    error_message = "dead_letter_queue_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code signing configuration every function must satisfy; null deploys the zips unsigned (see the comment on aws_lambda_function.this)."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the functions when vpc_subnet_ids is set: the module creates their security group in it. null runs them outside any VPC."
  type        = string
  default     = null
}

variable "vpc_subnet_ids" {
  description = "Private subnets the functions run in (one per AZ, with a NAT route and the network module's VPC endpoints); empty runs them outside any VPC."
  type        = list(string)
  default     = []
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
