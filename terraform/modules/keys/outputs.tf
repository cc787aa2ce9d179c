output "kms_key_arns" {
  description = "ARN of each schema key, keyed by schema name."
  value       = { for name, key in aws_kms_key.this : name => key.arn }
}

output "kms_key_ids" {
  description = "Key ID of each schema key, keyed by schema name."
  value       = { for name, key in aws_kms_key.this : name => key.key_id }
}

output "kms_alias_names" {
  description = "Alias of each schema key (alias/<resource_prefix>-<name>), keyed by schema name."
  value       = { for name, alias in aws_kms_alias.this : name => alias.name }
}

output "kms_alias_arns" {
  description = "Alias ARN of each schema key, keyed by schema name."
  value       = { for name, alias in aws_kms_alias.this : name => alias.arn }
}

output "storage_kms_key_arn" {
  description = "ARN of the storage key that encrypts tables and secrets at rest."
  value       = aws_kms_key.storage.arn
}

output "storage_kms_alias_name" {
  description = "Alias of the storage key."
  value       = aws_kms_alias.storage.name
}

output "logs_kms_key_arn" {
  description = "ARN of the key that encrypts CloudWatch log groups and dead-letter queues."
  value       = aws_kms_key.logs.arn
}
