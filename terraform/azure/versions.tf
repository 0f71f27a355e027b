terraform {
  required_version = ">= 1.9" # cross-variable validation and preconditions

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55" # attribute names checked against 4.55 (terraform/tests/provider-schemas.json)
    }
  }
}

# Credentials and the subscription come from the environment: ARM_CLIENT_ID, ARM_CLIENT_SECRET,
# ARM_TENANT_ID and ARM_SUBSCRIPTION_ID (a service principal), or `az login`.
provider "azurerm" {
  features {}
}
