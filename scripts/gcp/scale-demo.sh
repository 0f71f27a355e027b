#!/usr/bin/env bash
# Scaling demo: prints the expected instance counts (from the applied per-instance target, see
# calibrate.sh), then a bounded open-loop load against the external load balancer at the rate that
# must scale the group out, ramped within Firestore's 500/50/5 rule, printing the managed instance
# group's running / target size every INTERVAL seconds, during the load and after it until the
# group is back at its minimum (scale-in). Fails (exit 1) when the counts fall short of the plan or
# come later than the policy allows, printing the autoscaler's status and statusDetails.
# Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER (scripts/deploy/lib.sh, scale_demo);
# STRESS=1 instead burns CPU on every instance over IAP SSH (the CPU signal only).
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
# The load writes (--populate, the mix's puts): the deployment's write key.
use_write_key "$TF_DIR"
mig=$(tf_output "$TF_DIR" mig_name)
# count: "RUNNING TARGET_SIZE".
count() {
  local running target
  running=$(running_instances "$mig" | wc -l)
  target=$(gcloud compute instance-groups managed describe "$mig" --region "$REGION" --project "$PROJECT" \
    --format='value(targetSize)')
  echo "$running $target"
}
# autoscaler_status: `instance-groups managed describe` includes the group's autoscaler; its
# status and statusDetails say why it does not scale (e.g. MORE_THAN_ONE_BACKEND_SERVICE,
# MISSING_LOAD_BALANCING_DATA_POINTS, SCALING_TARGET_DOES_NOT_EXIST), recommendedSize what it wants.
autoscaler_status() {
  echo "--- gcloud compute instance-groups managed describe $mig (autoscaler)"
  gcloud compute instance-groups managed describe "$mig" --region "$REGION" --project "$PROJECT" \
    --format='yaml(targetSize, status, currentActions, autoscaler.status, autoscaler.statusDetails, autoscaler.recommendedSize, autoscaler.autoscalingPolicy)' ||
    true
}
# STRESS=1: every running instance burns its CPU for SECONDS (IAP SSH).
stress_instances() {
  local seconds=$1 pids=()
  for instance in $(running_instances "$mig"); do
    stress_script "$seconds" | iap_run "$instance" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
}
scale_demo gcp "$(tf_output "$TF_DIR" rest_url)" "$(tf_output "$TF_DIR" target_requests_per_instance_per_second)" \
  "$(tf_output "$TF_DIR" min_replicas)" "$(tf_output "$TF_DIR" max_replicas)" firestore count
