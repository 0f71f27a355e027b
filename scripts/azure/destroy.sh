#!/usr/bin/env bash
# Destroys the stack, then deletes this stack's managed images (tags application=candidates and
# stack=$STACK) and their resource group IMAGE_RG when it is empty; other stacks' images stay.
#   AUTO_APPROVE=1 scripts/azure/destroy.sh
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

check_azure
add_admin_key_var
log "terraform destroy (terraform/azure)"
tf_init "$TF_DIR"
tf "$TF_DIR" destroy -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}

if az group exists --name "$IMAGE_RG" | grep -q true; then
  log "deleting managed images in $IMAGE_RG tagged application=candidates, stack=$STACK"
  ids=$(az image list --resource-group "$IMAGE_RG" \
    --query "[?tags.application=='candidates' && tags.stack=='$STACK'].id" --output tsv)
  for id in $ids; do
    echo "delete $id"
    az image delete --ids "$id"
  done
  if [[ -z $(az resource list --resource-group "$IMAGE_RG" --query '[].id' --output tsv) ]]; then
    az group delete --name "$IMAGE_RG" --yes
  fi
fi
forget_images azure-arm
