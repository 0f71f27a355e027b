#!/usr/bin/env bash
# Destroys terraform/serverless/azure: the function app and its plan, the storage account (and the
# deployed package), Cosmos DB (and its data), Application Insights and its workspace (and the
# logs), the role assignments and the resource group. The zip in dist/ stays.
#   AUTO_APPROVE=1 scripts/azure/serverless-destroy.sh
set -euo pipefail
# shellcheck source=scripts/azure/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_azure
log "terraform destroy (terraform/$SLS_DIR, location $LOCATION)"
tf_init "$SLS_DIR"
tf "$SLS_DIR" destroy -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}
