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
# storage_use_azuread: the storage account allows no shared keys (storage.tf), so the provider
# reads its data-plane properties with Entra ID instead of a key.
provider "azurerm" {
  features {}
  storage_use_azuread = true
}

data "azurerm_client_config" "current" {}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = local.tags
}
