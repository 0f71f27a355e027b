terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The scaling-group root's pin (terraform/azure/versions.tf): attribute names are checked
      # against 4.55 (terraform/tests/provider-schemas.json), which has
      # azurerm_function_app_flex_consumption (new in 4.21) and its `runtime_name`.
      version = "~> 4.55"
    }
  }
}

locals {
  tags = merge(var.tags, {
    application = "candidates"
    deployment  = var.name
    host        = "azure-functions"
    managed-by  = "terraform"
  })
}

# Credentials from the environment (ARM_* of a service principal, or `az login`), as terraform/azure.
# The storage account allows no shared keys (storage.tf): the provider makes and reads it and its
# container through ARM only (data_plane_available = false, azurerm 4.x), so the deploying
# principal needs no data-plane role on it; anything that still reaches the data plane uses Entra
# ID, never a key (storage_use_azuread).
provider "azurerm" {
  features {
    storage {
      data_plane_available = false
    }
  }
  storage_use_azuread = true
}

data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = local.tags
}
