# The service's own Firestore database (native mode), as the scaling-group root makes its own
# (terraform/gcp/firestore.tf).
locals {
  firestore_database = var.firestore_database != "" ? var.firestore_database : var.name
}

resource "google_firestore_database" "this" {
  name                              = local.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # `terraform destroy` deletes it (the provider's default only forgets it).
  deletion_policy = "DELETE"
  depends_on      = [google_project_service.apis]
}
