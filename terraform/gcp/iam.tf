# The instances' own service account, with one custom role holding exactly the Firestore
# permissions the backend's calls need, granted on the one database only (IAM condition).

locals {
  # server/src/store/firestore.rs: GetDocument (get, /gtg?details) -> get, UpdateDocument without
  # precondition (an upsert) -> create and update, DeleteDocument -> delete, ListDocuments -> list.
  # README "Firestore" lists the same five.
  firestore_permissions = [
    "datastore.entities.create",
    "datastore.entities.delete",
    "datastore.entities.get",
    "datastore.entities.list",
    "datastore.entities.update",
  ]
}

resource "google_service_account" "instances" {
  account_id   = "${var.name}-vm"
  display_name = "candidate-server instances"
  description  = "Runs candidate-server: its Firestore database and nothing else"
  depends_on   = [google_project_service.apis]
}

# The role ID ends in the service account's unique ID, which is new every time the account is
# created: GCP keeps a deleted custom role's ID reserved for 37 days (undelete works only within 7),
# so a fixed ID would fail a re-deploy in that window. At most 21 + 11 + 21 = 53 characters (the
# limit is 64).
resource "google_project_iam_custom_role" "firestore" {
  role_id     = "${replace(var.name, "-", "_")}_firestore_${google_service_account.instances.unique_id}"
  title       = "candidates: Firestore documents"
  description = "Exactly what candidate-server's Firestore backend calls (get, upsert, delete, list documents)"
  permissions = local.firestore_permissions
  depends_on  = [google_project_service.apis]
}

resource "google_project_iam_member" "firestore" {
  project = var.project_id
  role    = google_project_iam_custom_role.firestore.id
  member  = "serviceAccount:${google_service_account.instances.email}"

  condition {
    title       = "the candidates database only"
    description = "Firestore evaluates resource.name against the database"
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.this.name}\""
  }
}
