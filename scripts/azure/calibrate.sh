#!/usr/bin/env bash
# Calibration: measures one instance's CPU cost per request under the scale demo's operation mix
# (candidatectl load on the instance against itself, through run-command) and writes the
# per-instance target that follows from it to terraform/azure/calibration.auto.tfvars.json
# (docs/scaling.md); with Cosmos DB serverless the target is capped so that the demo stays under
# 80 % of its 5,000 RU/s. Env: CAL_SECONDS (60), CAL_RATE, CAL_BASELINE (scripts/deploy/lib.sh).
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

check_azure
rg=$(tf_output "$TF_DIR" resource_group)
vmss=$(tf_output "$TF_DIR" vmss_name)
instance=$(az vmss list-instances --resource-group "$rg" --name "$vmss" --query '[0].instanceId' --output tsv)
[[ -n $instance ]] || die "no instance in $vmss"
store=none
[[ $(tf_output "$TF_DIR" cosmos_serverless) == true ]] && store=cosmos
echo "calibrating on instance $instance of $vmss"
calibrate azure "$store" "$(tf_output "$TF_DIR" instances_max)" \
  "$(az vmss show --resource-group "$rg" --name "$vmss" --query sku.name --output tsv)" vmss_run "$rg" "$vmss" "$instance"
