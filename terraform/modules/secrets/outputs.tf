output "secretsmanager_secret_arns" {
  description = "ARN of each secret, keyed by schema name."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}

output "secretsmanager_secret_names" {
  description = "Physical name of each secret (<resource_prefix>/<name>), keyed by schema name."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.name }
}
