output "bucket" {
  description = "The gcs backend's `bucket`."
  value       = google_storage_bucket.state.name
}
