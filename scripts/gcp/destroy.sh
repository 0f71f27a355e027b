#!/usr/bin/env bash
# Destroys the stack (the Firestore database included), then deletes this stack's images: those of
# the image family Packer publishes to (IMAGE_FAMILY, default candidates) labelled stack=$STACK;
# other stacks' images stay.
#   AUTO_APPROVE=1 scripts/gcp/destroy.sh
set -euo pipefail
# shellcheck source=scripts/gcp/env.sh
source "$(dirname "$0")/env.sh"

check_gcp
log "terraform destroy (terraform/gcp, project $PROJECT)"
tf_init "$TF_DIR"
tf "$TF_DIR" destroy -input=false "${TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve}

family=${IMAGE_FAMILY:-candidates}
log "deleting the images of family $family labelled stack=$STACK"
for image in $(gcloud compute images list --project "$PROJECT" --no-standard-images \
  --filter="family=$family AND labels.stack=$STACK" --format='value(name)'); do
  echo "delete $image"
  gcloud compute images delete "$image" --project "$PROJECT" --quiet
done
forget_images googlecompute
