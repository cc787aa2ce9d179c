# The delivery pipeline: one CodePipeline (V2) for the account promotes each push
# to the branch through every environment.
#
#   Source          GitHub, through a CodeConnections connection
#   Build           buildspec.yml: tests and checks, Lambda zips, images pushed to ECR
#   Deploy-dev      Plan, then Apply (terraform apply of the saved plan, then
#                   ansible-playbook deploy.yml)
#   Deploy-staging  Plan, manual approval of that plan, Apply
#   Deploy-prod     Plan, manual approval of that plan, Apply
#
# Security decisions:
# - The build project runs third-party code (crate build scripts, tests), so it
#   gets no credentials for any environment: it can push images and write the
#   build artifact, nothing else. Plans are therefore made by each environment's Plan project.
# - Each environment has two projects with a service role each. Plan runs the
#   commit's code (Terraform, its providers, data sources) before anyone has
#   approved it, so its role may only assume the environment's plan role
#   (var.environment_roles[env].plan), which can read but not change the
#   environment. Apply runs the approved plan, and only its role may assume the
#   deploy role (var.environment_roles[env].deploy). The broad Terraform permissions live in that role,
#   owned by the environment (and its account), not here: a compromised dev
#   deploy cannot reach prod, and an unapproved commit cannot change anything.
# - Staging and prod are planned inside their stage, right before the approval,
#   and the approved saved plan is what is applied. A stage runs one execution at
#   a time, so nothing can change that environment between plan and apply.
# - One KMS key encrypts the artifacts, images, build logs and approval topic;
#   the artifact bucket is private, TLS-only and versioned; image tags are
#   immutable, so a tag always names the image that was tested.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  pipeline_name      = "${var.resource_prefix}-pipeline"
  # Bucket names are global: the account id keeps this one unique.
  artifacts_bucket_name = "${var.resource_prefix}-artifacts-${local.account_id}"
  build_project_name = "${var.resource_prefix}-build"
  # The Plan and Apply projects of each environment, keyed <env>-plan and
  # <env>-apply, with the environment role each may assume.
  deploy_projects = merge([
    for env in local.environments : {
      "${env}-plan"  = { environment = env, action = "plan", name = "${var.resource_prefix}-plan-${env}", role_arn = var.environment_roles[env].plan }
      "${env}-apply" = { environment = env, action = "apply", name = "${var.resource_prefix}-deploy-${env}", role_arn = var.environment_roles[env].deploy }
    }
  ]...)

  # Promotion order; the ones listed in `approved` wait for a person.
  environments = ["dev", "staging", "prod"]
  approved     = ["staging", "prod"]

  # Where CodePipeline keeps each artifact in the bucket: the pipeline's name cut
  # to 20 characters, then the artifact's cut to 10. Each project may read only
  # what it is given and write only what it makes, so no build can replace a plan
  # waiting for approval, nor read another environment's plan.
  artifact_objects = {
    for artifact in concat(["source", "build"], [for env in local.environments : "plan_${env}"]) :
    artifact => "${module.artifacts_bucket.arn}/${substr(local.pipeline_name, 0, 20)}/${substr(artifact, 0, 10)}/*"
  }

  log_group_name = "/aws/codebuild/${var.resource_prefix}"
  # Built rather than read from the log group, which depends on the key whose
  # policy names it.
  log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  ecr_registry = "${local.account_id}.dkr.ecr.${local.region}.${data.aws_partition.current.dns_suffix}"

  codebuild_project_arn = "arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project"
  pipeline_arn          = "arn:${local.partition}:codepipeline:${local.region}:${local.account_id}:${local.pipeline_name}"

  # Variables of the source action (namespace SourceVariables) every build gets.
  commit_variable = { name = "COMMIT_ID", value = "#{SourceVariables.CommitId}", type = "PLAINTEXT" }

  # The deploy subnets, in whichever account owns them: an environment's own
  # subnets shared to this account with AWS RAM keep their owner's account in
  # their ARN. Subnet ids are unique, so the id alone pins the subnet.
  deploy_subnet_arns = {
    for env, config in var.deploy_vpc_configs :
    env => [for subnet in config.subnet_ids : "arn:${local.partition}:ec2:${local.region}:*:subnet/${subnet}"]
  }

  # Only Apply runs deploy.yml, so only Apply needs the private EKS endpoint.
  in_vpc = {
    for key, project in local.deploy_projects :
    key => project.action == "apply" && contains(keys(var.deploy_vpc_configs), project.environment)
  }
}

