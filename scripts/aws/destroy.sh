#!/usr/bin/env bash
# Destroys the stack, then deregisters this stack's AMIs (tags application=candidates and
# stack=$STACK, owned by this account, in AWS_REGION) and deletes their snapshots; other stacks'
# images stay.
#   AUTO_APPROVE=1 scripts/aws/destroy.sh
set -euo pipefail
# shellcheck source=scripts/aws/env.sh
source "$(dirname "$0")/env.sh"

check_aws
log "terraform destroy (terraform/aws, region $AWS_REGION)"
tf_init "$TF_DIR"
tf "$TF_DIR" destroy -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}

log "deregistering AMIs named ${IMAGE_PREFIX:-candidates}-* tagged application=candidates, stack=$STACK"
# shellcheck disable=SC2016 # JMESPath literals in backticks, not shell
aws ec2 describe-images --owners self \
  --filters "Name=tag:application,Values=candidates" "Name=tag:stack,Values=$STACK" \
  "Name=name,Values=${IMAGE_PREFIX:-candidates}-*" \
  --query 'Images[].[ImageId, join(`,`, BlockDeviceMappings[].Ebs.SnapshotId)]' --output text |
  while read -r ami snapshots; do
    [[ -n $ami ]] || continue
    echo "deregister $ami (snapshots: $snapshots)"
    aws ec2 deregister-image --image-id "$ami"
    for snapshot in ${snapshots//,/ }; do aws ec2 delete-snapshot --snapshot-id "$snapshot"; done
  done

# The manifest must not point the next apply at a deleted AMI.
forget_images amazon-ebs
