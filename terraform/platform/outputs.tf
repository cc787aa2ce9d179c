output "function_environment" {
  description = "RAMPART_* environment variables for the deployed functions and services, keyed by variable name."
  value       = local.function_environment

  precondition {
    condition     = alltrue([for name in keys(local.function_environment) : contains(keys(local.schema.environment), name)])
    error_message = "function_environment has a variable that schema/platform.json \"environment\" does not name."
  }
}

output "user_pool_id" {
  description = "ID of the Cognito user pool."
  value       = module.identity.user_pool_id
}

output "user_pool_client_id" {
  description = "ID of the Cognito app client."
  value       = module.identity.user_pool_client_id
}

output "dynamodb_table_names" {
  description = "Physical table names, keyed by schema name."
  value       = module.data.dynamodb_table_names
}

output "kms_alias_names" {
  description = "KMS aliases, keyed by schema name."
  value       = module.keys.kms_alias_names
}

output "secretsmanager_secret_names" {
  description = "Secrets Manager secret names, keyed by schema name."
  value       = module.secrets.secretsmanager_secret_names
}

output "mail_dkim_tokens" {
  description = "Easy DKIM tokens of the sender domain: publish <token>._domainkey.<domain> CNAME <token>.dkim.amazonses.com for each before mail can be sent."
  value       = module.mail.dkim_tokens
}

output "issuer" {
  description = "The platform's public address and token issuer (tokens.issuer of core and the auth-proxy; deploy/overlays/<environment> names it)."
  value       = local.issuer
}

output "cloudfront_distribution_domain_name" {
  description = "CloudFront host name: point domain_name at it (an alias record, or a CNAME)."
  value       = module.edge.cloudfront_distribution_domain_name
}

output "cloudfront_distribution_hosted_zone_id" {
  description = "Hosted zone of the CloudFront distribution, for a Route 53 alias record."
  value       = module.edge.cloudfront_distribution_hosted_zone_id
}

output "eks_cluster_name" {
  description = "EKS cluster (ansible/inventory/<environment>.yml eks_cluster_name)."
  value       = module.eks.eks_cluster_name
}

output "service_iam_role_arns" {
  description = "IRSA roles of core and the auth-proxy (their ServiceAccounts' eks.amazonaws.com/role-arn)."
  value       = module.eks.iam_role_arns
}

output "lambda_function_names" {
  description = "Function names, keyed by crate in functions/."
  value       = module.functions.lambda_function_names
}

output "nat_gateway_public_ips" {
  description = "Addresses the environment's outbound traffic leaves from (allow-list them where the platform calls out)."
  value       = module.network.nat_gateway_public_ips
}

output "sns_topic_arn" {
  description = "Alarm topic of the environment's region (subscribe the on-call pager)."
  value       = module.observability.sns_topic_arn
}

output "vpc_id" {
  description = "The environment's VPC (the delivery root's deploy_vpc_configs runs the deploy step in it)."
  value       = module.network.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the VPC (deploy_vpc_configs subnet_ids)."
  value       = module.network.private_subnet_ids
}
