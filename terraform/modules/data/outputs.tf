output "dynamodb_table_names" {
  description = "Physical name of each table, keyed by schema name."
  value       = { for name, table in aws_dynamodb_table.this : name => table.name }
}

output "dynamodb_table_arns" {
  description = "ARN of each table, keyed by schema name."
  value       = { for name, table in aws_dynamodb_table.this : name => table.arn }
}

output "dynamodb_table_stream_arns" {
  description = "Stream ARN of each table that has a stream, keyed by schema name."
  value       = { for name, table in aws_dynamodb_table.this : name => table.stream_arn if table.stream_enabled }
}
