output "function_url" {
  description = "The HTTPS endpoint (https://<app>.azurewebsites.net): the REST API, as the scaling groups' rest_url (routePrefix is empty, so the paths are the contract's)."
  value       = "https://${azurerm_function_app_flex_consumption.this.default_hostname}"
}

output "function_app_name" {
  description = "The function app (what `az functionapp deployment source config-zip --name` deploys to)."
  value       = azurerm_function_app_flex_consumption.this.name
}

output "resource_group" {
  description = "The resource group holding everything this root makes."
  value       = azurerm_resource_group.this.name
}

output "cosmos_endpoint" {
  description = "The Cosmos DB account's endpoint."
  value       = azurerm_cosmosdb_account.this.endpoint
}

output "application_insights" {
  description = "The Application Insights component the app logs to."
  value       = azurerm_application_insights.this.name
}
