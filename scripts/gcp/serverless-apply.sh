#!/usr/bin/env bash
# Builds the image, applies terraform/serverless/gcp in two steps (the Artifact Registry repository
# first, since the service needs an image in it; then everything else with the pushed image by
# digest), then validates the service.
#   scripts/gcp/serverless-apply.sh                # asks before terraform applies
#   AUTO_APPROVE=1 scripts/gcp/serverless-apply.sh
# Needs crane or skopeo to push (scripts/gcp/serverless-env.sh, push_image). Env: GCP_REGION
# (default us-central1), GOOGLE_CLOUD_PROJECT, SERVICE_NAME (default $STACK-run), SKIP_BUILD=1 to
# push the layout already in IMAGE_DIR, IMAGE_TAG, TF_EXTRA_ARGS for more terraform flags
# (e.g. "-var max_instances=20").
set -euo pipefail
# shellcheck source=scripts/gcp/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_gcp_serverless
if [[ -z ${SKIP_BUILD:-} ]]; then
  "$(dirname "$0")/serverless-build.sh"
fi
[[ -f $IMAGE_DIR/index.json ]] || die "no image layout in $IMAGE_DIR: run scripts/gcp/serverless-build.sh"

# Terraform enables the APIs it uses, but enabling and the project's IAM policy go through these
# two, which a fresh project may not have on (as scripts/gcp/apply.sh does).
gcloud services enable cloudresourcemanager.googleapis.com serviceusage.googleapis.com --project "$PROJECT"
tf_init "$SLS_DIR"
log "terraform apply, step 1: the APIs and the image repository (terraform/$SLS_DIR, $REGION)"
tf "$SLS_DIR" apply -input=false "${SLS_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} \
  -target=google_project_service.apis -target=google_artifact_registry_repository.images
repository=$(tf_output "$SLS_DIR" repository_url)
# Tags are immutable in the repository (registry.tf): the tag names the image's own digest too, so
# a rebuild from a changed tree at the same commit gets a new tag instead of a refused push.
digest=$(image_digest "$IMAGE_DIR")
tag=${IMAGE_TAG:-$(git -C "$ROOT" rev-parse --short=12 HEAD)-${digest:7:12}}
log "pushing the image to $repository/candidates:$tag"
# A failed push must stop here, not at Cloud Run with "image not found": push_image runs in a
# command substitution, where set -e alone does not stop it.
image=$(push_image "$IMAGE_DIR" "$repository" "$tag") || die "pushing the image failed"
[[ $image == "$repository/candidates@sha256:"* ]] || die "pushing the image failed: '$image'"

log "terraform apply, step 2: the service ($image)"
# shellcheck disable=SC2086 # TF_EXTRA_ARGS is a list of flags
tf "$SLS_DIR" apply -input=false "${SLS_VARS[@]}" -var "image=$image" ${AUTO_APPROVE:+-auto-approve} ${TF_EXTRA_ARGS:-}

"$(dirname "$0")/serverless-validate.sh"
