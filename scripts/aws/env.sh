# AWS settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

export AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-2}}
# shellcheck disable=SC2034 # used by the scripts that source this file
TF_DIR=aws
# shellcheck disable=SC2034
TF_VARS=(-var "region=$AWS_REGION")

check_aws() {
  require_tools aws terraform
  aws sts get-caller-identity --query Arn --output text >/dev/null ||
    die "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (aws sts get-caller-identity failed)"
}
