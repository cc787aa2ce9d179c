output "codepipeline_name" {
  description = "Name of the pipeline."
  value       = aws_codepipeline.this.name
}

output "codepipeline_arn" {
  description = "ARN of the pipeline."
  value       = aws_codepipeline.this.arn
}

output "codestarconnections_connection_arn" {
  description = "ARN of the GitHub connection; it stays PENDING until an administrator completes it once in the console (Developer Tools > Settings > Connections)."
  value       = aws_codestarconnections_connection.github.arn
}

output "codestarconnections_connection_status" {
  description = "Status of the GitHub connection (PENDING until completed in the console, then AVAILABLE)."
  value       = aws_codestarconnections_connection.github.connection_status
}

output "ecr_repository_urls" {
  description = "Repository URL of each image, keyed by image name (core, auth-proxy)."
  value       = { for name, repository in aws_ecr_repository.this : name => repository.repository_url }
}

output "ecr_repository_arns" {
  description = "Repository ARN of each image, keyed by image name."
  value       = { for name, repository in aws_ecr_repository.this : name => repository.arn }
}

output "s3_bucket_artifacts_name" {
  description = "Name of the encrypted artifact bucket."
  value       = module.artifacts_bucket.id
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the artifacts, images, build logs and approval topic."
  value       = aws_kms_key.pipeline.arn
}

output "codebuild_project_names" {
  description = "CodeBuild project names: build, and <environment>-plan and <environment>-apply for dev, staging and prod."
  value = merge(
    { build = aws_codebuild_project.build.name },
    { for key, project in aws_codebuild_project.deploy : key => project.name },
  )
}

output "plan_iam_role_arns" {
  description = "Service role of each environment's Plan project, keyed dev, staging and prod: the only principal each environment's plan role (var.environment_roles) may trust."
  value       = { for env in local.environments : env => aws_iam_role.deploy["${env}-plan"].arn }
}

output "deploy_iam_role_arns" {
  description = "Service role of each environment's Apply project, keyed dev, staging and prod: the only principal each environment's deploy role (var.environment_roles) may trust (and the EKS access entry ansible-playbook uses is the deploy role's, not this one)."
  value       = { for env in local.environments : env => aws_iam_role.deploy["${env}-apply"].arn }
}

output "deploy_security_group_ids" {
  description = "Security group of each Apply project that runs in a VPC, keyed by environment: the EKS cluster security group must admit HTTPS from it."
  value       = { for env, group in aws_security_group.deploy : env => group.id }
}

output "sns_topic_approvals_arn" {
  description = "ARN of the topic told when staging or prod waits for approval."
  value       = aws_sns_topic.approvals.arn
}

output "cloudwatch_log_group_name" {
  description = "Log group of every build, plan and apply."
  value       = aws_cloudwatch_log_group.codebuild.name
}
