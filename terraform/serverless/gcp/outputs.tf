output "service_url" {
  description = "The HTTPS endpoint (https://<name>-<hash>.<region>.run.app): the REST API, and gRPC on the same host (port 443)."
  value       = google_cloud_run_v2_service.this.uri
}

output "service_name" {
  description = "The Cloud Run service."
  value       = google_cloud_run_v2_service.this.name
}

output "repository_url" {
  description = "Where scripts/gcp/serverless-build.sh pushes the image: <region>-docker.pkg.dev/<project>/<repository>."
  value       = local.repository_url
}

output "firestore_database" {
  description = "The Firestore database."
  value       = google_firestore_database.this.name
}

output "service_account" {
  description = "The service's identity."
  value       = google_service_account.service.email
}
