#!/usr/bin/env bash
# Builds the Lambda package, applies terraform/serverless/aws (the function, its Function URL,
# table, log group and role), then validates it.
#   scripts/aws/serverless-apply.sh                # asks before terraform applies
#   AUTO_APPROVE=1 LAMBDA_ARCH=x86_64 scripts/aws/serverless-apply.sh
# Env: AWS_REGION (default us-east-2), LAMBDA_ARCH (arm64 or x86_64), LAMBDA_ZIP to deploy a zip
# built elsewhere (SKIP_BUILD=1), FUNCTION_NAME (default $STACK-fn), RESERVED_CONCURRENCY (a cap
# on environments at once; checked against the account first), TF_EXTRA_ARGS for more terraform
# flags (e.g. "-var memory_mb=1024").
set -euo pipefail
# shellcheck source=scripts/aws/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_aws
if [[ -z ${SKIP_BUILD:-} ]]; then
  "$(dirname "$0")/serverless-build.sh"
fi
[[ -f $LAMBDA_ZIP ]] || die "no package $LAMBDA_ZIP: run scripts/aws/serverless-build.sh"

# Lambda refuses a reservation that leaves the account fewer than 100 unreserved executions
# (PutFunctionConcurrency); new accounts often have a limit of 10 or 50. Say so before applying.
if [[ -n ${RESERVED_CONCURRENCY:-} && $RESERVED_CONCURRENCY != -1 ]]; then
  [[ $RESERVED_CONCURRENCY =~ ^[1-9][0-9]*$ ]] || die "RESERVED_CONCURRENCY must be a positive number or -1"
  unreserved=$(aws lambda get-account-settings --region "$AWS_REGION" \
    --query AccountLimit.UnreservedConcurrentExecutions --output text)
  [[ $unreserved =~ ^[0-9]+$ ]] || die "cannot read the account's unreserved concurrency"
  # A re-apply: this function's own reservation is not in the unreserved pool.
  held=$(aws lambda get-function-concurrency --region "$AWS_REGION" --function-name "${FUNCTION_NAME:-$STACK-fn}" \
    --query ReservedConcurrentExecutions --output text 2>/dev/null || true)
  [[ $held =~ ^[0-9]+$ ]] || held=0
  if ((unreserved + held - RESERVED_CONCURRENCY < 100)); then
    die "RESERVED_CONCURRENCY=$RESERVED_CONCURRENCY would leave $((unreserved + held - RESERVED_CONCURRENCY)) unreserved executions; Lambda needs 100. Ask for a higher concurrency quota, or leave RESERVED_CONCURRENCY unset"
  fi
  SLS_VARS+=(-var "reserved_concurrency=$RESERVED_CONCURRENCY")
fi

log "terraform apply (terraform/$SLS_DIR, region $AWS_REGION, $LAMBDA_ARCH)"
tf_init "$SLS_DIR"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$SLS_DIR" apply -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/serverless-validate.sh"
