#!/usr/bin/env bash
# Waits (bounded) until every backend of the REST load balancer is HEALTHY and the load balancer
# answers /gtg, then runs `candidatectl check` over REST from here, and over gRPC against the
# internal load balancer from inside the VPC (on one instance, over IAP SSH with OS Login; the image
# ships candidatectl). Env: HEALTH_TIMEOUT (default 900 s), SKIP_GRPC=1.
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
rest_url=$(tf_output "$TF_DIR" rest_url)
grpc_endpoint=$(tf_output "$TF_DIR" grpc_endpoint)
backend=$(tf_output "$TF_DIR" rest_backend_service)
mig=$(tf_output "$TF_DIR" mig_name)
min=$(tf_output "$TF_DIR" min_replicas)

all_healthy() {
  local states
  states=$(gcloud compute backend-services get-health "$backend" --global --project "$PROJECT" \
    --format='value(status.healthStatus[].healthState)' | tr ';' ' ')
  all_in_state HEALTHY "$min" "$states"
}
# A new global load balancer takes minutes to program after its backends are healthy.
lb_answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$rest_url/gtg") == 200 ]]; }
wait_for "${HEALTH_TIMEOUT:-900}" "every REST backend HEALTHY" all_healthy
wait_for "${HEALTH_TIMEOUT:-900}" "the load balancer answering GET /gtg with 200" lb_answers

log "details: $rest_url/gtg?details=true"
curl -sS --max-time 10 "$rest_url/gtg?details=true"
echo
contract_check "$rest_url"

if [[ -z ${SKIP_GRPC:-} ]]; then
  instance=$(gcloud compute instance-groups managed list-instances "$mig" --region "$REGION" --project "$PROJECT" \
    --filter='status=RUNNING' --limit 1 --format='value(instance)')
  zone=$(sed -E 's|.*/zones/([^/]+)/.*|\1|' <<<"$instance")
  log "contract check over gRPC from ${instance##*/} ($zone) to $grpc_endpoint"
  gcloud compute ssh "${instance##*/}" --zone "$zone" --project "$PROJECT" --tunnel-through-iap \
    --command "candidatectl check --skip-rest --grpc-target http://$grpc_endpoint" ||
    die "the gRPC contract check failed on the instance"
fi
