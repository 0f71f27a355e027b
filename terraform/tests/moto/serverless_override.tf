# Test harness only, never part of terraform/serverless/aws: terraform/tests/moto/serverless.sh
# copies the root (without function_url_invoke.tf, whose argument provider 5.100 lacks) to a
# temporary directory and adds this file, which Terraform merges over the root. Everything the
# provider calls goes to a private moto_server on 127.0.0.1 with dummy credentials.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0" # the local mirror's; the root asks for >= 6.28 (function_url_invoke.tf)
    }
  }
}

provider "aws" {
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    dynamodb = var.moto_endpoint
    iam      = var.moto_endpoint
    lambda   = var.moto_endpoint
    logs     = var.moto_endpoint
    sts      = var.moto_endpoint
  }
}

# moto 5.2 neither stores nor returns a function's LoggingConfig (moto/awslambda/models.py has no
# such field), so it reads back empty. serverless_check.py cannot check it either; terraform/
# invariants checks the block (the log group Terraform makes and the role may write).
resource "aws_lambda_function" "this" {
  lifecycle {
    ignore_changes = [logging_config]
  }
}
