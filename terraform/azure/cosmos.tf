# Cosmos DB for NoSQL: Entra ID only (keys disabled), reachable from the instances' subnet only,
# the original's database and container, and data-plane roles with exactly what the backend does,
# granted to the instances' user-assigned identity before the scale set exists.

resource "azurerm_cosmosdb_account" "this" {
  # Globally unique, stable per subscription (the original used the subscription id's prefix too).
  name                          = "${var.name}-${substr(md5(data.azurerm_client_config.current.subscription_id), 0, 8)}"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  offer_type                    = "Standard"
  kind                          = "GlobalDocumentDB"
  local_authentication_disabled = true
  # Keys cannot change databases or containers either: only Terraform, through ARM.
  access_key_metadata_writes_enabled = false
  minimal_tls_version                = "Tls12"
  is_virtual_network_filter_enabled  = true
  tags                               = local.tags
  #checkov:skip=CKV_AZURE_101:Public network access stays on for ARM and the portal; the data plane admits only the app subnet (virtual network filter). A private endpoint is the next step up.
  #checkov:skip=CKV_AZURE_100:Encrypted at rest with Microsoft-managed keys; a customer-managed key needs a Key Vault this module does not own.

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = azurerm_resource_group.this.location
    failover_priority = 0
  }

  dynamic "capabilities" {
    for_each = var.cosmos_serverless ? ["EnableServerless"] : []
    content {
      name = capabilities.value
    }
  }

  virtual_network_rule {
    id = azurerm_subnet.app.id
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

  dynamic "autoscale_settings" {
    for_each = var.cosmos_serverless ? [] : [var.cosmos_max_throughput]
    content {
      max_throughput = autoscale_settings.value
    }
  }
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
  # server/src/store/cosmos.rs: read_item (get, /gtg?details), upsert_item (put), delete_item
  # (delete), query_items (list). README "Cosmos DB" lists the same, with readMetadata.
  cosmos_data_actions = [
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/delete",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert",
  ]
  # The SDK reads the account's and the database's metadata (regions, partition key ranges),
  # which a container-scoped assignment does not cover (403, substatus 5301).
  cosmos_metadata_actions = ["Microsoft.DocumentDB/databaseAccounts/readMetadata"]
  container_scope         = "${azurerm_cosmosdb_account.this.id}/dbs/${azurerm_cosmosdb_sql_database.this.name}/colls/${azurerm_cosmosdb_sql_container.candidates.name}"
}

# The instances' identity. User-assigned, not the scale set's system-assigned one: that one only
# exists once the scale set does, so its role assignments would be created after the first VMs
# booted (their service got 403 until then). This one, and its role assignments below, exist
# before the scale set (its depends_on). It is the scale set's only identity, so the instance
# metadata service hands out its token without a client id (what the server's
# ManagedIdentityCredential::new(None) asks for): with a system-assigned identity beside it, IMDS
# would answer with that one instead.
resource "azurerm_user_assigned_identity" "instances" {
  name                = "${var.name}-instances"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags
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
  principal_id        = azurerm_user_assigned_identity.instances.principal_id
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
  principal_id        = azurerm_user_assigned_identity.instances.principal_id
  scope               = azurerm_cosmosdb_account.this.id
}
