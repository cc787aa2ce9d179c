# The delivery account's pipeline: one CodePipeline promotes every push to the
# branch from dev to staging to prod (modules/pipeline). Applied by hand, once
# and after each change here; the environments are applied by the pipeline.
#
# Before the first run of the pipeline:
# 1. Complete the GitHub connection in the console (output
#    codestarconnections_connection_arn stays PENDING until then).
# 2. Give each environment (var.environment_roles) a deploy role that trusts its
#    Apply project's service role (output deploy_iam_role_arns), may apply that
#    environment's Terraform and read and write its state, and is an access
#    entry of its EKS cluster (eks module cluster_admin_principal_arns); and a
#    plan role that trusts its Plan project's service role (output
#    plan_iam_role_arns) and may only read (docs/deploy.md, step 3).

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Project     = "rampart"
      Environment = "delivery"
      ManagedBy   = "terraform"
    }
  }
}

module "pipeline" {
  source = "../modules/pipeline"

  resource_prefix           = var.resource_prefix
  repository_id             = var.repository_id
  branch_name               = var.branch_name
  environment_roles         = var.environment_roles
  terraform_backends        = var.terraform_backends
  deploy_vpc_configs        = var.deploy_vpc_configs
  image_pull_principal_arns = var.image_pull_principal_arns
  approval_email            = var.approval_email
  # The images and Lambda zips are arm64 (Graviton nodes and functions) and are
  # compiled natively, so the build runs on an arm64 host.
  build_environment_type = "ARM_CONTAINER"
  build_image            = "aws/codebuild/amazonlinux-aarch64-standard:3.0"
}
