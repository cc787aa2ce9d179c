terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      # 6.x: the per-resource `region` argument puts the edge alarms in us-east-1
      # without a second provider configuration.
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
