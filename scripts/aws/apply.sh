#!/usr/bin/env bash
# Builds the binary and the AMI, deploys the stack with Terraform, then validates it.
#   scripts/aws/apply.sh            # asks before terraform applies
#   AUTO_APPROVE=1 scripts/aws/apply.sh
# Env: AWS_REGION (default us-east-2), SKIP_IMAGE=1 to reuse the newest AMI in the manifest,
# TF_EXTRA_ARGS for more terraform flags (e.g. "-var max_size=6").
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

require_tools packer cargo
check_aws
if [[ -z ${SKIP_IMAGE:-} ]]; then
  build_server
  packer_build amazon-ebs.aws "aws_region=$AWS_REGION"
fi

log "terraform apply (terraform/aws, region $AWS_REGION)"
tf_init "$TF_DIR"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$TF_DIR" apply -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/validate.sh"
