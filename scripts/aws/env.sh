# AWS settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
# shellcheck source=scripts/deploy/state.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/state.sh"

export AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-2}}
# shellcheck disable=SC2034 # used by the scripts that source this file
TF_DIR=aws
# shellcheck disable=SC2034
TF_VARS=(-var "region=$AWS_REGION" -var "name=$STACK")

check_aws() {
  require_tools aws terraform
  aws sts get-caller-identity --query Arn --output text >/dev/null ||
    die "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (aws sts get-caller-identity failed)"
}

# ssm_run INSTANCE_ID: runs stdin as a shell script as root on the instance (SSM Run Command,
# AWS-RunShellScript), waits for it (at most 15 minutes) and prints its output.
ssm_run() {
  local instance=$1 b64 id status
  b64=$(base64 -w0)
  id=$(aws ssm send-command --instance-ids "$instance" --document-name AWS-RunShellScript \
    --comment "candidates deploy script" --timeout-seconds 900 \
    --parameters "{\"commands\":[\"echo $b64 | base64 -d | bash\"],\"executionTimeout\":[\"900\"]}" \
    --query Command.CommandId --output text)
  for _ in $(seq 1 180); do
    status=$(aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
      --query Status --output text 2>/dev/null || echo Pending)
    case $status in Pending | InProgress | Delayed) sleep 5 ;; *) break ;; esac
  done
  aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
    --query StandardOutputContent --output text
  aws ssm get-command-invocation --command-id "$id" --instance-id "$instance" \
    --query StandardErrorContent --output text >&2
  [[ $status == Success ]]
}

# in_service_instances ASG: the InService instance ids, one per line.
in_service_instances() {
  # shellcheck disable=SC2016 # JMESPath literals in backticks, not shell
  aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$1" \
    --query 'AutoScalingGroups[0].Instances[?LifecycleState==`InService`].InstanceId' --output text | tr '\t' '\n'
}
