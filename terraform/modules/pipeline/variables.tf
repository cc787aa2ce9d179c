variable "resource_prefix" {
  description = "Prefix of every physical name, e.g. \"rampart-delivery\": the pipeline becomes <resource_prefix>-pipeline, the image repositories <resource_prefix>-<image>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "repository_id" {
  description = "GitHub repository the pipeline builds, as owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.repository_id))
    error_message = "repository_id must be owner/name."
  }
}

variable "branch_name" {
  description = "Branch whose pushes start the pipeline and are promoted to every environment."
  type        = string
  default     = "main"

  validation {
    condition     = length(var.branch_name) > 0 && !can(regex("[[:space:]*?]", var.branch_name))
    error_message = "branch_name must be one branch name, without spaces or glob characters."
  }
}

variable "environment_roles" {
  description = "The two IAM roles of each environment, keyed dev, staging and prod, created per environment (in its own account if they differ): `plan`, which the environment's Plan project assumes to run terraform plan before anyone has approved the commit, so it must be able to read the environment's configuration and state (and take the state lock) but change nothing (docs/deploy.md, step 3); and `deploy`, which only the Apply project assumes, after the approval, to run terraform apply and ansible-playbook, and which holds the broad Terraform permissions. This module grants each project only sts:AssumeRole on its own role."
  type = map(object({
    plan   = string
    deploy = string
  }))

  validation {
    condition     = toset(keys(var.environment_roles)) == toset(["dev", "staging", "prod"])
    error_message = "environment_roles must have exactly the keys dev, staging and prod."
  }

  validation {
    condition     = alltrue([for roles in values(var.environment_roles) : alltrue([for arn in [roles.plan, roles.deploy] : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])])
    error_message = "environment_roles values must be IAM role ARNs."
  }

  validation {
    condition     = alltrue([for roles in values(var.environment_roles) : roles.plan != roles.deploy])
    error_message = "An environment's plan role must not be its deploy role: the Plan project would be able to change the environment before the approval."
  }
}

variable "terraform_backends" {
  description = "S3 backend of each environment's state (bucket, key, region), keyed dev, staging and prod; passed to its Plan and Apply projects as TF_STATE_BUCKET, TF_STATE_KEY and TF_STATE_REGION."
  type = map(object({
    bucket = string
    key    = string
    region = string
  }))

  validation {
    condition     = toset(keys(var.terraform_backends)) == toset(["dev", "staging", "prod"])
    error_message = "terraform_backends must have exactly the keys dev, staging and prod."
  }
}

variable "deploy_vpc_configs" {
  description = "VPC and private subnets (with a route to the internet through NAT) each environment's Apply project runs in, keyed by environment (Plan needs no VPC: it does not reach the cluster). Needed to reach an EKS API endpoint that is private; the subnets must be in this account (the environment's own, or shared to it with AWS RAM). An environment without an entry runs outside any VPC."
  type = map(object({
    vpc_id     = string
    subnet_ids = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for env in keys(var.deploy_vpc_configs) : contains(["dev", "staging", "prod"], env)])
    error_message = "deploy_vpc_configs keys must be among dev, staging and prod."
  }

  validation {
    condition     = alltrue([for config in values(var.deploy_vpc_configs) : length(config.subnet_ids) >= 1])
    error_message = "Each deploy VPC configuration needs at least one subnet."
  }
}

variable "ecr_repository_names" {
  description = "Images the build pushes, one ECR repository each (<resource_prefix>-<name>)."
  type        = list(string)
  default     = ["core", "auth-proxy"]

  validation {
    condition     = alltrue([for name in var.ecr_repository_names : can(regex("^[a-z][a-z0-9-]*$", name))])
    error_message = "ecr_repository_names must be lower-case names of letters, digits and hyphens."
  }
}

