#!/usr/bin/env bash
# Scaling demo: prints the expected instance counts (from the applied per-instance target, see
# calibrate.sh), then a bounded open-loop load against the public ALB at the rate that must scale
# the group out, printing the Auto Scaling group's in-service / desired count every INTERVAL
# seconds, during the load and after it until the group is back at its minimum (scale-in). Fails
# (exit 1) when the counts fall short of the plan or come later than the policy allows, printing
# the group's scaling activities and the target-tracking alarms.
# Env: RATE, RAMP, DURATION, INTERVAL, WATCH_AFTER (scripts/deploy/lib.sh, scale_demo);
# STRESS=1 instead burns CPU on every instance through SSM Run Command (the CPU policy only).
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

check_aws
# The load writes (--populate, the mix's puts): the deployment's write key.
use_write_key "$TF_DIR"
asg=$(tf_output "$TF_DIR" asg_name)
# count: "IN_SERVICE DESIRED".
count() {
  # shellcheck disable=SC2016 # JMESPath literals in backticks, not shell
  aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$asg" \
    --query 'AutoScalingGroups[0].[length(Instances[?LifecycleState==`InService`]), DesiredCapacity]' \
    --output text
}
# autoscaler_status: what Auto Scaling did and why (the latest activities, with their causes and
# failures), and the state of the target-tracking alarms that drive it.
autoscaler_status() {
  echo "--- aws autoscaling describe-scaling-activities (latest 20)"
  aws autoscaling describe-scaling-activities --auto-scaling-group-name "$asg" --max-items 20 \
    --query 'Activities[].[StartTime, StatusCode, Description, Cause, StatusMessage]' --output text || true
  echo "--- target-tracking alarms (TargetTracking-$asg-*)"
  aws cloudwatch describe-alarms --alarm-name-prefix "TargetTracking-$asg-" \
    --query 'MetricAlarms[].[AlarmName, StateValue, StateReason]' --output text || true
}
# ssm_burn INSTANCE SECONDS: the CPU burn through SSM Run Command, with the command's
# executionTimeout and this script's wait both derived from SECONDS (run_limit: plus 10 %, at least
# 120 s), so a burn longer than SSM's 3,600 s default or env.sh's 15-minute ssm_run is not cut short.
# --timeout-seconds is only the delivery timeout (how long the command may wait to start).
ssm_burn() {
  local instance=$1 seconds=$2 limit b64 id status=Pending deadline
  limit=$(run_limit "$seconds")
  b64=$(stress_script "$seconds" | base64 -w0)
  id=$(aws ssm send-command --instance-ids "$instance" --document-name AWS-RunShellScript \
    --comment "candidates scale demo (STRESS=1)" --timeout-seconds 600 \
    --parameters "{\"commands\":[\"echo $b64 | base64 -d | bash\"],\"executionTimeout\":[\"$limit\"]}" \
    --query Command.CommandId --output text)
  deadline=$((SECONDS + 600 + limit))
  while ((SECONDS < deadline)); do
    status=$(aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
      --query Status --output text 2>/dev/null || echo Pending)
    case $status in Pending | InProgress | Delayed) sleep "${SSM_POLL:-10}" ;; *) break ;; esac
  done
  [[ $status == Success ]] || { echo "STRESS=1: burn on $instance ended $status" >&2; return 1; }
}
# STRESS=1: every in-service instance burns its CPU for SECONDS.
stress_instances() {
  local seconds=$1 pids=() failed=0
  for instance in $(in_service_instances "$asg"); do
    ssm_burn "$instance" "$seconds" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return "$failed"
}
scale_demo aws "$(tf_output "$TF_DIR" rest_url)" "$(tf_output "$TF_DIR" target_requests_per_instance_per_second)" \
  "$(tf_output "$TF_DIR" min_size)" "$(tf_output "$TF_DIR" max_size)" dynamodb count
