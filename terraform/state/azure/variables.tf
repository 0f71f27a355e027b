variable "location" {
  description = "Azure region of the state account (scripts/azure/bootstrap-state.sh passes AZURE_LOCATION)."
  type        = string
  default     = "centralus"
}

variable "name" {
  description = "The stack's name (STACK): the resource group is <name>-tfstate."
  type        = string
  default     = "candidates"
}

variable "storage_account_name" {
  description = "The account's name (global, 3-24 lowercase letters and digits); empty for cand + 16 hex digits of the subscription and name."
  type        = string
  default     = ""

  validation {
    condition     = var.storage_account_name == "" || can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name: 3 to 24 lowercase letters and digits."
  }
}

variable "replication_type" {
  description = "The account's redundancy: GRS keeps a copy in the paired region (a few cents more a month for kilobytes of state)."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "retention_days" {
  description = "Days a deleted or overwritten state blob (and a deleted container) can be restored."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 365
    error_message = "retention_days: 1 to 365 (Azure's soft-delete range)."
  }
}

variable "state_principal_ids" {
  description = "Object ids given Storage Blob Data Contributor on the account (what Terraform needs with use_azuread_auth); empty for the identity running this root."
  type        = list(string)
  default     = []
}

variable "grant_blob_data_role" {
  description = "Make the role assignments above (needs Microsoft.Authorization/roleAssignments/write: Owner, User Access Administrator or Role Based Access Control Administrator; Contributor alone cannot)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags."
  type        = map(string)
  default     = {}
}
