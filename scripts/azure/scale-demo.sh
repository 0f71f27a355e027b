#!/usr/bin/env bash
# Scaling demo: prints the expected instance counts (from the applied per-instance target, see
# calibrate.sh), then a bounded open-loop load against the Application Gateway at the rate that
# must scale the set out, printing the scale set's running / target count every INTERVAL seconds,
# during the load and after it until the set is back at its minimum (scale-in). Fails (exit 1)
# when the counts fall short of the plan or come later than the rules allow, printing the
# autoscale setting and its run history (the activity log's autoscale events). With Cosmos DB
# serverless the plan refuses a load over 80 % of its 5,000 RU/s per container.
# Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER (scripts/deploy/lib.sh, scale_demo);
# STRESS=1 instead burns CPU on every instance through run-command (the CPU rules only).
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

check_azure
# The load writes (--populate, the mix's puts): the deployment's write key.
use_write_key "$TF_DIR"
rg=$(tf_output "$TF_DIR" resource_group)
vmss=$(tf_output "$TF_DIR" vmss_name)
# count: "RUNNING CAPACITY".
count() {
  local running capacity
  running=$(az vmss list-instances --resource-group "$rg" --name "$vmss" \
    --query "length([?provisioningState=='Succeeded'])" --output tsv)
  capacity=$(az vmss show --resource-group "$rg" --name "$vmss" --query sku.capacity --output tsv)
  echo "$running $capacity"
}
# autoscaler_status: the autoscale setting that targets the scale set (enabled? its profile), and
# its run history: the activity log's events of category Autoscale in the last 3 hours (scale up/down actions
# with the engine's description, and failures).
autoscaler_status() {
  echo "--- az monitor autoscale list (the setting for $vmss)"
  az monitor autoscale list --resource-group "$rg" \
    --query "[?ends_with(targetResourceUri, '/$vmss')].{name:name, enabled:enabled, profiles:profiles[].{name:name, capacity:capacity, rules:length(rules)}}" \
    --output json || true
  echo "--- az monitor activity-log list (autoscale run history, last 3 h)"
  az monitor activity-log list --resource-group "$rg" --offset 3h --max-events 200 \
    --query "[?category.value=='Autoscale' || contains(operationName.value, 'AutoscaleSettings')].[eventTimestamp, operationName.value, status.value, properties.description]" \
    --output tsv || true
}
# STRESS=1: every instance burns its CPU for SECONDS (run-command).
stress_instances() {
  local seconds=$1 pids=()
  for id in $(az vmss list-instances --resource-group "$rg" --name "$vmss" --query '[].instanceId' --output tsv); do
    stress_script "$seconds" | vmss_run "$rg" "$vmss" "$id" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
}
store=none
[[ $(tf_output "$TF_DIR" cosmos_serverless) == true ]] && store=cosmos
scale_demo azure "$(tf_output "$TF_DIR" rest_url)" "$(tf_output "$TF_DIR" target_requests_per_instance_per_second)" \
  "$(tf_output "$TF_DIR" instances_min)" "$(tf_output "$TF_DIR" instances_max)" "$store" count
