terraform {
  required_version = ">= 1.11" # cross-variable validation; the S3 backend's use_lockfile (GA in 1.11)

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Both majors work, and both are checked: 5.100 (the newest 5.x) by `terraform validate`,
      # apply, re-plan and destroy against moto (terraform/tests/moto), 6.25 by the attribute-name
      # check against terraform/tests/provider-schemas.json. Nothing here needs a 6.x feature.
      version = ">= 5.100, < 7.0"
    }
  }
}

locals {
  # Provider default_tags reach neither the group's instances nor their volumes: they apply to a
  # resource's top-level `tags` only, not to a launch template's nested tag_specifications
  # (terraform-provider-aws #19387), and an ASG's `tag` blocks get none. compute.tf merges these
  # into the launch template's tag_specifications.
  common_tags = merge(var.tags, {
    application = "candidates"
    deployment  = var.name
    managed-by  = "terraform"
  })
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.common_tags
  }
}
