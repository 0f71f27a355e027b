output "resource_group_name" {
  description = "The state account's resource group."
  value       = azurerm_resource_group.state.name
}

output "storage_account_name" {
  description = "The azurerm backend's `storage_account_name`."
  value       = azurerm_storage_account.state.name
}

output "container_name" {
  description = "The azurerm backend's `container_name`."
  value       = azurerm_storage_container.state.name
}

output "storage_account_id" {
  description = "Scope for a role assignment an administrator makes when grant_blob_data_role is false."
  value       = azurerm_storage_account.state.id
}
