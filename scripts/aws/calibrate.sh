#!/usr/bin/env bash
# Calibration: measures one instance's CPU cost per request under the scale demo's operation mix
# (candidatectl load on the instance against itself, through SSM Run Command) and writes the
# per-instance target that follows from it to terraform/aws/calibration.auto.tfvars.json
# (docs/scaling.md). Env: CAL_SECONDS (60), CAL_RATE, CAL_BASELINE (scripts/deploy/lib.sh, calibrate).
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

check_aws
asg=$(tf_output "$TF_DIR" asg_name)
instance=$(in_service_instances "$asg" | head -n 1)
[[ -n $instance ]] || die "no InService instance in $asg"
echo "calibrating on $instance"
# The instance type: a burstable one (t3) caps the target at its baseline CPU share.
type=$(aws autoscaling describe-auto-scaling-instances --instance-ids "$instance" \
  --query 'AutoScalingInstances[0].InstanceType' --output text)
calibrate aws dynamodb "$(tf_output "$TF_DIR" max_size)" "$type" ssm_run "$instance"
