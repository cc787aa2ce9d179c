output "sns_topic_arn" {
  description = "ARN of the alarm topic in the environment's Region (every alarm except the edge ones notifies it)."
  value       = aws_sns_topic.this["main"].arn
}

output "edge_sns_topic_arn" {
  description = "ARN of the alarm topic in us-east-1, notified by the WAF and CloudFront certificate alarms."
  value       = aws_sns_topic.this["edge"].arn
}

output "cloudwatch_dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "cloudwatch_metric_alarm_names" {
  description = "Names of every alarm this module creates (the edge ones are in us-east-1)."
  value = sort(concat(
    [aws_cloudwatch_metric_alarm.api_5xx_rate.alarm_name, aws_cloudwatch_metric_alarm.api_latency_p99.alarm_name],
    [aws_cloudwatch_metric_alarm.waf_blocked_requests.alarm_name, aws_cloudwatch_metric_alarm.vault_token.alarm_name, aws_cloudwatch_metric_alarm.secrets_served_stale.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.lambda : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.dead_letter_queue : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.cloudfront_certificate : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.dynamodb_throttles : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.kms_quota : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.mtls_certificate : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.auth : alarm.alarm_name],
  ))
}

output "cloudwatch_log_metric_filter_namespace" {
  description = "CloudWatch namespace of the auth API's security metrics (FailedSignIns, ThrottledSignIns, RefreshTokenReuse, AuditWriteFailures) for this environment."
  value       = local.security_namespace
}

output "xray_sampling_rule_names" {
  description = "Names of the X-Ray sampling rules (auth API paths, rest of the API)."
  value       = [aws_xray_sampling_rule.auth.rule_name, aws_xray_sampling_rule.other.rule_name]
}
