output "lambda_function_arns" {
  description = "ARN of each function, keyed by crate name."
  value       = { for name, function in aws_lambda_function.this : name => function.arn }
}

output "lambda_function_names" {
  description = "Name of each function (<resource_prefix>-<crate name>), keyed by crate name."
  value       = { for name, function in aws_lambda_function.this : name => function.function_name }
}

output "lambda_function_invoke_arns" {
  description = "Invoke ARN of each function (the API Gateway integration URI), keyed by crate name."
  value       = { for name, function in aws_lambda_function.this : name => function.invoke_arn }
}

output "iam_role_arns" {
  description = "ARN of each function's execution role, keyed by crate name (for KMS key policies: keys module key_users)."
  value       = { for name, role in aws_iam_role.this : name => role.arn }
}

output "cloudwatch_log_group_names" {
  description = "Log group of each function, keyed by crate name."
  value       = { for name, group in aws_cloudwatch_log_group.this : name => group.name }
}

output "dead_letter_queue_arns" {
  description = "ARN of each function's SQS dead-letter queue, keyed by crate name."
  value       = { for name, queue in aws_sqs_queue.dead_letter : name => queue.arn }
}

output "dead_letter_queue_names" {
  description = "Name of each function's SQS dead-letter queue, keyed by crate name (for the queue-depth alarms)."
  value       = { for name, queue in aws_sqs_queue.dead_letter : name => queue.name }
}

output "security_group_id" {
  description = "Security group of the functions when they run in the VPC, else null."
  value       = one(aws_security_group.this[*].id)
}
