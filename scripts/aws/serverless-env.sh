# Settings shared by scripts/aws/serverless-*.sh (the Lambda deployment, terraform/serverless/aws).
# Source it.
# shellcheck shell=bash
# shellcheck source=scripts/aws/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# shellcheck disable=SC2034 # used by the scripts that source this file
SLS_DIR=serverless/aws
# arm64 (Graviton, the cheaper per GB-second) or x86_64; the zip must hold a binary for it.
LAMBDA_ARCH=${LAMBDA_ARCH:-arm64}
# shellcheck disable=SC2034
LAMBDA_ZIP=${LAMBDA_ZIP:-$ROOT/dist/lambda/bootstrap-$LAMBDA_ARCH.zip}
# shellcheck disable=SC2034
SLS_VARS=(-var "region=$AWS_REGION" -var "name=${FUNCTION_NAME:-$STACK-fn}"
  -var "architecture=$LAMBDA_ARCH" -var "package=$LAMBDA_ZIP")
