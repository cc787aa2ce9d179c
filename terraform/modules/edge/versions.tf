terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
      # A CLOUDFRONT-scope web ACL, its log group and key, and the certificate
      # CloudFront uses all live in us-east-1, whatever the environment's region.
      configuration_aliases = [aws.us_east_1]
    }
  }
}
