terraform {
  required_version = ">= 1.9" # cross-variable validation and preconditions

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25" # attribute names checked against 6.25 (terraform/tests/provider-schemas.json)
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
    })
  }
}
