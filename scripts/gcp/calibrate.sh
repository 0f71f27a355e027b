#!/usr/bin/env bash
# Calibration: measures one instance's CPU cost per request under the scale demo's operation mix
# (candidatectl load on the instance against itself, over IAP SSH) and writes the per-instance
# target that follows from it to terraform/gcp/calibration.auto.tfvars.json (docs/scaling.md).
# Env: CAL_SECONDS (60), CAL_RATE, CAL_BASELINE (scripts/deploy/lib.sh, calibrate).
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
mig=$(tf_output "$TF_DIR" mig_name)
instance=$(running_instances "$mig" | head -n 1)
[[ -n $instance ]] || die "no RUNNING instance in $mig"
echo "calibrating on ${instance##*/}"
# The machine type: a shared-core one (e2-small) caps the target at its baseline CPU share.
type=$(gcloud compute instances describe "$instance" --format='value(machineType.basename())')
calibrate gcp firestore "$(tf_output "$TF_DIR" max_replicas)" "$type" iap_run "$instance"
