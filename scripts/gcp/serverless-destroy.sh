#!/usr/bin/env bash
# Destroys terraform/serverless/gcp: the service, its service account and custom role, the key file
# secret, the image repository (and its images) and the Firestore database (and its data, unless
# firestore_delete_protection is on). The APIs stay enabled (other stacks may use them); the image
# layout in target/ stays.
#   AUTO_APPROVE=1 scripts/gcp/serverless-destroy.sh
set -euo pipefail
# shellcheck source=scripts/gcp/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_gcp_serverless
log "terraform destroy (terraform/$SLS_DIR, $REGION)"
tf_init "$SLS_DIR"
tf "$SLS_DIR" destroy -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}
