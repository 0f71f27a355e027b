#!/usr/bin/env bash
# Scaling demo: a bounded open-loop load against the Application Gateway, printing the scale
# set's running / target instance count every INTERVAL seconds, during the load and for
# WATCH_AFTER seconds after it (scale-in). Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER
# (scripts/deploy/lib.sh, scale_demo).
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

check_azure
rg=$(tf_output "$TF_DIR" resource_group)
vmss=$(tf_output "$TF_DIR" vmss_name)
count() {
  local running capacity
  running=$(az vmss list-instances --resource-group "$rg" --name "$vmss" \
    --query "length([?provisioningState=='Succeeded'])" --output tsv)
  capacity=$(az vmss show --resource-group "$rg" --name "$vmss" --query sku.capacity --output tsv)
  echo "$running running, $capacity target"
}
scale_demo "$(tf_output "$TF_DIR" rest_url)" count
