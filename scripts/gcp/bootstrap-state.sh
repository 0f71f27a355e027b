#!/usr/bin/env bash
# Remote state for terraform/gcp: creates the Cloud Storage state bucket (terraform/state/gcp:
# versioned, uniform bucket-level access, public access prevention enforced) and writes
# terraform/gcp/backend_override.tf (the gcs backend, which locks by itself), which apply.sh,
# validate.sh and destroy.sh then use. Run it once per project; until then the state is local.
#   scripts/gcp/bootstrap-state.sh --dry-run   # plan only: prints the plan and the backend file, creates nothing
#   scripts/gcp/bootstrap-state.sh             # asks before terraform applies
#   AUTO_APPROVE=1 scripts/gcp/bootstrap-state.sh
# Env: GOOGLE_CLOUD_PROJECT (else gcloud's configured project), GCP_REGION (default us-central1),
# STACK (default candidates: the prefix <STACK>/gcp), STATE_TF_ARGS for more flags to the state root
# (e.g. "-var bucket_name=my-state-bucket").
# Then: MIGRATE_STATE=1 scripts/gcp/apply.sh moves an existing local state into the bucket.
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

# backend_block BUCKET: the backend file (output bucket of terraform/state/gcp).
backend_block() {
  cat <<HCL
# Written by scripts/gcp/bootstrap-state.sh: terraform/gcp keeps its state in Cloud Storage
# (docs/deploy-gcp.md, Remote state). Git-ignored. Delete it, then run
# terraform -chdir=terraform/gcp init -migrate-state, to go back to local state.
terraform {
  backend "gcs" {
    bucket = "$1"
    prefix = "$STACK/gcp"
  }
}
HCL
}

# state_prepare: called by bootstrap_state once the arguments are read.
state_prepare() {
  require_tools terraform python3
  check_gcp
  STATE_TF_VARS=(-var "project_id=$PROJECT" -var "region=$REGION" -var "name=$STACK")
}
bootstrap_state gcp "$@"
