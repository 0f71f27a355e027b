#!/usr/bin/env bash
# Builds the Lambda package, applies terraform/serverless/aws (the function, its Function URL,
# table, log group and role), then validates it.
#   scripts/aws/serverless-apply.sh                # asks before terraform applies
#   AUTO_APPROVE=1 LAMBDA_ARCH=x86_64 scripts/aws/serverless-apply.sh
# Env: AWS_REGION (default us-east-2), LAMBDA_ARCH (arm64 or x86_64), LAMBDA_ZIP to deploy a zip
# built elsewhere (SKIP_BUILD=1), FUNCTION_NAME (default $STACK-fn), TF_EXTRA_ARGS for more
# terraform flags (e.g. "-var memory_mb=1024").
set -euo pipefail
# shellcheck source=scripts/aws/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_aws
if [[ -z ${SKIP_BUILD:-} ]]; then
  "$(dirname "$0")/serverless-build.sh"
fi
[[ -f $LAMBDA_ZIP ]] || die "no package $LAMBDA_ZIP: run scripts/aws/serverless-build.sh"

log "terraform apply (terraform/$SLS_DIR, region $AWS_REGION, $LAMBDA_ARCH)"
tf_init "$SLS_DIR"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$SLS_DIR" apply -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/serverless-validate.sh"
