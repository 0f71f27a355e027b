#!/usr/bin/env bash
# Builds the function app's package, applies terraform/serverless/azure (resource group, storage,
# Flex Consumption plan and app, Cosmos DB, Application Insights), deploys the package (one deploy:
# `az functionapp deployment source config-zip`, which on Flex Consumption puts it in the app's
# deployment container), then validates it.
#   scripts/azure/serverless-apply.sh                # asks before terraform applies
#   AUTO_APPROVE=1 scripts/azure/serverless-apply.sh
# Env: AZURE_LOCATION (default centralus), FUNCTIONS_ZIP to deploy a zip built elsewhere
# (SKIP_BUILD=1), FUNCTION_NAME (default $STACK-fn), TF_EXTRA_ARGS for more terraform flags
# (e.g. "-var max_instances=100").
set -euo pipefail
# shellcheck source=scripts/azure/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_azure
if [[ -z ${SKIP_BUILD:-} ]]; then
  "$(dirname "$0")/serverless-build.sh"
fi
[[ -f $FUNCTIONS_ZIP ]] || die "no package $FUNCTIONS_ZIP: run scripts/azure/serverless-build.sh"

log "terraform apply (terraform/$SLS_DIR, location $LOCATION)"
tf_init "$SLS_DIR"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$SLS_DIR" apply -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

group=$(tf_output "$SLS_DIR" resource_group)
app=$(tf_output "$SLS_DIR" function_app_name)
# azurerm_function_app_flex_consumption writes the app setting AzureWebJobsStorage, a connection
# string, whatever storage_authentication_type says (the provider's
# ExpandSiteConfigFunctionFlexConsumptionApp appends it whenever the storage string is not empty;
# with the app's identity its AccountKey is empty), on every apply that updates the app; the host
# reads it before AzureWebJobsStorage__accountName, and the account takes no shared keys, so the
# host could not reach its storage. Removed after every apply (it holds no key to lose).
log "removing the provider's key-less AzureWebJobsStorage connection string from $app"
az functionapp config appsettings delete --resource-group "$group" --name "$app" \
  --setting-names AzureWebJobsStorage --output none
log "deploying $FUNCTIONS_ZIP to $app ($group)"
az functionapp deployment source config-zip --resource-group "$group" --name "$app" --src "$FUNCTIONS_ZIP" --output none

"$(dirname "$0")/serverless-validate.sh"
