#!/usr/bin/env bash
# Waits (bounded) until every target of both target groups is healthy (and, with a certificate,
# until its domain answers), then runs `candidatectl check` against the public ALB over REST and,
# through an SSM port-forwarding tunnel to the internal NLB, over gRPC, with the deployment's write
# key (Terraform's output write_key, in CANDIDATES_API_KEY: the check writes).
# Env: HEALTH_TIMEOUT (default 600 s); GRPC_TARGET to check gRPC directly (e.g. from inside the
# VPC) instead of through the tunnel; SKIP_GRPC=1 to check REST only.
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

check_aws
use_write_key "$TF_DIR"
rest_url=$(tf_output "$TF_DIR" rest_url)
grpc_endpoint=$(tf_output "$TF_DIR" grpc_endpoint)
asg=$(tf_output "$TF_DIR" asg_name)
min_size=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$asg" \
  --query 'AutoScalingGroups[0].MinSize' --output text)

all_healthy() { # TARGET_GROUP_ARN: at least min_size targets, every one healthy
  local states
  states=$(aws elbv2 describe-target-health --target-group-arn "$1" \
    --query 'TargetHealthDescriptions[].TargetHealth.State' --output text)
  all_in_state healthy "$min_size" "$states"
}
for output in rest_target_group_arn grpc_target_group_arn; do
  wait_for "${HEALTH_TIMEOUT:-600}" "$output: every target healthy" all_healthy "$(tf_output "$TF_DIR" "$output")"
done
# With a certificate, rest_url is https://<domain>, whose DNS record (to alb_dns_name, a name this
# apply may just have made) must exist before anything answers there.
wait_for_domain "$rest_url" "$(tf_output "$TF_DIR" alb_dns_name)"

log "details: $rest_url/gtg?details=true"
# Informational (contract_check below is the check): a transient error (a reset, a DNS answer not
# yet there) is retried a bounded number of times and never ends the script under `set -e`.
http_retry "$rest_url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo

grpc_target=${GRPC_TARGET:-}
if [[ -z $grpc_target && -z ${SKIP_GRPC:-} ]]; then
  if command -v session-manager-plugin >/dev/null; then
    # shellcheck disable=SC2016 # JMESPath literals in backticks, not shell
    instance=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$asg" \
      --query 'AutoScalingGroups[0].Instances[?LifecycleState==`InService`] | [0].InstanceId' --output text)
    port=$(free_port)
    log "SSM tunnel: 127.0.0.1:$port -> $instance -> $grpc_endpoint"
    aws ssm start-session --target "$instance" --document-name AWS-StartPortForwardingSessionToRemoteHost \
      --parameters "{\"host\":[\"${grpc_endpoint%:*}\"],\"portNumber\":[\"${grpc_endpoint##*:}\"],\"localPortNumber\":[\"$port\"]}" \
      >/dev/null &
    tunnel=$!
    trap 'kill "$tunnel" 2>/dev/null || true' EXIT
    wait_port "$port" || die "the SSM tunnel did not open"
    grpc_target=http://127.0.0.1:$port
  else
    echo "session-manager-plugin not installed: gRPC is checked only with GRPC_TARGET set" >&2
  fi
fi
contract_check "$rest_url" "$grpc_target"
