#!/usr/bin/env bash
# Waits (bounded) until the function URL answers /gtg, then runs `candidatectl check` (REST; the
# function serves no gRPC) against it with the deployment's write key (Terraform's output
# write_key, in CANDIDATES_API_KEY: the check writes), and checks that a write without a key is
# refused. Function URLs are HTTPS, so the key never travels in the clear.
# Env: HEALTH_TIMEOUT (default 120 s: the first request is a cold start).
set -euo pipefail
# shellcheck source=scripts/aws/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

check_aws
use_write_key "$SLS_DIR"
url=$(tf_output "$SLS_DIR" function_url)
url=${url%/} # AWS returns https://<id>.lambda-url.<region>.on.aws/
warn_key_in_clear "$url" # Function URLs are https://: nothing to warn about

wait_for "${HEALTH_TIMEOUT:-120}" "$url/gtg answers" rest_answers "$url"
log "details: $url/gtg?details=true"
http_retry "$url/gtg?details=true" --fail-with-body || echo "(no details after the retries; the contract check below decides)" >&2
echo

build_client
log "contract check: REST $url (no gRPC on Lambda)"
"$CANDIDATECTL" check --rest-target "$url" --skip-grpc
anonymous_writes_refused "$url"
