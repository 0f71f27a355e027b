#!/usr/bin/env bash
# Waits (bounded) until every backend of the Application Gateway is healthy, then runs
# `candidatectl check` over REST against the gateway from here, and over gRPC against the internal
# load balancer from inside the virtual network: on the validation host (terraform/azure/
# validation.tf), which is in no backend pool, through `az vm run-command` (the image ships
# candidatectl). Not from a scale set instance: a backend's flow to its own internal load
# balancer fails whenever it is mapped back to itself. Both checks write, with the deployment's
# write key (Terraform's output write_key): here from CANDIDATES_API_KEY; to the validation host in
# the Run Command script, which az reads from a private file (--scripts @FILE), not from its command
# line. With HTTPS it waits for the domain to answer, and checks that port 80 redirects. Env:
# HEALTH_TIMEOUT (default 900 s), SKIP_GRPC=1.
set -euo pipefail
# shellcheck source=scripts/azure/env.sh
source "$(dirname "$0")/env.sh"

check_azure
use_write_key "$TF_DIR"
rg=$(tf_output "$TF_DIR" resource_group)
gateway=$(tf_output "$TF_DIR" app_gateway_name)
vmss=$(tf_output "$TF_DIR" vmss_name)
rest_url=$(tf_output "$TF_DIR" rest_url)
grpc_endpoint=$(tf_output "$TF_DIR" grpc_endpoint)
min=$(tf_output "$TF_DIR" instances_min)

all_healthy() {
  local states
  states=$(az network application-gateway show-backend-health --resource-group "$rg" --name "$gateway" \
    --query 'backendAddressPools[].backendHttpSettingsCollection[].servers[].health' --output tsv)
  all_in_state Healthy "$min" "${states//$'\n'/ }"
}
wait_for "${HEALTH_TIMEOUT:-900}" "every Application Gateway backend healthy" all_healthy
# With HTTPS, rest_url is the domain, which answers only once its DNS record points at the gateway.
wait_for_domain "$rest_url" "$(tf_output "$TF_DIR" gateway_fqdn)"

log "details: $rest_url/gtg?details=true"
# Informational, as on the other clouds (lib.sh's http_retry).
http_retry "$rest_url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo
contract_check "$rest_url"

validation_vm=$(tf_output "$TF_DIR" validation_vm_name)
if [[ -z ${SKIP_GRPC:-} && -z $validation_vm ]]; then
  echo "validation_host is off: gRPC not checked (a scale set instance cannot test its own load balancer)" >&2
elif [[ -z ${SKIP_GRPC:-} ]]; then
  log "contract check over gRPC from $validation_vm (in no backend pool of $vmss) to $grpc_endpoint"
  script=$(mktemp)
  trap 'rm -f "$script"' EXIT
  # The key goes in the script, which az reads from a file only this user can read (mktemp's
  # 0600); Run Command runs it as root on the host, and its answer holds the output, not the script.
  # The internal gRPC load balancer is plaintext inside the virtual network: candidatectl, which
  # refuses a key over plain HTTP by default, is told to send it.
  printf 'export CANDIDATES_API_KEY=%s\ncandidatectl --allow-plaintext-key check --skip-rest --grpc-target http://%s; echo candidatectl-exit=$?\n' \
    "$CANDIDATES_API_KEY" "$grpc_endpoint" >"$script"
  out=$(az vm run-command invoke --resource-group "$rg" --name "$validation_vm" \
    --command-id RunShellScript --query 'value[0].message' --output tsv --scripts @"$script")
  rm -f "$script"
  echo "$out"
  grep -q 'candidatectl-exit=0' <<<"$out" || die "the gRPC contract check failed on the instance"
fi
