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
  value       = aws_s3_bucket.artifacts.bucket
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the artifacts, images, build logs and approval topic."
  value       = aws_kms_key.pipeline.arn
}

output "codebuild_project_names" {
  description = "CodeBuild project names: build, and deploy-<environment> for dev, staging and prod."
  value = merge(
    { build = aws_codebuild_project.build.name },
    { for env, project in aws_codebuild_project.deploy : "deploy-${env}" => project.name },
  )
}

output "deploy_iam_role_arns" {
  description = "Service role of each environment's deploy project, keyed dev, staging and prod: the principal each deploy role in var.deploy_role_arns must trust (and the EKS access entry ansible-playbook uses is the deploy role's, not this one)."
  value       = { for env, role in aws_iam_role.deploy : env => role.arn }
}

output "deploy_security_group_ids" {
  description = "Security group of each deploy project that runs in a VPC, keyed by environment: the EKS cluster security group must admit HTTPS from it."
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
