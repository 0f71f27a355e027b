output "rest_url" {
  description = "Base URL of the REST API: https://<first of var.domains> with HTTPS, else http://<the load balancer's address>."
  value       = local.https_enabled ? "https://${var.domains[0]}" : "http://${google_compute_global_address.rest.address}"
}

output "rest_address" {
  description = "The REST load balancer's IP address: with var.domains, create a DNS A record for each domain pointing here (Google issues the certificate only then)."
  value       = google_compute_global_address.rest.address
}

output "certificate_name" {
  description = "The Google-managed certificate (empty without var.domains); validate.sh waits for it to be ACTIVE."
  value       = local.https_enabled ? google_compute_managed_ssl_certificate.rest[0].name : ""
}

output "grpc_endpoint" {
  description = "host:port of the internal gRPC load balancer (plaintext h2c, reachable from inside the VPC)."
  value       = "${google_compute_forwarding_rule.grpc.ip_address}:${var.grpc_port}"
}

output "mig_name" {
  description = "Regional managed instance group name."
  value       = google_compute_region_instance_group_manager.this.name
}

output "region" {
  description = "Region of the group."
  value       = var.region
}

output "rest_backend_service" {
  description = "Backend service of the REST load balancer (scripts read its health)."
  value       = google_compute_backend_service.rest.name
}

output "firestore_database" {
  description = "Firestore database id."
  value       = google_firestore_database.this.name
}

output "min_replicas" {
  description = "Fewest instances (validate waits for this many healthy backends)."
  value       = var.min_replicas
}

output "image" {
  description = "Image the instance template boots."
  value       = local.image
}

output "max_replicas" {
  description = "Most instances (scale-demo prints the expected counts)."
  value       = var.max_replicas
}

output "target_requests_per_instance_per_second" {
  description = "Requests per second per instance at which the autoscaler scales out (the single_instance_assignment of the load balancer's request count)."
  value       = var.target_requests_per_instance_per_second
}

output "validation_instance" {
  description = "name and zone of the validation host outside the instance group (empty when validation_host is off); validate.sh checks gRPC from it."
  value       = var.validation_host ? "${google_compute_instance.validation[0].name} ${google_compute_instance.validation[0].zone}" : ""
}
