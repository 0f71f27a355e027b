terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The scaling-group root's pin (terraform/gcp/versions.tf): attribute names are checked
      # against 6.50 (terraform/tests/provider-schemas.json). google_cloud_run_v2_service's
      # `deletion_protection` (default true) is in every 6.x.
      version = "~> 6.50"
    }
  }
}

# Application Default Credentials (`gcloud auth application-default login`), as terraform/gcp.
provider "google" {
  project = var.project_id
  region  = var.region
  default_labels = merge(var.labels, {
    application = "candidates"
    deployment  = var.name
    host        = "cloud-run"
    managed-by  = "terraform"
  })
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    # Project-level IAM members (iam.tf) read and write the project's policy through it: without
    # it a fresh project's apply stops with a 403 (the scaling root enables it too;
    # serverless-apply.sh enables it before the first apply, as scripts/gcp/apply.sh does).
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ])
  service = each.value
  # Other stacks in the project (terraform/gcp among them) may use them too.
  disable_on_destroy = false
}
