# GCP settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"

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
  TF_VARS=(-var "project_id=$PROJECT" -var "region=$REGION")
}
