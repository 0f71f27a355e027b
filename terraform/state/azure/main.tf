data "azurerm_client_config" "current" {}

locals {
  account    = var.storage_account_name != "" ? var.storage_account_name : "cand${substr(sha256("${data.azurerm_client_config.current.subscription_id}/${var.name}"), 0, 16)}"
  principals = length(var.state_principal_ids) > 0 ? var.state_principal_ids : [data.azurerm_client_config.current.object_id]
  tags = merge(var.tags, {
    application = "candidates"
    deployment  = var.name
    managed-by  = "terraform"
    purpose     = "terraform-state"
  })
}

resource "azurerm_resource_group" "state" {
  name     = "${var.name}-tfstate"
  location = var.location
  tags     = local.tags
}

resource "azurerm_storage_account" "state" {
  #checkov:skip=CKV_AZURE_33:no queue service is used (Queue Storage logging would log nothing)
  #checkov:skip=CKV_AZURE_35:the operator's machine and CI runners reach the account from addresses not known here; access is Entra ID only (no shared key, no SAS), HTTPS and TLS 1.2
  #checkov:skip=CKV_AZURE_59:as CKV_AZURE_35: reachable publicly, usable only with an Entra ID token and a data-plane role
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys encrypt at rest (twice, infrastructure encryption); a customer-managed key needs a Key Vault and an identity to keep for kilobytes of state
  #checkov:skip=CKV2_AZURE_33:a private endpoint would need the operator inside the VNet; see CKV_AZURE_35
  #checkov:skip=CKV2_AZURE_41:shared-key access is off, so no account or service SAS can be made (SAS expiration policy has nothing to govern)
  name                     = local.account
  resource_group_name      = azurerm_resource_group.state.name
  location                 = azurerm_resource_group.state.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type

  # Transport: HTTPS only, TLS 1.2 at least (the state holds the deployment's write key).
  https_traffic_only_enabled = true
  min_tls_version            = "TLS1_2"

  # Nothing public: no container or blob can opt in to anonymous reads.
  allow_nested_items_to_be_public = false

  # Entra ID only: no account keys, no SAS (the backend uses use_azuread_auth = true).
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true

  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true

  # Recovery: every overwrite keeps the previous version, and a deleted blob or container can be
  # restored for retention_days.
  blob_properties {
    versioning_enabled = true

    delete_retention_policy {
      days = var.retention_days
    }

    container_delete_retention_policy {
      days = var.retention_days
    }
  }

  tags = local.tags

  lifecycle {
    prevent_destroy = true
  }
}

# The azurerm backend stores each state as a blob here and locks it with a blob lease (built in).
resource "azurerm_storage_container" "state" {
  #checkov:skip=CKV2_AZURE_21:blob logging is a diagnostic setting with a Log Analytics workspace (its own cost); the activity log records control-plane changes
  name                  = "tfstate"
  storage_account_id    = azurerm_storage_account.state.id
  container_access_type = "private"
}

# use_azuread_auth needs a data-plane role: Contributor (control plane) cannot read blobs.
resource "azurerm_role_assignment" "state" {
  for_each = var.grant_blob_data_role ? toset(local.principals) : toset([])

  scope                = azurerm_storage_account.state.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
}
