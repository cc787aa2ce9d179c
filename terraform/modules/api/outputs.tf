output "api_gateway_rest_api_id" {
  description = "ID of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "api_gateway_name" {
  description = "Name of the REST API (the ApiName dimension of its CloudWatch metrics)."
  value       = aws_api_gateway_rest_api.this.name
}

output "api_gateway_execution_arn" {
  description = "Execution ARN of the REST API (prefix of the source ARNs in Lambda permissions)."
  value       = aws_api_gateway_rest_api.this.execution_arn
}

output "api_gateway_stage_name" {
  description = "Name of the stage; CloudFront's origin path is \"/<stage name>\"."
  value       = aws_api_gateway_stage.this.stage_name
}

output "api_gateway_stage_arn" {
  description = "ARN of the stage (the web ACL is associated with it)."
  value       = aws_api_gateway_stage.this.arn
}

output "api_gateway_stage_invoke_url" {
  description = "execute-api URL of the stage. Called directly it answers 403: only requests through CloudFront pass."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "api_gateway_domain_name" {
  description = "Host name of the regional execute-api endpoint: the edge module's origin_domain_name."
  value       = "${aws_api_gateway_rest_api.this.id}.execute-api.${local.region}.${data.aws_partition.current.dns_suffix}"
}

output "origin_verify_header_name" {
  description = "Header CloudFront must add to every origin request (edge module origin_verify_header_name)."
  value       = local.origin_verify_header_name
}

output "origin_verify_header_value" {
  description = "Secret value of the origin-verify header (edge module origin_verify_header_value)."
  value       = random_password.origin_verify.result
  sensitive   = true
}

output "wafv2_web_acl_arn" {
  description = "ARN of the regional web ACL on the stage (admits only CloudFront's requests)."
  value       = aws_wafv2_web_acl.this.arn
}

output "wafv2_web_acl_name" {
  description = "Name of the regional web ACL on the stage."
  value       = aws_wafv2_web_acl.this.name
}

output "lb_arn" {
  description = "ARN of the internal NLB in front of auth-proxy."
  value       = aws_lb.this.arn
}

output "lb_arn_suffix" {
  description = "ARN suffix of the internal NLB (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = aws_lb.this.arn_suffix
}

output "lb_target_group_arn_suffix" {
  description = "ARN suffix of the NLB's target group (the TargetGroup dimension, e.g. for UnHealthyHostCount alarms)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "lb_security_group_id" {
  description = "Security group of the internal NLB."
  value       = aws_security_group.lb.id
}

output "vpc_link_id" {
  description = "ID of the API Gateway VPC link to the NLB."
  value       = aws_api_gateway_vpc_link.this.id
}

output "cloudwatch_log_group_name" {
  description = "Log group of the stage's JSON access log."
  value       = aws_cloudwatch_log_group.access.name
}
