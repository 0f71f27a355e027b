# The Cloud Storage bucket that holds the Terraform state of terraform/gcp
# (scripts/gcp/bootstrap-state.sh). This root's own state is local
# (terraform/state/gcp/terraform.tfstate, git-ignored): it holds no secret, only the bucket's
# settings, and a state store cannot keep its own state before it exists; `terraform import`
# brings the bucket back under management if the file is lost.
terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50" # as terraform/gcp (attribute names checked against 6.50)
    }
  }
}

# Application Default Credentials, as terraform/gcp.
provider "google" {
  project = var.project_id
  region  = var.region
  default_labels = merge(var.labels, {
    application = "candidates"
    deployment  = var.name
    managed-by  = "terraform"
    purpose     = "terraform-state"
  })
}
