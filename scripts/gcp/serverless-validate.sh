#!/usr/bin/env bash
# Waits (bounded) until the service answers /gtg, then runs `candidatectl check` against it: REST
# and gRPC on the same https:// URL (Cloud Run carries HTTP/2 end to end to the container, which
# serves both on one port), with the deployment's write key (Terraform's output write_key, in
# CANDIDATES_API_KEY: the check writes), and checks that a write without a key is refused. The
# service is HTTPS only, so the key never travels in the clear.
# Env: HEALTH_TIMEOUT (default 300 s: the first request is a cold start), SKIP_GRPC=1.
set -euo pipefail
# shellcheck source=scripts/gcp/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_gcp_serverless
use_write_key "$SLS_DIR"
url=$(tf_output "$SLS_DIR" service_url)
url=${url%/}
warn_key_in_clear "$url" # https://: nothing to warn about

wait_for "${HEALTH_TIMEOUT:-300}" "$url/gtg answers" rest_answers "$url"
log "details: $url/gtg?details=true"
http_retry "$url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo

build_client
if [[ -n ${SKIP_GRPC:-} ]]; then
  log "contract check: REST $url (SKIP_GRPC)"
  "$CANDIDATECTL" check --rest-target "$url" --skip-grpc
else
  log "contract check: REST and gRPC on $url (one port, HTTP/2 end to end)"
  "$CANDIDATECTL" check --rest-target "$url" --grpc-target "$url"
fi
anonymous_writes_refused "$url"
