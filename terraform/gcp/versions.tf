terraform {
  required_version = ">= 1.9" # cross-variable validation and preconditions

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50" # attribute names checked against 6.50 (terraform/tests/provider-schemas.json)
    }
  }
}

# Application Default Credentials (`gcloud auth application-default login`, or the attached
# service account on a CI runner); no key file anywhere.
provider "google" {
  project = var.project_id
  region  = var.region
  default_labels = merge(var.labels, {
    application = "candidates"
    deployment  = var.name
    managed-by  = "terraform"
  })
}
