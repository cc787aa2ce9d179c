output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution."
  value       = aws_cloudfront_distribution.this.id
}

output "cloudfront_distribution_arn" {
  description = "ARN of the CloudFront distribution."
  value       = aws_cloudfront_distribution.this.arn
}

output "cloudfront_distribution_domain_name" {
  description = "The distribution's *.cloudfront.net host name: the public HTTPS endpoint, or the target of the custom names' DNS records."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "cloudfront_distribution_hosted_zone_id" {
  description = "Route 53 zone ID to use in alias records pointing the custom domain names at the distribution."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

output "wafv2_web_acl_arn" {
  description = "ARN of the CLOUDFRONT-scope web ACL (in us-east-1)."
  value       = aws_wafv2_web_acl.this.arn
}

output "wafv2_web_acl_name" {
  description = "Name of the CLOUDFRONT-scope web ACL (the WebACL dimension of its CloudWatch metrics, in us-east-1)."
  value       = aws_wafv2_web_acl.this.name
}

output "cloudwatch_log_group_name" {
  description = "Log group of the web ACL's log (in us-east-1)."
  value       = aws_cloudwatch_log_group.waf.name
}

output "s3_bucket_name" {
  description = "Bucket the CloudFront access logs are delivered to (in us-east-1, standard logging v2, JSON), under cloudfront/."
  value       = module.logs_bucket.id
}

output "kms_key_arn" {
  description = "ARN of the us-east-1 key encrypting the web ACL log and the access logs."
  value       = aws_kms_key.this.arn
}
