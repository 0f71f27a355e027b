#!/usr/bin/env bash
# Scaling demo: prints the expected instance counts (from the applied per-instance target, see
# calibrate.sh), then a bounded open-loop load against the external load balancer at the rate that
# must scale the group out, ramped within Firestore's 500/50/5 rule, printing the managed instance
# group's running / target size every INTERVAL seconds, during the load and for WATCH_AFTER
# seconds after it (scale-in).
# Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER (scripts/deploy/lib.sh, scale_demo);
# STRESS=1 instead burns CPU on every instance over IAP SSH (the CPU signal only).
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
mig=$(tf_output "$TF_DIR" mig_name)
count() {
  local running target
  running=$(running_instances "$mig" | wc -l)
  target=$(gcloud compute instance-groups managed describe "$mig" --region "$REGION" --project "$PROJECT" \
    --format='value(targetSize)')
  echo "$running running, $target target"
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
scale_demo "$(tf_output "$TF_DIR" rest_url)" "$(tf_output "$TF_DIR" target_requests_per_instance_per_second)" \
  "$(tf_output "$TF_DIR" min_replicas)" "$(tf_output "$TF_DIR" max_replicas)" firestore count
