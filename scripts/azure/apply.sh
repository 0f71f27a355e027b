#!/usr/bin/env bash
# Builds the binary and the managed image, deploys the stack with Terraform, then validates it.
#   scripts/azure/apply.sh            # asks before terraform applies
#   AUTO_APPROVE=1 scripts/azure/apply.sh
# Env: ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID/ARM_SUBSCRIPTION_ID (required),
# AZURE_LOCATION (default centralus), IMAGE_RG (default candidates-images), SKIP_IMAGE=1 to reuse
# the newest image in the manifest, MAX_SURGE=1 for surge rolling upgrades (needs the
# MaxSurgeRollingUpgrade feature registered: checked here), TF_EXTRA_ARGS for more terraform flags,
# ADMIN_SSH_PUBLIC_KEY or SSH_PUBLIC_KEY_FILE (default ~/.ssh/id_ed25519.pub, then id_rsa.pub).
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

require_tools packer cargo
check_azure
add_admin_key_var
if [[ -n ${MAX_SURGE:-} ]]; then
  state=$(az feature show --namespace Microsoft.Compute --name MaxSurgeRollingUpgrade --query properties.state --output tsv)
  [[ $state == Registered ]] || die "MAX_SURGE=1 needs the MaxSurgeRollingUpgrade feature (state: ${state:-none}):" \
    "az feature register --namespace Microsoft.Compute --name MaxSurgeRollingUpgrade, wait for Registered," \
    "then az provider register --namespace Microsoft.Compute"
  TF_VARS+=(-var rolling_upgrade_max_surge=true)
fi
if [[ -z ${SKIP_IMAGE:-} ]]; then
  az group create --name "$IMAGE_RG" --location "$LOCATION" --tags application=candidates --output none
  build_server
  # The build VM admits SSH from this machine's public address only.
  builder_ip=${BUILDER_IP:-$(curl -fsS --max-time 10 https://checkip.amazonaws.com)}
  packer_build azure-arm.azure "azure_subscription_id=$ARM_SUBSCRIPTION_ID" \
    "azure_resource_group=$IMAGE_RG" "azure_location=$LOCATION" \
    "azure_allowed_inbound_ip_addresses=[\"$builder_ip\"]"
fi

log "terraform apply (terraform/azure, $LOCATION)"
tf_init "$TF_DIR"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$TF_DIR" apply -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/validate.sh"
