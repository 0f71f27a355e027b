#!/usr/bin/env bash
# Waits (bounded) until the function app answers /gtg, then runs `candidatectl check` (REST; the
# Functions host forwards HTTP requests to the custom handler, and serves no gRPC) against it with
# the deployment's write key (Terraform's output write_key, in CANDIDATES_API_KEY: the check
# writes), and checks that a write without a key is refused. The app is HTTPS only, so the key
# never travels in the clear.
# Env: HEALTH_TIMEOUT (default 300 s: the first request after a deploy starts an instance).
set -euo pipefail
# shellcheck source=scripts/azure/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_azure
use_write_key "$SLS_DIR"
url=$(tf_output "$SLS_DIR" function_url)
url=${url%/}
warn_key_in_clear "$url" # https://: nothing to warn about

wait_for "${HEALTH_TIMEOUT:-300}" "$url/gtg answers" rest_answers "$url"
log "details: $url/gtg?details=true"
http_retry "$url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo

build_client
log "contract check: REST $url (no gRPC through the Functions host)"
"$CANDIDATECTL" check --rest-target "$url" --skip-grpc
anonymous_writes_refused "$url"
