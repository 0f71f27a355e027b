# GCP settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
# shellcheck source=scripts/deploy/state.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/state.sh"

REGION=${GCP_REGION:-us-central1}
# shellcheck disable=SC2034 # used by the scripts that source this file
TF_DIR=gcp

# Application Default Credentials only (gcloud auth application-default login, or an attached
# service account): no key file, unlike the original's credentials.json.
check_gcp() {
  require_tools gcloud terraform
  PROJECT=${GOOGLE_CLOUD_PROJECT:-$(gcloud config get-value project 2>/dev/null)}
  [[ -n $PROJECT ]] || die "no project: set GOOGLE_CLOUD_PROJECT or run gcloud config set project PROJECT"
  gcloud auth application-default print-access-token >/dev/null 2>&1 ||
    die "no Application Default Credentials: run gcloud auth application-default login"
  export GOOGLE_CLOUD_PROJECT=$PROJECT
  # shellcheck disable=SC2034
  TF_VARS=(-var "project_id=$PROJECT" -var "region=$REGION" -var "name=$STACK")
}

# iap_run INSTANCE_URI: runs stdin as a shell script as root on the instance (SSH through IAP with
# OS Login) and prints its output.
iap_run() {
  local zone
  zone=$(sed -E 's|.*/zones/([^/]+)/.*|\1|' <<<"$1")
  gcloud compute ssh "${1##*/}" --zone "$zone" --project "$PROJECT" --tunnel-through-iap --quiet \
    --command "sudo bash -s"
}

# running_instances MIG: the RUNNING instances' URIs, one per line.
running_instances() {
  gcloud compute instance-groups managed list-instances "$1" --region "$REGION" --project "$PROJECT" \
    --filter='status=RUNNING' --format='value(instance)'
}
