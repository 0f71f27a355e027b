# Azure settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

LOCATION=${AZURE_LOCATION:-centralus}
# Packer's managed images live in a resource group of their own, outside Terraform's.
IMAGE_RG=${IMAGE_RG:-candidates-images}
# shellcheck disable=SC2034 # used by the scripts that source this file
TF_DIR=azure
# shellcheck disable=SC2034
TF_VARS=(-var "location=$LOCATION" -var "name=$STACK")

# A service principal, as the original: ARM_* for Terraform and Packer, and the az CLI logged in
# with the same identity.
check_azure() {
  require_tools az terraform
  local missing=()
  for v in ARM_CLIENT_ID ARM_CLIENT_SECRET ARM_TENANT_ID ARM_SUBSCRIPTION_ID; do
    [[ -n ${!v:-} ]] || missing+=("$v")
  done
  ((${#missing[@]} == 0)) || die "set ${missing[*]} (a service principal; see docs/deploy-azure.md)"
  az login --service-principal --username "$ARM_CLIENT_ID" --password "$ARM_CLIENT_SECRET" \
    --tenant "$ARM_TENANT_ID" --output none || die "az login with the service principal failed"
  az account set --subscription "$ARM_SUBSCRIPTION_ID"
}

# vmss_run RG VMSS INSTANCE_ID: runs stdin as a shell script as root on one scale set instance
# (run-command, RunShellScript) and prints its output (the last 4 KiB of each stream).
vmss_run() {
  az vmss run-command invoke --resource-group "$1" --name "$2" --instance-id "$3" \
    --command-id RunShellScript --scripts "$(cat)" --query 'value[0].message' --output tsv
}
