# Logs: Application Insights on a Log Analytics workspace with a retention. Entra ID ingestion only
# (local authentication off): the app's identity gets Monitoring Metrics Publisher on the
# component, and APPLICATIONINSIGHTS_AUTHENTICATION_STRING says to use it (function.tf).

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "this" {
  name                          = "${var.name}-insights"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  application_type              = "other"
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  retention_in_days             = var.log_retention_days
  local_authentication_disabled = true
  tags                          = local.tags
}

resource "azurerm_role_assignment" "insights" {
  scope                = azurerm_application_insights.this.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_function_app_flex_consumption.this.identity[0].principal_id
  # A new identity: without the type, Azure may not find it yet (directory replication) and the
  # assignment fails with PrincipalNotFound ("Assign Azure roles using Azure Resource Manager").
  principal_type = "ServicePrincipal"
}
