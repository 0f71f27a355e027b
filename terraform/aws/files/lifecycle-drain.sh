#!/usr/bin/env bash
# Drains candidate-server before the Auto Scaling group terminates this instance.
#
# On scale-in or instance refresh the group first deregisters the instance from both target groups
# (their deregistration delay lets in-flight requests finish), then holds it in Terminating:Wait
# for the lifecycle hook's heartbeat. This loop sees that through IMDSv2
# (autoscaling/target-lifecycle-state = Terminated) and stops the service, so it drains (SIGTERM:
# /gtg 503, gRPC health NOT_SERVING, GOAWAY to long-lived gRPC connections) while the instance
# still runs, instead of racing the EC2 shutdown. It needs no IAM permission: the hook ends by its
# timeout with CONTINUE.
set -euo pipefail
imds=${IMDS_ENDPOINT:-http://169.254.169.254}
interval=${POLL_SECONDS:-5}

state() {
  local token
  token=$(curl -sf -m 2 -X PUT "$imds/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || return 0
  curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/autoscaling/target-lifecycle-state" || true
}

while :; do
  if [[ $(state) == Terminated ]]; then
    echo "lifecycle: Terminated; stopping candidates.service (drain)"
    systemctl stop candidates.service
    exit 0
  fi
  sleep "$interval"
done
