# The function app's storage account: the host's own storage (AzureWebJobsStorage: keys, leases)
# and Flex Consumption's deployment container, where one deploy puts the app's package. Entra ID
# only: no shared keys, so the app reaches it with its managed identity and no connection string
# with a key is anywhere (Microsoft, "Connecting to host storage with an identity").

locals {
  suffix = substr(md5("${data.azurerm_client_config.current.subscription_id}/${var.name}"), 0, 8)
}

resource "azurerm_storage_account" "functions" {
  name                            = substr("${replace(var.name, "-", "")}${local.suffix}", 0, 24)
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
  allow_nested_items_to_be_public = false
  tags                            = local.tags
  #checkov:skip=CKV_AZURE_43:The name is computed (the name variable without dashes and 8 hex digits, at most 24 lower-case letters and digits: variables.tf validates it); checkov cannot evaluate it.
  #checkov:skip=CKV_AZURE_33:No queues are used (one HTTP function), so no queue logging.
  #checkov:skip=CKV_AZURE_59:The Functions host and the deploy reach it over its public endpoint; no shared keys, Entra ID only.
  #checkov:skip=CKV_AZURE_206:The host's leases and the package; LRS is enough (the package is rebuilt from source).
  #checkov:skip=CKV2_AZURE_1:Encrypted at rest with Microsoft-managed keys; a customer-managed key needs a Key Vault this root does not own.
  #checkov:skip=CKV2_AZURE_33:No private endpoint: Flex Consumption without virtual network integration reaches storage publicly.
  #checkov:skip=CKV2_AZURE_40:Shared keys are disabled (shared_access_key_enabled = false).
  #checkov:skip=CKV2_AZURE_41:No SAS is issued: shared keys are disabled.
  #checkov:skip=CKV2_AZURE_38:Soft delete would keep deleted packages; nothing here is the only copy.
}

resource "azurerm_storage_container" "deployments" {
  name                  = "deployments"
  storage_account_id    = azurerm_storage_account.functions.id
  container_access_type = "private"
  #checkov:skip=CKV2_AZURE_21:No blob read logging for the deployment package container.
}

# The app's identity on its storage: Storage Blob Data Owner, what Microsoft lists for the host's
# identity-based AzureWebJobsStorage (blob leases) and what covers the deployment container.
resource "azurerm_role_assignment" "storage" {
  scope                = azurerm_storage_account.functions.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_function_app_flex_consumption.this.identity[0].principal_id
  # A new identity: without the type, Azure may not find it yet (directory replication) and the
  # assignment fails with PrincipalNotFound ("Assign Azure roles using Azure Resource Manager").
  principal_type = "ServicePrincipal"
}
