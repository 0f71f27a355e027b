# The S3 bucket that holds the Terraform state of terraform/aws (scripts/aws/bootstrap-state.sh).
# This root's own state is local (terraform/state/aws/terraform.tfstate, git-ignored): it holds
# no secret, only the bucket's settings, and a state store cannot keep its own state before it
# exists. Losing it loses nothing: `terraform import` brings the bucket back under management.
terraform {
  # 1.10: the S3 backend's use_lockfile (S3-native locking) that the backend file written by
  # scripts/aws/bootstrap-state.sh turns on; this root itself needs only 1.9.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0" # as terraform/aws: 5.100 against moto, 6.25's names by the schema test
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      application = "candidates"
      deployment  = var.name
      managed-by  = "terraform"
      purpose     = "terraform-state"
    })
  }
}
