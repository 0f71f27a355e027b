#!/usr/bin/env bash
# Builds the Cloud Run image: candidate-server (release profile) in the minimal OCI image of
# serverless/cloud-run/build-image.py (no Docker daemon), as an OCI layout in target/cloud-run/image.
# With PUSH_TO=<region>-docker.pkg.dev/<project>/<repository> (terraform/serverless/gcp's output
# repository_url) it also pushes it there with crane or skopeo and prints the image by digest.
#   scripts/gcp/serverless-build.sh
#   PUSH_TO=us-central1-docker.pkg.dev/my-project/candidates-run scripts/gcp/serverless-build.sh
# Env: IMAGE_DIR (the layout), IMAGE_TAG (default: the git commit), SKIP_CARGO=1 to package a
# binary already built.
set -euo pipefail
# shellcheck source=scripts/gcp/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

require_tools cargo python3 ldd
# Cloud Run runs linux/amd64 images only (the container runtime contract); the image is this
# machine's binary.
[[ $(uname -m) == x86_64 ]] || die "Cloud Run runs x86_64 (amd64) images: build on an x86_64 Linux machine (this is $(uname -m))"
target=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${SKIP_CARGO:-} ]]; then
  log "release build of candidate-server"
  (cd "$ROOT" && cargo build --release --locked -p candidates-server --bin candidate-server)
fi
tag=${IMAGE_TAG:-$(git -C "$ROOT" rev-parse --short=12 HEAD)}
log "OCI image layout $IMAGE_DIR (serverless/cloud-run/build-image.py)"
python3 "$ROOT/serverless/cloud-run/build-image.py" --binary "$target/release/candidate-server" \
  --output "$IMAGE_DIR" --tag "$tag"
echo "$IMAGE_DIR: $(image_digest "$IMAGE_DIR")"

if [[ -n ${PUSH_TO:-} ]]; then
  log "pushing to $PUSH_TO/candidates:$tag"
  push_image "$IMAGE_DIR" "$PUSH_TO" "$tag"
fi
