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
# (terraform_data.drop_keyless_storage_string removes the provider's key-less AzureWebJobsStorage
# connection string after every apply that changed the app: function.tf.)
log "deploying $FUNCTIONS_ZIP to $app ($group)"
# The app's identity was granted the deployment container minutes ago at most, and Azure role
# assignments take up to ten minutes to apply: a 403 on the first deploy is retried.
for attempt in 1 2 3 4 5 6; do
  if az functionapp deployment source config-zip --resource-group "$group" --name "$app" --src "$FUNCTIONS_ZIP" --output none; then
    break
  fi
  ((attempt < 6)) || die "the zip deploy failed six times; if the app then does not start, deploy the same files with Azure Functions Core Tools instead: unzip $FUNCTIONS_ZIP into an empty directory and run 'func azure functionapp publish $app' there"
  log "zip deploy failed (attempt $attempt; role assignments may still be propagating): retrying in $((attempt * 20)) s"
  sleep $((attempt * 20))
done

"$(dirname "$0")/serverless-validate.sh"
