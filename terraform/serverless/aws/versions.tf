terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28 is the first release with aws_lambda_permission's `invoked_via_function_url`
      # (provider CHANGELOG 6.28.0, #44858), which the second Function URL statement needs
      # (function_url.tf). terraform/tests/moto/serverless.sh applies everything else with the
      # 5.100 mirror.
      version = ">= 6.28, < 7.0"
    }
  }
}

locals {
  common_tags = merge(var.tags, {
    application = "candidates"
    deployment  = var.name
    host        = "lambda"
    managed-by  = "terraform"
  })
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.common_tags
  }
}