# --- Source -------------------------------------------------------------------

# Terraform creates the connection in the PENDING state: the GitHub side (the AWS
# Connector for GitHub app, installed on the repository's owner) can only be
# authorised by a person. Once, after the first apply, an administrator opens
# Developer Tools > Settings > Connections, chooses this connection, "Update
# pending connection", and installs or picks the app. Until then the Source
# action fails and no push starts the pipeline.
resource "aws_codestarconnections_connection" "github" {
  name          = "${var.resource_prefix}-github"
  provider_type = "GitHub"

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length("${var.resource_prefix}-github") <= 32
      error_message = "Connection names are at most 32 characters: resource_prefix must be at most 25 characters here."
    }
  }
}

# --- Encryption ---------------------------------------------------------------

resource "aws_kms_key" "pipeline" {
  description             = "${var.resource_prefix}-pipeline: encrypts pipeline artifacts, images, build logs and approval notifications"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # As in modules/keys: the account administers the key, and the roles
        # below are granted its use by their IAM policies.
        Sid       = "AccountRootAdministersKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts the build log group, and only that one.
        Sid       = "CloudWatchLogsEncryptsBuildLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.${data.aws_partition.current.dns_suffix}" }
        Action    = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
        Resource  = "*"
        Condition = { ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = local.log_group_arn } }
      },
    ]
  })

  tags = merge(var.tags, { Name = "${var.resource_prefix}-pipeline" })
}

resource "aws_kms_alias" "pipeline" {
  name          = "alias/${var.resource_prefix}-pipeline"
  target_key_id = aws_kms_key.pipeline.key_id
}

# --- Artifact bucket ----------------------------------------------------------

module "artifacts_bucket" {
  source = "../bucket"

  name        = local.artifacts_bucket_name
  kms_key_arn = aws_kms_key.pipeline.arn
  # Saved plans hold secrets of the environments (e.g. the CloudFront origin
  # secret): keep them no longer than an execution can wait for approval.
  expiration_days = var.artifact_retention_in_days
  # Who read or wrote which artifact.
  access_log_target = { bucket = module.access_logs_bucket.id, prefix = "artifacts/" }

  tags = merge(var.tags, { Name = "${var.resource_prefix}-artifacts" })
}

# Server access logs of the artifact bucket. S3 server access logging writes
# with SSE-S3 only.
module "access_logs_bucket" {
  source = "../bucket"

  name            = "${var.resource_prefix}-s3-logs-${local.account_id}"
  expiration_days = var.access_log_retention_in_days
  # The S3 logging service writes the artifact bucket's logs, and only those
  # (the artifact bucket's ARN from its name: the module that makes it needs
  # this bucket first).
  log_writers = [{
    service    = "logging.s3.amazonaws.com"
    prefix     = "artifacts"
    source_arn = "arn:${local.partition}:s3:::${local.artifacts_bucket_name}"
  }]

  tags = merge(var.tags, { Name = "${var.resource_prefix}-s3-logs" })
}

moved {
  from = aws_s3_bucket.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_logging.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_logging.this[0]
}

moved {
  from = aws_s3_bucket_policy.artifacts
  to   = module.artifacts_bucket.aws_s3_bucket_policy.this
}

moved {
  from = aws_s3_bucket.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_policy.access_logs
  to   = module.access_logs_bucket.aws_s3_bucket_policy.this
}

# --- Images -------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  for_each = toset(var.ecr_repository_names)

  name = "${var.resource_prefix}-${each.key}"
  # A tag (the commit) always names the image that was built and tested from it.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.pipeline.arn
  }

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${each.key}" })
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged images (layers of replaced or failed pushes) go after 7 days"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 7 }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.ecr_image_retention_count} images"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.ecr_image_retention_count }
        action       = { type = "expire" }
      },
    ]
  })
}

# Clusters in other accounts pull; nobody outside them does, and nobody but the
# build project pushes.
resource "aws_ecr_repository_policy" "this" {
  for_each = { for name, repository in aws_ecr_repository.this : name => repository if length(var.image_pull_principal_arns) > 0 }

  repository = each.value.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ClustersPull"
      Effect    = "Allow"
      Principal = { AWS = sort(var.image_pull_principal_arns) }
      Action    = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    }]
  })
}

# --- Build logs and approvals ---------------------------------------------------

