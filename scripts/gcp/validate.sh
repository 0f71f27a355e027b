#!/usr/bin/env bash
# Waits (bounded) until every backend of the REST load balancer is HEALTHY and the load balancer
# answers /gtg, then runs `candidatectl check` over REST from here, and over gRPC against the
# internal load balancer from inside the VPC: on the validation host (terraform/gcp/validation.tf,
# in no instance group), over IAP SSH with OS Login (the image ships candidatectl). Not on an
# instance of the group: a backend's connection to its own internal load balancer is routed to
# itself and never tests the load balancer. Both checks write, with the deployment's write key
# (Terraform's output write_key): here from CANDIDATES_API_KEY, on the validation host from the SSH
# session's standard input (not its command line). With HTTPS (var.domains) it first waits for the
# Google-managed certificate to be ACTIVE, and checks that port 80 redirects. Env: HEALTH_TIMEOUT
# (default 900 s), CERT_TIMEOUT (default 3600 s), SKIP_GRPC=1.
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
use_write_key "$TF_DIR"
rest_url=$(tf_output "$TF_DIR" rest_url)
grpc_endpoint=$(tf_output "$TF_DIR" grpc_endpoint)
backend=$(tf_output "$TF_DIR" rest_backend_service)
mig=$(tf_output "$TF_DIR" mig_name)
min=$(tf_output "$TF_DIR" min_replicas)
certificate=$(tf_output "$TF_DIR" certificate_name 2>/dev/null || true)

all_healthy() {
  local states
  states=$(gcloud compute backend-services get-health "$backend" --global --project "$PROJECT" \
    --format='value(status.healthStatus[].healthState)' | tr ';' ' ')
  all_in_state HEALTHY "$min" "$states"
}
# Google issues a managed certificate only once every domain's DNS A record points at the load
# balancer (output rest_address), and can take up to an hour after that (docs/deploy-gcp.md, HTTPS).
cert_active() {
  local status
  status=$(gcloud compute ssl-certificates describe "$certificate" --global --project "$PROJECT" \
    --format='value(managed.status)')
  echo "  $(date -u +%H:%M:%S) $certificate: ${status:-no status}" >&2
  # Google does not retry these: only a new certificate helps (docs/deploy-gcp.md, HTTPS).
  case $status in
    PROVISIONING_FAILED_PERMANENTLY | RENEWAL_FAILED)
      die "$certificate is $status, which Google does not retry: check the domains' DNS (and CAA) records, then raise certificate_revision and apply to get a new certificate" ;;
  esac
  [[ $status == ACTIVE ]]
}
# A new global load balancer takes minutes to program after its backends are healthy.
lb_answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$rest_url/gtg") == 200 ]]; }
wait_for "${HEALTH_TIMEOUT:-900}" "every REST backend HEALTHY" all_healthy
if [[ -n $certificate ]]; then
  address=$(tf_output "$TF_DIR" rest_address)
  wait_for "${CERT_TIMEOUT:-3600}" "the managed certificate $certificate ACTIVE (the domains' A records -> $address)" cert_active
fi
wait_for "${HEALTH_TIMEOUT:-900}" "the load balancer answering GET /gtg with 200" lb_answers

log "details: $rest_url/gtg?details=true"
# Informational (contract_check below is the check): transient errors (a reset, a 5xx) are retried
# a bounded number of times (lib.sh's http_retry) and never end the script under `set -e`.
http_retry "$rest_url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo
contract_check "$rest_url"

read -r validation_vm zone <<<"$(tf_output "$TF_DIR" validation_instance)"
if [[ -z ${SKIP_GRPC:-} && -z ${validation_vm:-} ]]; then
  echo "validation_host is off: gRPC not checked (an instance of $mig cannot test its own load balancer)" >&2
elif [[ -z ${SKIP_GRPC:-} ]]; then
  log "contract check over gRPC from $validation_vm ($zone, in no instance group) to $grpc_endpoint"
  # The internal gRPC load balancer is plaintext inside the VPC: candidatectl, which refuses a key
  # over plain HTTP by default, is told to send it.
  # shellcheck disable=SC2016 # expanded on the validation host
  printf '%s\n' "$CANDIDATES_API_KEY" |
    gcloud compute ssh "$validation_vm" --zone "${zone##*/}" --project "$PROJECT" --tunnel-through-iap --quiet \
      --command 'IFS= read -r CANDIDATES_API_KEY && export CANDIDATES_API_KEY && candidatectl --allow-plaintext-key check --skip-rest --grpc-target http://'"$grpc_endpoint" ||
    die "the gRPC contract check failed on the validation host"
fi
