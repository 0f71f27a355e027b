# The service's identity: a service account of its own (not the project's default compute account,
# which holds Editor), with the Firestore permissions the store's calls need on its one database,
# and read access to its one secret (the API key file, keys.tf). Nothing else.
#
# Not roles/datastore.user: that predefined role also holds the index, statistics and
# database-listing permissions, on every database of the project. The scaling-group root
# (terraform/gcp/iam.tf) grants a custom role with exactly the store's five permissions under an
# IAM condition naming its database; this root does the same.

locals {
  # server/src/store/firestore.rs REQUIRED_PERMISSIONS (terraform/gcp/iam.tf lists the same five).
  firestore_permissions = [
    "datastore.entities.create",
    "datastore.entities.delete",
    "datastore.entities.get",
    "datastore.entities.list",
    "datastore.entities.update",
  ]
}

resource "google_service_account" "service" {
  account_id   = "${var.name}-run"
  display_name = "candidates Cloud Run service"
  description  = "Runs candidate-server on Cloud Run: its Firestore database and its key file secret, nothing else"
  depends_on   = [google_project_service.apis]
}

# The role id ends in the account's unique id: a deleted custom role's id stays reserved for 37
# days (terraform/gcp/iam.tf), so a fixed id would fail a re-deploy in that window.
resource "google_project_iam_custom_role" "firestore" {
  role_id     = "${replace(var.name, "-", "_")}_run_firestore_${google_service_account.service.unique_id}"
  title       = "candidates (Cloud Run): Firestore documents"
  description = "Exactly what candidate-server's Firestore backend calls (get, upsert, delete, list documents)"
  permissions = local.firestore_permissions
  depends_on  = [google_project_service.apis]
}

resource "google_project_iam_member" "firestore" {
  project = var.project_id
  role    = google_project_iam_custom_role.firestore.id
  member  = "serviceAccount:${google_service_account.service.email}"

  condition {
    title       = "the candidates database only"
    description = "Firestore evaluates resource.name against the database"
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.this.name}\""
  }
}
