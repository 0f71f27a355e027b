#!/usr/bin/env bash
# Scaling demo: prints the expected instance counts (from the applied per-instance target, see
# calibrate.sh), then a bounded open-loop load against the public ALB at the rate that must scale
# the group out, printing the Auto Scaling group's in-service / desired count every INTERVAL
# seconds, during the load and for WATCH_AFTER seconds after it (scale-in).
# Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER (scripts/deploy/lib.sh, scale_demo);
# STRESS=1 instead burns CPU on every instance through SSM Run Command (the CPU policy only).
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

check_aws
asg=$(tf_output "$TF_DIR" asg_name)
count() {
  # shellcheck disable=SC2016 # JMESPath literals in backticks, not shell
  aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$asg" \
    --query 'AutoScalingGroups[0].[length(Instances[?LifecycleState==`InService`]), DesiredCapacity]' \
    --output text | awk '{ printf "%s in service, %s desired", $1, $2 }'
}
# STRESS=1: every in-service instance burns its CPU for SECONDS (SSM Run Command).
stress_instances() {
  local seconds=$1 pids=()
  for instance in $(in_service_instances "$asg"); do
    stress_script "$seconds" | ssm_run "$instance" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
}
scale_demo "$(tf_output "$TF_DIR" rest_url)" "$(tf_output "$TF_DIR" target_requests_per_instance_per_second)" \
  "$(tf_output "$TF_DIR" min_size)" "$(tf_output "$TF_DIR" max_size)" dynamodb count
