#!/usr/bin/env bash
# Scaling demo: a bounded open-loop load against the public ALB, printing the Auto Scaling
# group's in-service / desired instance count every INTERVAL seconds, during the load and for
# WATCH_AFTER seconds after it (scale-in). Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER
# (scripts/deploy/lib.sh, scale_demo).
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
scale_demo "$(tf_output "$TF_DIR" rest_url)" count
