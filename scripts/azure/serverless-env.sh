# Settings shared by scripts/azure/serverless-*.sh (the Azure Functions deployment,
# terraform/serverless/azure). Source it.
# shellcheck shell=bash
# shellcheck source=scripts/azure/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# shellcheck disable=SC2034 # used by the scripts that source this file
SLS_DIR=serverless/azure
# The app's package: host.json, api/function.json and `handler` at its root.
# shellcheck disable=SC2034
FUNCTIONS_ZIP=${FUNCTIONS_ZIP:-$ROOT/dist/azure-functions/app.zip}
# shellcheck disable=SC2034
SLS_VARS=(-var "location=$LOCATION" -var "name=${FUNCTION_NAME:-$STACK-fn}")
