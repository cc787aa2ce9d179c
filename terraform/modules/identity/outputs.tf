output "user_pool_id" {
  description = "ID of the user pool (RAMPART_AWS__USER_POOL_ID)."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "ARN of the user pool."
  value       = aws_cognito_user_pool.this.arn
}

output "user_pool_endpoint" {
  description = "Endpoint of the user pool (cognito-idp.<region>.amazonaws.com/<id>), the issuer of Cognito's own tokens."
  value       = aws_cognito_user_pool.this.endpoint
}

output "user_pool_client_id" {
  description = "ID of the app client (RAMPART_AWS__USER_POOL_CLIENT_ID). The client secret is only in Secrets Manager."
  value       = aws_cognito_user_pool_client.this.id
}
