# The API key file (access.tf's digests, never the key) reaches the container as a file: the
# binary reads keys only from CANDIDATES_API_KEYS_FILE, and a Cloud Run container has no boot step
# to write one. Cloud Run mounts a Secret Manager secret as a file (a `secret` volume: "Configure
# secrets for services"), so the lines are a secret version and the service mounts it read-only.
# The digests are not secret (access.tf), but this is the documented way to put a file into a
# revision without rebuilding the image, and Secret Manager's access is granted per secret.

resource "google_secret_manager_secret" "api_keys" {
  secret_id = "${var.name}-api-keys"

  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "api_keys" {
  secret      = google_secret_manager_secret.api_keys.id
  secret_data = "${join("\n", local.api_key_lines)}\n"
  # New key lines replace the version; the serving revision mounts the old one until the new
  # revision serves, so the old version must outlive the switch (destroy-then-create would break
  # the running revision's cold starts, and leave it pointing at nothing if the apply stopped).
  lifecycle {
    create_before_destroy = true
  }
}

# The service account may read this secret only (not roles/secretmanager.secretAccessor on the
# project, which would cover every secret in it).
resource "google_secret_manager_secret_iam_member" "api_keys" {
  secret_id = google_secret_manager_secret.api_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.service.email}"
}
