output "eks_cluster_name" {
  description = "Name of the cluster (<resource_prefix>-eks)."
  value       = aws_eks_cluster.this.name
}

output "eks_cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_eks_cluster.this.arn
}

output "eks_cluster_endpoint" {
  description = "Private endpoint of the Kubernetes API (reachable from inside the VPC only)."
  value       = aws_eks_cluster.this.endpoint
}

output "eks_cluster_certificate_authority_data" {
  description = "Base64 PEM of the cluster's certificate authority, for kubeconfig."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider of the cluster's service-account issuer (IRSA)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer_url" {
  description = "Service-account token issuer of the cluster (https://oidc.eks.<region>.amazonaws.com/id/...)."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "iam_role_arns" {
  description = "IRSA role ARN of each service, keyed by service (core, auth-proxy): the eks.amazonaws.com/role-arn annotation of its ServiceAccount, and the key_users of the keys module."
  value       = { for service in keys(var.service_policy_statements) : service => aws_iam_role.irsa[service].arn }
}

output "node_group_autoscaling_group_names" {
  description = "Auto Scaling groups of the managed node group (targets of the internal load balancer)."
  value       = flatten([for resource in aws_eks_node_group.this.resources : [for group in resource.autoscaling_groups : group.name]])
}

output "node_security_group_id" {
  description = "The cluster security group EKS creates, which the managed nodes use: the api module opens the auth-proxy NodePort on it."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "kms_key_arn" {
  description = "ARN of the key that envelope-encrypts the cluster's Kubernetes secrets."
  value       = aws_kms_key.secrets.arn
}
