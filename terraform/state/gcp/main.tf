# Cloud Storage's API, on by default in new projects; enabled here so a project without it works.
resource "google_project_service" "storage" {
  service            = "storage.googleapis.com"
  disable_on_destroy = false
}

locals {
  bucket = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-${var.name}-tfstate"
}

resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:usage logs go to a second bucket (its own cost and settings); Cloud Audit Logs record admin activity on this one
  name          = local.bucket
  location      = upper(var.region)
  storage_class = "STANDARD"

  # The gcs backend: "highly recommended that you enable Object Versioning on the GCS bucket to
  # allow for state recovery in the case of accidental deletions and human error".
  versioning {
    enabled = true
  }

  # IAM only (no object ACLs), and never public whatever IAM is granted later.
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Objects are encrypted at rest with Google-managed keys (the default; no setting needed).
  force_destroy = false

  # Old versions do not pile up: each apply writes one.
  lifecycle_rule {
    condition {
      num_newer_versions = var.noncurrent_versions
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    prevent_destroy = true

    precondition {
      condition     = length(local.bucket) <= 63
      error_message = "The bucket name ${local.bucket} is over Cloud Storage's 63 characters: set bucket_name (STATE_TF_ARGS=-var=bucket_name=...)."
    }
  }

  depends_on = [google_project_service.storage]
}
