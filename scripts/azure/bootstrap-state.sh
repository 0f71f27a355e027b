#!/usr/bin/env bash
# Remote state for terraform/azure: creates a storage account and its container tfstate
# (terraform/state/azure: HTTPS and TLS 1.2 only, nothing public, Entra ID only with shared keys
# off, blob versioning and soft delete) and gives the service principal Storage Blob Data
# Contributor on it; then writes terraform/azure/backend_override.tf (the azurerm backend with
# use_azuread_auth; it locks with a blob lease by itself), which apply.sh, validate.sh and
# destroy.sh then use. Run it once per subscription; until then the state is local.
#   scripts/azure/bootstrap-state.sh --dry-run   # plan only: prints the plan and the backend file, creates nothing
#   scripts/azure/bootstrap-state.sh             # asks before terraform applies
#   AUTO_APPROVE=1 scripts/azure/bootstrap-state.sh
# Env: ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID/ARM_SUBSCRIPTION_ID (required), AZURE_LOCATION
# (default centralus), STACK (default candidates: the key <STACK>/azure.tfstate), STATE_TF_ARGS for
# more flags to the state root. The role assignment needs Owner, User Access Administrator or Role
# Based Access Control Administrator; with Contributor only, set GRANT_BLOB_ROLE=0 and have an
# administrator run the az role assignment printed at the end.
# Then: MIGRATE_STATE=1 scripts/azure/apply.sh moves an existing local state into the container.
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

# backend_block CONTAINER RESOURCE_GROUP ACCOUNT_ID ACCOUNT: the backend file (the outputs of
# terraform/state/azure in name order).
backend_block() {
  cat <<HCL
# Written by scripts/azure/bootstrap-state.sh: terraform/azure keeps its state in Blob Storage
# (docs/deploy-azure.md, Remote state). Git-ignored. Delete it, then run
# terraform -chdir=terraform/azure init -migrate-state, to go back to local state.
terraform {
  backend "azurerm" {
    storage_account_name = "$4"
    container_name       = "$1"
    key                  = "$STACK/azure.tfstate"
    use_azuread_auth     = true
  }
}
HCL
  if [[ ${GRANT_BLOB_ROLE:-1} == 0 ]]; then
    echo "GRANT_BLOB_ROLE=0: an administrator must run: az role assignment create --role 'Storage Blob Data Contributor'" \
      "--assignee $ARM_CLIENT_ID --scope $3" >&2
  fi
}

# state_prepare: called by bootstrap_state once the arguments are read.
state_prepare() {
  require_tools terraform python3
  check_azure
  STATE_TF_VARS=(-var "location=$LOCATION" -var "name=$STACK")
  [[ ${GRANT_BLOB_ROLE:-1} != 0 ]] || STATE_TF_VARS+=(-var grant_blob_data_role=false)
}
bootstrap_state azure "$@"
