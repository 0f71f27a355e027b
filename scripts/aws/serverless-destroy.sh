#!/usr/bin/env bash
# Destroys terraform/serverless/aws: the function, its URL and permissions, the role, the log group
# (and its logs) and the table (unless table_deletion_protection is on). The zip in dist/ stays.
#   AUTO_APPROVE=1 scripts/aws/serverless-destroy.sh
set -euo pipefail
# shellcheck source=scripts/aws/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_aws
# The package variable must name a file (filebase64sha256 is evaluated even on destroy): an
# empty stand-in when the zip is gone.
if [[ ! -f $LAMBDA_ZIP ]]; then
  mkdir -p "$(dirname "$LAMBDA_ZIP")"
  : >"$LAMBDA_ZIP"
fi
log "terraform destroy (terraform/$SLS_DIR, region $AWS_REGION)"
tf_init "$SLS_DIR"
tf "$SLS_DIR" destroy -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}
