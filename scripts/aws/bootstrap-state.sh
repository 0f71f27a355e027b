#!/usr/bin/env bash
# Remote state for terraform/aws: creates the S3 state bucket (terraform/state/aws: versioned,
# encrypted, public access blocked, TLS only) and writes terraform/aws/backend_override.tf (the S3
# backend with use_lockfile: S3-native locking, no DynamoDB table), which apply.sh, validate.sh and
# destroy.sh then use. Run it once per account and region; until then the state is local.
#   scripts/aws/bootstrap-state.sh --dry-run   # plan only: prints the plan and the backend file, creates nothing
#   scripts/aws/bootstrap-state.sh             # asks before terraform applies
#   AUTO_APPROVE=1 scripts/aws/bootstrap-state.sh
# Env: AWS_REGION (default us-east-2), STACK (default candidates: the key <STACK>/aws.tfstate),
# STATE_TF_ARGS for more flags to the state root (e.g. "-var bucket_name=my-state-bucket").
# Then: MIGRATE_STATE=1 scripts/aws/apply.sh moves an existing local state into the bucket.
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

# backend_block BUCKET REGION: the backend file (outputs bucket and region of terraform/state/aws).
backend_block() {
  cat <<HCL
# Written by scripts/aws/bootstrap-state.sh: terraform/aws keeps its state in S3
# (docs/deploy-aws.md, Remote state). Git-ignored. Delete it, then run
# terraform -chdir=terraform/aws init -migrate-state, to go back to local state.
terraform {
  backend "s3" {
    bucket       = "$1"
    key          = "$STACK/aws.tfstate"
    region       = "$2"
    encrypt      = true
    use_lockfile = true
  }
}
HCL
}

# state_prepare: called by bootstrap_state once the arguments are read.
state_prepare() {
  require_tools terraform python3
  check_aws
  STATE_TF_VARS=(-var "region=$AWS_REGION" -var "name=$STACK")
}
bootstrap_state aws "$@"
