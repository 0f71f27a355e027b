# Settings shared by scripts/gcp/serverless-*.sh (the Cloud Run deployment,
# terraform/serverless/gcp). Source it.
# shellcheck shell=bash
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# shellcheck disable=SC2034 # used by the scripts that source this file
SLS_DIR=serverless/gcp
# The OCI image layout serverless/cloud-run/build-image.py writes.
IMAGE_DIR=${IMAGE_DIR:-$ROOT/target/cloud-run/image}
SERVICE_NAME=${SERVICE_NAME:-$STACK-run}

# check_gcp_serverless: check_gcp (project, Application Default Credentials), then the root's
# variables in SLS_VARS.
check_gcp_serverless() {
  check_gcp
  # shellcheck disable=SC2034
  SLS_VARS=(-var "project_id=$PROJECT" -var "region=$REGION" -var "name=$SERVICE_NAME")
}

# image_digest DIR: the manifest digest of the OCI layout's one image (index.json), which the
# registry keeps when the layout is pushed as is (crane push, skopeo copy --preserve-digests).
image_digest() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1] + "/index.json"))["manifests"][0]["digest"])' "$1"
}

# push_image DIR REPOSITORY TAG: pushes the OCI layout to REPOSITORY/candidates:TAG with crane or
# skopeo (whichever is installed; neither needs a Docker daemon), logged in to Artifact Registry
# with a short-lived access token from gcloud, passed on standard input, never on a command line.
# Prints the image by digest: REPOSITORY/candidates@sha256:....
push_image() {
  local dir=$1 repository=$2 tag=$3 host digest
  host=${repository%%/*}
  digest=$(image_digest "$dir")
  # Each step returns on failure: in a command substitution set -e does not stop the function.
  if command -v crane >/dev/null; then
    gcloud auth print-access-token | crane auth login "$host" -u oauth2accesstoken --password-stdin >&2 || return 1
    crane push "$dir" "$repository/candidates:$tag" >&2 || return 1
  elif command -v skopeo >/dev/null; then
    gcloud auth print-access-token | skopeo login "$host" -u oauth2accesstoken --password-stdin >&2 || return 1
    skopeo copy --preserve-digests "oci:$dir" "docker://$repository/candidates:$tag" >&2 || return 1
  else
    die "no crane or skopeo to push the image (the image is an OCI layout, built without Docker):" \
      "install one (crane: go install github.com/google/go-containerregistry/cmd/crane@latest; skopeo: apt-get install skopeo)"
  fi
  echo "$repository/candidates@$digest"
}
