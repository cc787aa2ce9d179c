output "codepipeline_name" {
  description = "Name of the pipeline."
  value       = module.pipeline.codepipeline_name
}

output "codestarconnections_connection_arn" {
  description = "ARN of the GitHub connection: complete it once in the console (Developer Tools > Settings > Connections) before the pipeline can run."
  value       = module.pipeline.codestarconnections_connection_arn
}

output "codestarconnections_connection_status" {
  description = "PENDING until the GitHub connection is completed in the console, then AVAILABLE."
  value       = module.pipeline.codestarconnections_connection_status
}

output "ecr_repository_urls" {
  description = "Repository URL of each image, keyed core and auth-proxy."
  value       = module.pipeline.ecr_repository_urls
}

output "s3_bucket_artifacts_name" {
  description = "Name of the pipeline's artifact bucket."
  value       = module.pipeline.s3_bucket_artifacts_name
}

output "deploy_iam_role_arns" {
  description = "Service role of each environment's Apply project: the only principal each environment's deploy role may trust."
  value       = module.pipeline.deploy_iam_role_arns
}

output "plan_iam_role_arns" {
  description = "Service role of each environment's Plan project: the only principal each environment's plan role may trust."
  value       = module.pipeline.plan_iam_role_arns
}

output "deploy_security_group_ids" {
  description = "Security group of each Apply project that runs in a VPC: its EKS cluster security group must admit HTTPS from it."
  value       = module.pipeline.deploy_security_group_ids
}

output "sns_topic_approvals_arn" {
  description = "Topic told when staging or prod waits for approval."
  value       = module.pipeline.sns_topic_approvals_arn
}