resource "aws_cloudwatch_log_group" "codebuild" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = aws_kms_key.pipeline.arn

  tags = var.tags
}

resource "aws_sns_topic" "approvals" {
  name              = "${var.resource_prefix}-approvals"
  kms_master_key_id = aws_kms_key.pipeline.arn

  tags = var.tags
}

resource "aws_sns_topic_policy" "approvals" {
  arn = aws_sns_topic.approvals.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # Publishing is granted by the pipeline role's IAM policy; this only refuses plain HTTP.
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.approvals.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_sns_topic_subscription" "approvals_email" {
  count = var.approval_email == null ? 0 : 1

  topic_arn = aws_sns_topic.approvals.arn
  protocol  = "email"
  endpoint  = var.approval_email
}

# --- IAM ----------------------------------------------------------------------

# What every CodeBuild project needs: its logs, the bucket's location and the key;
# each project's own statements say which artifacts it reads and writes.
data "aws_iam_policy_document" "codebuild_common" {
  statement {
    sid       = "WriteBuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:log-stream:*"]
  }

  statement {
    sid       = "LocateArtifactBucket"
    actions   = ["s3:GetBucketAcl", "s3:GetBucketLocation"]
    resources = [module.artifacts_bucket.arn]
  }

  statement {
    sid       = "UsePipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.pipeline.arn]
  }
}

data "aws_iam_policy_document" "pipeline_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codepipeline.amazonaws.com"]
    }

    # Only this pipeline, not any pipeline that names the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.pipeline_arn]
    }
  }
}

resource "aws_iam_role" "pipeline" {
  name               = "${var.resource_prefix}-pipeline"
  assume_role_policy = data.aws_iam_policy_document.pipeline_trust.json

  tags = var.tags
}

data "aws_iam_policy_document" "pipeline" {
  statement {
    # CodeStar Connections is now named CodeConnections; which prefix IAM
    # checks depends on the service name in the connection's ARN.
    sid       = "UseGitHubConnection"
    actions   = ["codestar-connections:UseConnection", "codeconnections:UseConnection"]
    resources = [aws_codestarconnections_connection.github.arn]
  }

  statement {
    sid       = "StoreArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${module.artifacts_bucket.arn}/*"]
  }

  statement {
    sid       = "LocateArtifactBucket"
    actions   = ["s3:GetBucketLocation", "s3:GetBucketVersioning"]
    resources = [module.artifacts_bucket.arn]
  }

  statement {
    sid       = "UsePipelineKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.pipeline.arn]
  }

  statement {
    sid     = "RunBuilds"
    actions = ["codebuild:BatchGetBuilds", "codebuild:StartBuild"]
    resources = concat(
      [aws_codebuild_project.build.arn],
      [for project in aws_codebuild_project.deploy : project.arn],
    )
  }

  statement {
    sid       = "NotifyApprovers"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.approvals.arn]
  }
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

data "aws_iam_policy_document" "codebuild_trust" {
  for_each = merge({ build = local.build_project_name }, { for key, project in local.deploy_projects : key => project.name })

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    # Only the one project this role serves.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = ["${local.codebuild_project_arn}/${each.value}"]
    }
  }
}

resource "aws_iam_role" "build" {
  name               = local.build_project_name
  assume_role_policy = data.aws_iam_policy_document.codebuild_trust["build"].json

  tags = var.tags
}

data "aws_iam_policy_document" "build" {
  source_policy_documents = [data.aws_iam_policy_document.codebuild_common.json]

  statement {
    sid       = "ReadSource"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [local.artifact_objects["source"]]
  }

  statement {
    sid       = "WriteBuildOutput"
    actions   = ["s3:PutObject"]
    resources = [local.artifact_objects["build"]]
  }

  statement {
    # buildspec.yml's `reports`: the test results, in this project's report groups only.
    sid = "PublishTestReports"
    actions = [
      "codebuild:BatchPutTestCases",
      "codebuild:CreateReport",
      "codebuild:CreateReportGroup",
      "codebuild:UpdateReport",
    ]
    resources = ["arn:${local.partition}:codebuild:${local.region}:${local.account_id}:report-group/${local.build_project_name}-*"]
  }

  statement {
    # docker login to the registry: an account-level call without a resource.
    sid       = "LogInToRegistry"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    # Push, read back the digest, and wait for the scan on push.
    sid = "PushImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImageScanFindings",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [for repository in aws_ecr_repository.this : repository.arn]
  }
}

