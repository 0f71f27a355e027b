#!/usr/bin/env bash
# Builds the binary and the image (family candidates), deploys the stack with Terraform, then
# validates it.
#   scripts/gcp/apply.sh            # asks before terraform applies
#   AUTO_APPROVE=1 scripts/gcp/apply.sh
# Env: GOOGLE_CLOUD_PROJECT (else gcloud's configured project), GCP_REGION (default us-central1),
# SKIP_IMAGE=1 to reuse the newest image, TF_EXTRA_ARGS for more terraform flags.
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

require_tools packer cargo
check_gcp
if [[ -z ${SKIP_IMAGE:-} ]]; then
  # Packer needs the Compute API before Terraform enables the rest.
  gcloud services enable compute.googleapis.com --project "$PROJECT"
  build_server
  packer_build googlecompute.gcp "gcp_project_id=$PROJECT" "gcp_zone=$REGION-a"
fi

log "terraform apply (terraform/gcp, project $PROJECT, $REGION)"
tf "$TF_DIR" init -input=false
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$TF_DIR" apply -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/validate.sh"
