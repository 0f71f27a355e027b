# Cosmos DB for NoSQL, serverless capacity (pay per request, like the function), Entra ID only
# (keys disabled), the server's database and container (partition key /CandidateName, as
# terraform/azure/cosmos.tf and server/src/store/cosmos.rs), and data-plane roles with exactly
# what the backend does, granted to the function app's system-assigned identity.
#
# Not the built-in Cosmos DB Built-in Data Contributor (00000000-0000-0000-0000-000000000002):
# its containers/* and items/* also allow stored procedures, triggers, the change feed and
# conflicts. The scaling-group root grants two custom roles instead, the store's four item and
# query actions on the container and readMetadata on the account; this root does the same.

resource "azurerm_cosmosdb_account" "this" {
  name                          = "${var.name}-${local.suffix}"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  offer_type                    = "Standard"
  kind                          = "GlobalDocumentDB"
  local_authentication_disabled = true
  # Keys cannot change databases or containers either: only Terraform, through ARM.
  access_key_metadata_writes_enabled = false
  minimal_tls_version                = "Tls12"
  tags                               = local.tags
  #checkov:skip=CKV_AZURE_99:No virtual network: a Flex Consumption app without VNet integration reaches Cosmos DB from shared outbound addresses. Keys are disabled; only the app's identity is granted data access.
  #checkov:skip=CKV_AZURE_101:Public network access is how the function reaches it (see CKV_AZURE_99).
  #checkov:skip=CKV_AZURE_100:Encrypted at rest with Microsoft-managed keys; a customer-managed key needs a Key Vault this root does not own.

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = azurerm_resource_group.this.location
    failover_priority = 0
  }

  capabilities {
    name = "EnableServerless"
  }

  backup {
    type                = "Periodic"
    interval_in_minutes = 240
    retention_in_hours  = 8
    storage_redundancy  = "Geo"
  }
}

resource "azurerm_cosmosdb_sql_database" "this" {
  name                = var.cosmos_database
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  # No throughput: a serverless account has none to set.
}

resource "azurerm_cosmosdb_sql_container" "candidates" {
  name                = var.cosmos_container
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  database_name       = azurerm_cosmosdb_sql_database.this.name
  partition_key_paths = ["/CandidateName"]

  indexing_policy {
    indexing_mode = "consistent"
    included_path {
      path = "/*"
    }
    excluded_path {
      path = "/\"_etag\"/?"
    }
  }
}

locals {
  # server/src/store/cosmos.rs REQUIRED_PERMISSIONS (terraform/azure/cosmos.tf lists the same).
  cosmos_data_actions = [
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/delete",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert",
  ]
  # The SDK reads the account's metadata (regions, partition key ranges), which a
  # container-scoped assignment does not cover.
  cosmos_metadata_actions = ["Microsoft.DocumentDB/databaseAccounts/readMetadata"]
  container_scope         = "${azurerm_cosmosdb_account.this.id}/dbs/${azurerm_cosmosdb_sql_database.this.name}/colls/${azurerm_cosmosdb_sql_container.candidates.name}"
  function_principal_id   = azurerm_function_app_flex_consumption.this.identity[0].principal_id
}

resource "azurerm_cosmosdb_sql_role_definition" "data" {
  name                = "${var.name}-candidates-data"
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  type                = "CustomRole"
  assignable_scopes   = [local.container_scope]

  permissions {
    data_actions = local.cosmos_data_actions
  }
}

resource "azurerm_cosmosdb_sql_role_assignment" "data" {
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  role_definition_id  = azurerm_cosmosdb_sql_role_definition.data.id
  principal_id        = local.function_principal_id
  scope               = local.container_scope
}

resource "azurerm_cosmosdb_sql_role_definition" "metadata" {
  name                = "${var.name}-read-metadata"
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  type                = "CustomRole"
  assignable_scopes   = [azurerm_cosmosdb_account.this.id]

  permissions {
    data_actions = local.cosmos_metadata_actions
  }
}

resource "azurerm_cosmosdb_sql_role_assignment" "metadata" {
  resource_group_name = azurerm_resource_group.this.name
  account_name        = azurerm_cosmosdb_account.this.name
  role_definition_id  = azurerm_cosmosdb_sql_role_definition.metadata.id
  principal_id        = local.function_principal_id
  scope               = azurerm_cosmosdb_account.this.id
}
