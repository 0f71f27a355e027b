# The storage account and container that hold the Terraform state of terraform/azure
# (scripts/azure/bootstrap-state.sh). This root's own state is local
# (terraform/state/azure/terraform.tfstate, git-ignored, 0600): a state store cannot keep its own
# state before it exists. It holds the account's access keys (the provider reads them even though
# shared-key access is off, and they do not work while it is off); `terraform import` brings the
# account back under management if the file is lost.
terraform {
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55" # as terraform/azure (attribute names checked against 4.55)
    }
  }
}

# Credentials from the environment, as terraform/azure (ARM_* of a service principal, or az login).
provider "azurerm" {
  features {}

  # Shared-key access is off on the account (shared_access_key_enabled = false), so whatever the
  # provider does on the data plane goes with an Entra ID token.
  storage_use_azuread = true
}
