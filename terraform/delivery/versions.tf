terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Partial configuration: pass bucket, key and region with
  # `terraform init -backend-config=backend.hcl` (see backend.hcl.example).
  backend "s3" {}
}
