#!/usr/bin/env bash
# Scaling demo: a bounded open-loop load against the external load balancer, printing the managed
# instance group's running / target size every INTERVAL seconds, during the load and for
# WATCH_AFTER seconds after it (scale-in). Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER
# (scripts/deploy/lib.sh, scale_demo).
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
mig=$(tf_output "$TF_DIR" mig_name)
count() {
  local running target
  running=$(gcloud compute instance-groups managed list-instances "$mig" --region "$REGION" --project "$PROJECT" \
    --filter='status=RUNNING' --format='value(instance)' | wc -l)
  target=$(gcloud compute instance-groups managed describe "$mig" --region "$REGION" --project "$PROJECT" \
    --format='value(targetSize)')
  echo "$running running, $target target"
}
scale_demo "$(tf_output "$TF_DIR" rest_url)" count
