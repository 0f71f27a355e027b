#!/usr/bin/env bash
# Builds the binary and the image (family candidates), deploys the stack with Terraform, then
# validates it.
#   scripts/gcp/apply.sh            # asks before terraform applies
#   AUTO_APPROVE=1 scripts/gcp/apply.sh
# Env: GOOGLE_CLOUD_PROJECT (else gcloud's configured project), GCP_REGION (default us-central1),
# SKIP_IMAGE=1 to reuse the newest image, TF_EXTRA_ARGS for more terraform flags. The Packer build
# VM: GCP_BUILD_ZONE (default: the first UP zone of the region), GCP_BUILD_NETWORK (default
# `default`) and GCP_BUILD_SUBNETWORK (needed for a custom-mode network); the network must admit
# 35.235.240.0/20 (IAP) on 22.
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

require_tools packer cargo
check_gcp
if [[ -z ${SKIP_IMAGE:-} ]]; then
  # Packer runs before Terraform enables anything: Compute for the build VM, IAP for its SSH
  # tunnel (use_iap; the plugin's docs require the IAP API), OS Login for its key (use_os_login).
  gcloud services enable compute.googleapis.com iap.googleapis.com oslogin.googleapis.com --project "$PROJECT"
  zone=${GCP_BUILD_ZONE:-$(gcloud compute zones list --project "$PROJECT" \
    --filter="name ~ '^$REGION-' AND status=UP" --sort-by=name --format='value(name)' | head -n 1)}
  [[ -n $zone ]] || die "no UP zone in region $REGION: set GCP_REGION or GCP_BUILD_ZONE"
  network=${GCP_BUILD_NETWORK:-default}
  gcloud compute networks describe "$network" --project "$PROJECT" --format='value(name)' >/dev/null ||
    die "no network $network for the Packer build VM: set GCP_BUILD_NETWORK (and GCP_BUILD_SUBNETWORK) to one that admits 35.235.240.0/20 on 22"
  build_server
  packer_build googlecompute.gcp "gcp_project_id=$PROJECT" "gcp_zone=$zone" "gcp_network=$network" \
    "gcp_subnetwork=${GCP_BUILD_SUBNETWORK:-}"
fi

log "terraform apply (terraform/gcp, project $PROJECT, $REGION)"
tf_init "$TF_DIR"
# An alert policy on a log-based metric made in the same apply can fail with "Cannot find metric(s)
# that match type": the metric takes up to 10 minutes to be visible (terraform-provider-google
# #11102, open). The apply is repeated for that error only, every 2 minutes, 6 times at most.
apply_log=$(mktemp)
trap 'rm -f "$apply_log"' EXIT
for attempt in 1 2 3 4 5 6; do
  # shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
  if tf "$TF_DIR" apply -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-} 2>&1 |
    tee "$apply_log"; then
    break
  fi
  if ((attempt == 6)) || ! grep -q "Cannot find metric(s) that match type" "$apply_log"; then
    die "terraform apply failed"
  fi
  log "a log-based metric is not visible to Cloud Monitoring yet (up to 10 minutes): applying again in 2 minutes"
  sleep "${METRIC_RETRY_DELAY:-120}"
done

"$(dirname "$0")/validate.sh"
