output "rest_url" {
  description = "Base URL of the REST API: https://<domain> with HTTPS, else http://<the gateway's Azure DNS name>."
  value       = local.https_enabled ? "https://${var.domain}" : "http://${azurerm_public_ip.gateway.fqdn}"
}

output "gateway_fqdn" {
  description = "The Application Gateway's Azure DNS name: with HTTPS, point the domain here (CNAME)."
  value       = azurerm_public_ip.gateway.fqdn
}

output "gateway_ip" {
  description = "The Application Gateway's public address (for an A record instead of a CNAME)."
  value       = azurerm_public_ip.gateway.ip_address
}

output "grpc_endpoint" {
  description = "host:port of the internal gRPC load balancer (plaintext h2c, reachable from inside the virtual network)."
  value       = "${azurerm_lb.grpc.frontend_ip_configuration[0].private_ip_address}:${var.grpc_port}"
}

output "vmss_name" {
  description = "VM Scale Set name."
  value       = azurerm_linux_virtual_machine_scale_set.this.name
}

output "resource_group" {
  description = "Resource group of the stack."
  value       = azurerm_resource_group.this.name
}

output "app_gateway_name" {
  description = "Application Gateway name (scripts read its backend health)."
  value       = azurerm_application_gateway.rest.name
}

output "cosmos_endpoint" {
  description = "Cosmos DB account endpoint."
  value       = azurerm_cosmosdb_account.this.endpoint
}

output "image_id" {
  description = "Managed image the scale set runs."
  value       = local.image_id
}

output "instances_min" {
  description = "Fewest instances (validate waits for this many healthy backends)."
  value       = var.instances_min
}

output "validation_vm_name" {
  description = "The validation host outside every backend pool (empty when validation_host is off); validate.sh checks gRPC from it."
  value       = var.validation_host ? azurerm_linux_virtual_machine.validation[0].name : ""
}

output "instances_max" {
  description = "Most instances (scale-demo prints the expected counts)."
  value       = var.instances_max
}

output "target_requests_per_instance_per_second" {
  description = "Requests per second per instance above which the scale set scales out."
  value       = var.target_requests_per_instance_per_second
}

output "cosmos_serverless" {
  description = "Whether Cosmos DB is serverless (5,000 RU/s per container: scale-demo keeps its load under it)."
  value       = var.cosmos_serverless
}

output "instances_identity_client_id" {
  description = "Client id of the instances' user-assigned identity (the one with the Cosmos DB roles)."
  value       = azurerm_user_assigned_identity.instances.client_id
}
