#!/usr/bin/env bash
# Builds the function app's package: serverless/azure-functions/app (host.json, api/function.json)
# and `handler` (the candidates-functions crate, release profile) at the root of
# dist/azure-functions/app.zip, the layout Azure Functions custom handlers expect (host.json's
# customHandler.description.defaultExecutablePath names `handler`).
#   scripts/azure/serverless-build.sh
# Flex Consumption runs Linux x86_64; this builds for this machine, so run it on x86_64 Linux.
# Env: FUNCTIONS_ZIP (the output), MAX_GLIBC (fail when the binary needs a newer glibc than this;
# unset: only reported, since the glibc of Flex Consumption's image was not checked here).
set -euo pipefail
# shellcheck source=scripts/azure/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

require_tools cargo zip objdump
[[ $(uname -m) == x86_64 ]] || die "Flex Consumption runs x86_64: build on an x86_64 Linux machine (this is $(uname -m))"

target=${CARGO_TARGET_DIR:-$ROOT/target}
log "release build of handler (candidates-functions)"
(cd "$ROOT" && cargo build --release --locked -p candidates-functions --bin handler)
binary=$target/release/handler

# The newest glibc symbol version the binary needs.
needed=$(objdump -T "$binary" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
if [[ -n ${MAX_GLIBC:-} && "$(printf '%s\n%s\n' "$needed" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]]; then
  die "handler needs glibc $needed, more than MAX_GLIBC=$MAX_GLIBC: build on an older glibc"
fi

mkdir -p "$(dirname "$FUNCTIONS_ZIP")"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$ROOT/serverless/azure-functions/app/." "$stage/"
cp "$binary" "$stage/handler"
chmod 755 "$stage/handler"
rm -f "$FUNCTIONS_ZIP"
# -X: no extra file attributes; the mode stays (the host runs handler as an executable).
(cd "$stage" && zip -q -X -r "$FUNCTIONS_ZIP" host.json api handler)
echo "$FUNCTIONS_ZIP: host.json, api/function.json, handler (glibc >= $needed needed), $(du -h "$FUNCTIONS_ZIP" | cut -f1)"
