output "configuration_set_name" {
  description = "SES configuration set the auth function sends through (RAMPART_MAIL__CONFIGURATION_SET)."
  value       = aws_sesv2_configuration_set.this.configuration_set_name
}

output "email_identity_arn" {
  description = "ARN of the sender domain identity: the resource of the auth function's ses:SendEmail grant."
  value       = aws_sesv2_email_identity.this.arn
}

output "configuration_set_arn" {
  description = "ARN of the configuration set, also a resource of the ses:SendEmail grant."
  value       = aws_sesv2_configuration_set.this.arn
}

output "dkim_tokens" {
  description = "Easy DKIM tokens: publish <token>._domainkey.<sender_domain> CNAME <token>.dkim.amazonses.com for each."
  value       = aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens
}
