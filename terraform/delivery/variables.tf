variable "aws_region" {
  description = "AWS region of the pipeline, its repositories and its artifact bucket."
  type        = string
  default     = "eu-west-1"
}

variable "resource_prefix" {
  description = "Prefix of every physical name of the delivery account's resources (at most 25 characters: the GitHub connection name is <resource_prefix>-github, at most 32)."
  type        = string
  default     = "rampart-delivery"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.resource_prefix))
    error_message = "resource_prefix must be 3-40 characters of lower-case letters, digits and hyphens, starting with a letter and ending with a letter or digit (schema/platform.json resource_prefix)."
  }
}

variable "repository_id" {
  description = "GitHub repository the pipeline builds, as owner/name."
  type        = string
}

variable "branch_name" {
  description = "Branch whose pushes are built and promoted."
  type        = string
  default     = "main"
}

variable "environment_roles" {
  description = "Each environment's plan role (read-only, assumed by its Plan project before the approval) and deploy role (assumed by its Apply project after it), keyed dev, staging and prod."
  type = map(object({
    plan   = string
    deploy = string
  }))
}

variable "terraform_backends" {
  description = "S3 backend (bucket, key, region) of each environment's state, keyed dev, staging and prod: what each environment's backend.hcl says."
  type = map(object({
    bucket = string
    key    = string
    region = string
  }))
}

variable "deploy_vpc_configs" {
  description = "VPC and private subnets each Apply project runs in to reach its private EKS endpoint, keyed by environment (this account's subnets, or subnets shared to it with AWS RAM). Filled once the environment's network exists."
  type = map(object({
    vpc_id     = string
    subnet_ids = list(string)
  }))
  default = {}
}

variable "image_pull_principal_arns" {
  description = "Principals of other accounts allowed to pull the images (the staging and prod accounts' node roles or roots, when they are separate accounts)."
  type        = list(string)
  default     = []
}

variable "approval_email" {
  description = "Address told when staging or prod waits for approval; null for none."
  type        = string
  default     = null
}