variable "image_pull_principal_arns" {
  description = "Principals outside this account allowed to pull the images (e.g. the node roles or account roots of the staging and prod accounts). Empty when every cluster is in this account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.image_pull_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+)$", arn))])
    error_message = "image_pull_principal_arns must be IAM role ARNs or account root ARNs."
  }
}

variable "ecr_image_retention_count" {
  description = "Images kept per repository; older ones expire. Keep it above the number of builds between two production releases, or a release would find its image gone."
  type        = number
  default     = 200

  validation {
    condition     = var.ecr_image_retention_count >= 10
    error_message = "ecr_image_retention_count must be at least 10."
  }
}

variable "build_image" {
  description = "CodeBuild image of the build project (buildspec.yml expects Amazon Linux 2023, the Lambda runtime's glibc)."
  type        = string
  default     = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
}

variable "deploy_image" {
  description = "CodeBuild image (x86_64) of the deploy projects."
  type        = string
  default     = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
}

variable "build_environment_type" {
  description = "CodeBuild environment type of the build project: LINUX_CONTAINER (x86_64) or ARM_CONTAINER (arm64, with an aarch64 build_image), to build arm64 images natively rather than under emulation."
  type        = string
  default     = "LINUX_CONTAINER"

  validation {
    condition     = contains(["LINUX_CONTAINER", "ARM_CONTAINER"], var.build_environment_type)
    error_message = "build_environment_type must be LINUX_CONTAINER or ARM_CONTAINER."
  }
}

variable "build_compute_type" {
  description = "CodeBuild compute type of the build project (Rust release builds of the workspace, tests and images)."
  type        = string
  default     = "BUILD_GENERAL1_LARGE"
}

variable "deploy_compute_type" {
  description = "CodeBuild compute type of the deploy projects (terraform and ansible-playbook)."
  type        = string
  default     = "BUILD_GENERAL1_SMALL"
}

variable "build_timeout_in_minutes" {
  description = "Time after which a build is stopped."
  type        = number
  default     = 120

  validation {
    condition     = var.build_timeout_in_minutes >= 5 && var.build_timeout_in_minutes <= 2160
    error_message = "build_timeout_in_minutes must be between 5 and 2160."
  }
}

variable "deploy_timeout_in_minutes" {
  description = "Time after which a plan or apply is stopped (a first apply creates an EKS cluster)."
  type        = number
  default     = 120

  validation {
    condition     = var.deploy_timeout_in_minutes >= 5 && var.deploy_timeout_in_minutes <= 2160
    error_message = "deploy_timeout_in_minutes must be between 5 and 2160."
  }
}

variable "build_buildspec" {
  description = "Path, in the repository, of the build project's buildspec."
  type        = string
  default     = "buildspec.yml"
}

variable "deploy_buildspec" {
  description = "Path, in the repository, of the deploy projects' buildspec (plan or apply of one environment, then ansible-playbook deploy.yml)."
  type        = string
  default     = "buildspec-deploy.yml"
}

variable "log_retention_in_days" {
  description = "Retention of the CodeBuild logs (they are the record of what was deployed and who approved it)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "artifact_retention_in_days" {
  description = "Days pipeline artifacts (sources, Lambda zips, saved plans) are kept; they are only needed while an execution waits for approval."
  type        = number
  default     = 30

  validation {
    condition     = var.artifact_retention_in_days >= 7
    error_message = "artifact_retention_in_days must be at least 7 (an approval may wait that long)."
  }
}

variable "access_log_retention_in_days" {
  description = "Days the artifact bucket's S3 server access logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_in_days >= 90
    error_message = "access_log_retention_in_days must be at least 90."
  }
}

variable "approval_email" {
  description = "Address subscribed to the approval topic, told when staging or prod waits for approval; null subscribes nobody (approvers watch the console)."
  type        = string
  default     = null

  validation {
    condition     = var.approval_email == null || can(regex("^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$", var.approval_email))
    error_message = "approval_email must be null or an e-mail address."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before KMS deletes the pipeline key once scheduled for deletion."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