resource "aws_iam_role_policy" "build" {
  name   = "build"
  role   = aws_iam_role.build.id
  policy = data.aws_iam_policy_document.build.json
}

resource "aws_iam_role" "deploy" {
  for_each = local.deploy_projects

  name               = each.value.name
  assume_role_policy = data.aws_iam_policy_document.codebuild_trust[each.key].json

  tags = var.tags
}

data "aws_iam_policy_document" "deploy" {
  for_each = local.deploy_projects

  source_policy_documents = [data.aws_iam_policy_document.codebuild_common.json]

  statement {
    # The source and the build output; Apply also reads its environment's
    # saved plan, which only that environment's Plan may write.
    sid     = "ReadInputs"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = concat(
      [local.artifact_objects["source"], local.artifact_objects["build"]],
      each.value.action == "apply" ? [local.artifact_objects["plan_${each.value.environment}"]] : [],
    )
  }

  dynamic "statement" {
    for_each = each.value.action == "plan" ? [each.value.environment] : []

    content {
      sid       = "WriteOwnPlan"
      actions   = ["s3:PutObject"]
      resources = [local.artifact_objects["plan_${statement.value}"]]
    }
  }

  statement {
    # The only way into the environment: its plan role (read-only) for Plan,
    # its deploy role for Apply.
    sid       = "AssumeEnvironmentRole"
    actions   = ["sts:AssumeRole"]
    resources = [each.value.role_arn]
  }

  # A project in a VPC: CodeBuild attaches a network interface in the
  # environment's subnets (to reach the private EKS endpoint) with this role.
  dynamic "statement" {
    for_each = local.in_vpc[each.key] ? [var.deploy_vpc_configs[each.value.environment]] : []

    content {
      sid = "AttachToDeploySubnets"
      # Interface ids are unknown until CodeBuild makes them; the subnets and
      # the security group pin where.
      actions = ["ec2:CreateNetworkInterface"]
      resources = concat(
        ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"],
        local.deploy_subnet_arns[each.value.environment],
        [aws_security_group.deploy[each.value.environment].arn],
      )
    }
  }

  dynamic "statement" {
    for_each = local.in_vpc[each.key] ? [var.deploy_vpc_configs[each.value.environment]] : []

    content {
      sid       = "LetCodeBuildUseTheInterface"
      actions   = ["ec2:CreateNetworkInterfacePermission"]
      resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]

      condition {
        test     = "StringEquals"
        variable = "ec2:AuthorizedService"
        values   = ["codebuild.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "ec2:Subnet"
        values   = local.deploy_subnet_arns[each.value.environment]
      }
    }
  }

  dynamic "statement" {
    for_each = local.in_vpc[each.key] ? [var.deploy_vpc_configs[each.value.environment]] : []

    content {
      # CodeBuild removes the interfaces it attached once the build ends.
      sid       = "DetachFromDeploySubnets"
      actions   = ["ec2:DeleteNetworkInterface"]
      resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]
    }
  }

  dynamic "statement" {
    for_each = local.in_vpc[each.key] ? [var.deploy_vpc_configs[each.value.environment]] : []

    content {
      # EC2 Describe calls cannot be scoped to a resource.
      sid       = "DescribeNetwork"
      actions   = ["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  for_each = aws_iam_role.deploy

  name   = "deploy"
  role   = each.value.id
  policy = data.aws_iam_policy_document.deploy[each.key].json
}

# Deploy projects in a VPC reach AWS APIs, the EKS endpoint, GitHub and the
# Terraform and Python registries over HTTPS only; nothing may connect to them.
resource "aws_security_group" "deploy" {
  for_each = var.deploy_vpc_configs

  name        = local.deploy_projects["${each.key}-apply"].name
  description = "CodeBuild Apply project of ${each.key}: HTTPS out only"
  vpc_id      = each.value.vpc_id

  egress {
    description = "HTTPS to AWS APIs, the EKS API endpoint and the tool registries"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = merge(var.tags, { Name = local.deploy_projects["${each.key}-apply"].name })
}

# Each environment's one deploy project became its Apply project (same name).

moved {
  from = aws_iam_role.deploy["dev"]
  to   = aws_iam_role.deploy["dev-apply"]
}

moved {
  from = aws_iam_role_policy.deploy["dev"]
  to   = aws_iam_role_policy.deploy["dev-apply"]
}

moved {
  from = aws_codebuild_project.deploy["dev"]
  to   = aws_codebuild_project.deploy["dev-apply"]
}

moved {
  from = aws_iam_role.deploy["staging"]
  to   = aws_iam_role.deploy["staging-apply"]
}

moved {
  from = aws_iam_role_policy.deploy["staging"]
  to   = aws_iam_role_policy.deploy["staging-apply"]
}

moved {
  from = aws_codebuild_project.deploy["staging"]
  to   = aws_codebuild_project.deploy["staging-apply"]
}

moved {
  from = aws_iam_role.deploy["prod"]
  to   = aws_iam_role.deploy["prod-apply"]
}

moved {
  from = aws_iam_role_policy.deploy["prod"]
  to   = aws_iam_role_policy.deploy["prod-apply"]
}

moved {
  from = aws_codebuild_project.deploy["prod"]
  to   = aws_codebuild_project.deploy["prod-apply"]
}

# --- CodeBuild ----------------------------------------------------------------

resource "aws_codebuild_project" "build" {
  #checkov:skip=CKV_AWS_316:buildspec.yml builds the core and auth-proxy images with docker build, which needs the Docker daemon and so privileged mode. This project holds no environment credentials (see the header comment).
  name           = local.build_project_name
  description    = "Tests, checks and builds ${var.repository_id}: Lambda zips and images (${var.build_buildspec})"
  service_role   = aws_iam_role.build.arn
  encryption_key = aws_kms_key.pipeline.arn
  build_timeout  = var.build_timeout_in_minutes
  queued_timeout = 480

  source {
    type      = "CODEPIPELINE"
    buildspec = var.build_buildspec
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  cache {
    type  = "LOCAL"
    modes = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_CUSTOM_CACHE"]
  }

  environment {
    type                        = var.build_environment_type
    compute_type                = var.build_compute_type
    image                       = var.build_image
    image_pull_credentials_type = "CODEBUILD"
    privileged_mode             = true

    environment_variable {
      name  = "ECR_REGISTRY"
      value = local.ecr_registry
    }

    dynamic "environment_variable" {
      for_each = aws_ecr_repository.this

      content {
        name  = "ECR_REPOSITORY_URL_${upper(replace(environment_variable.key, "-", "_"))}"
        value = environment_variable.value.repository_url
      }
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name  = aws_cloudwatch_log_group.codebuild.name
      stream_name = "build"
    }

    s3_logs {
      status = "DISABLED"
    }
  }

  tags = var.tags

  # CodeBuild checks the role's permissions when the project is created.
  depends_on = [aws_iam_role_policy.build]
}

resource "aws_codebuild_project" "deploy" {
  for_each = local.deploy_projects

  name = each.value.name
  description = (each.value.action == "plan"
    ? "Plans terraform/platform with the ${each.value.environment} values, as the environment's read-only plan role (${var.deploy_buildspec})"
    : "Applies the approved plan of ${each.value.environment}, then runs ansible-playbook deploy.yml for ${each.value.environment} (${var.deploy_buildspec})"
  )
  service_role   = aws_iam_role.deploy[each.key].arn
  encryption_key = aws_kms_key.pipeline.arn
  build_timeout  = var.deploy_timeout_in_minutes
  queued_timeout = 480
  # Never two plans or two applies of one environment at once (the state lock
  # would refuse the second; this keeps it from starting).
  concurrent_build_limit = 1

  source {
    type      = "CODEPIPELINE"
    buildspec = var.deploy_buildspec
  }

  artifacts {
    type = "CODEPIPELINE"
  }

  environment {
    type                        = "LINUX_CONTAINER"
    compute_type                = var.deploy_compute_type
    image                       = var.deploy_image
    image_pull_credentials_type = "CODEBUILD"
    privileged_mode             = false

    environment_variable {
      name  = "DEPLOY_ENVIRONMENT"
      value = each.value.environment
    }

    # Set on the project, not by the pipeline action: what a project may do
    # follows from its role, and the two must not disagree.
    environment_variable {
      name  = "DEPLOY_ACTION"
      value = each.value.action
    }

    environment_variable {
      name  = "ENVIRONMENT_ROLE_ARN"
      value = each.value.role_arn
    }

    environment_variable {
      name  = "TF_STATE_BUCKET"
      value = var.terraform_backends[each.value.environment].bucket
    }

    environment_variable {
      name  = "TF_STATE_KEY"
      value = var.terraform_backends[each.value.environment].key
    }

    environment_variable {
      name  = "TF_STATE_REGION"
      value = var.terraform_backends[each.value.environment].region
    }

    environment_variable {
      name  = "TF_IN_AUTOMATION"
      value = "1"
    }

    environment_variable {
      name  = "TF_INPUT"
      value = "0"
    }
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc[each.key] ? [var.deploy_vpc_configs[each.value.environment]] : []

    content {
      vpc_id             = vpc_config.value.vpc_id
      subnets            = vpc_config.value.subnet_ids
      security_group_ids = [aws_security_group.deploy[each.value.environment].id]
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name  = aws_cloudwatch_log_group.codebuild.name
      stream_name = "${each.value.action}-${each.value.environment}"
    }

    s3_logs {
      status = "DISABLED"
    }
  }

  tags = var.tags

  # CodeBuild checks the role's permissions (the VPC ones included) when the
  # project is created.
  depends_on = [aws_iam_role_policy.deploy]
}

# --- Pipeline -----------------------------------------------------------------

resource "aws_codepipeline" "this" {
  name          = local.pipeline_name
  pipeline_type = "V2"
  role_arn      = aws_iam_role.pipeline.arn
  # A newer push overtakes older executions still waiting to enter a stage; an
  # execution inside a stage (between its plan and its apply) is never overtaken.
  execution_mode = "SUPERSEDED"

  artifact_store {
    type     = "S3"
    location = module.artifacts_bucket.id

    encryption_key {
      type = "KMS"
      id   = aws_kms_key.pipeline.arn
    }
  }

  trigger {
    provider_type = "CodeStarSourceConnection"

    git_configuration {
      source_action_name = "Source"

      push {
        branches {
          includes = [var.branch_name]
        }
      }
    }
  }

  stage {
    name = "Source"

    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeStarSourceConnection"
      version          = "1"
      namespace        = "SourceVariables"
      output_artifacts = ["source"]

      configuration = {
        ConnectionArn        = aws_codestarconnections_connection.github.arn
        FullRepositoryId     = var.repository_id
        BranchName           = var.branch_name
        OutputArtifactFormat = "CODE_ZIP"
      }
    }
  }

  stage {
    name = "Build"

    action {
      name             = "Build"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      input_artifacts  = ["source"]
      output_artifacts = ["build"]

      configuration = {
        ProjectName          = aws_codebuild_project.build.name
        EnvironmentVariables = jsonencode([local.commit_variable])
      }
    }
  }

  dynamic "stage" {
    for_each = local.environments

    content {
      name = "Deploy-${stage.value}"

      action {
        name             = "Plan"
        category         = "Build"
        owner            = "AWS"
        provider         = "CodeBuild"
        version          = "1"
        run_order        = 1
        namespace        = "Plan_${stage.value}"
        input_artifacts  = ["source", "build"]
        output_artifacts = ["plan_${stage.value}"]

        configuration = {
          ProjectName          = aws_codebuild_project.deploy["${stage.value}-plan"].name
          PrimarySource        = "source"
          EnvironmentVariables = jsonencode([local.commit_variable])
        }
      }

      dynamic "action" {
        for_each = contains(local.approved, stage.value) ? [stage.value] : []

        content {
          name      = "Approve"
          category  = "Approval"
          owner     = "AWS"
          provider  = "Manual"
          version   = "1"
          run_order = 2

          configuration = {
            NotificationArn    = aws_sns_topic.approvals.arn
            CustomData         = "Apply commit #{SourceVariables.CommitId} to ${action.value}: #{Plan_${action.value}.PLAN_SUMMARY} Read the whole plan in the linked Plan build log before approving."
            ExternalEntityLink = "#{Plan_${action.value}.PLAN_BUILD_URL}"
          }
        }
      }

      action {
        name            = "Apply"
        category        = "Build"
        owner           = "AWS"
        provider        = "CodeBuild"
        version         = "1"
        run_order       = contains(local.approved, stage.value) ? 3 : 2
        input_artifacts = ["source", "build", "plan_${stage.value}"]

        configuration = {
          ProjectName          = aws_codebuild_project.deploy["${stage.value}-apply"].name
          PrimarySource        = "source"
          EnvironmentVariables = jsonencode([local.commit_variable])
        }
      }
    }
  }

  tags = var.tags
}
