# The image's repository. scripts/gcp/serverless-apply.sh applies it first (-target), pushes the
# image built by serverless/cloud-run/build-image.py, then applies the rest with var.image.
resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = var.name
  description   = "candidates Cloud Run images (serverless/cloud-run/build-image.py)"
  format        = "DOCKER"

  docker_config {
    # A pushed tag is never moved: the service runs an image by digest anyway.
    immutable_tags = true
  }
  depends_on = [google_project_service.apis]
  #checkov:skip=CKV_GCP_84:Encrypted at rest with Google-managed keys; the image holds no secret (the key file is a Secret Manager secret).
}

locals {
  repository_url = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}
