#!/usr/bin/env bash
# Builds the Lambda package: `bootstrap` (serverless/lambda, release profile) at the root of
# dist/lambda/bootstrap-<arch>.zip, for provided.al2023 (glibc 2.34: the binary may need no newer
# glibc symbol, checked after the build as scripts/build-release.sh does for the images).
#   scripts/aws/serverless-build.sh                  # LAMBDA_ARCH=arm64 (the root's default)
#   LAMBDA_ARCH=x86_64 scripts/aws/serverless-build.sh
# arm64 on an x86_64 host is a cross build: it needs `rustup target add aarch64-unknown-linux-gnu`
# and an aarch64 linker (Debian/Ubuntu: gcc-aarch64-linux-gnu); without them this says so and
# stops. Env: MAX_GLIBC (default 2.34, Amazon Linux 2023's).
set -euo pipefail
# shellcheck source=scripts/aws/serverless-env.sh
source "$(dirname "$0")/serverless-env.sh"

require_tools cargo zip objdump
MAX_GLIBC=${MAX_GLIBC:-2.34}
case $LAMBDA_ARCH in
  arm64) triple=aarch64-unknown-linux-gnu machine=aarch64 ;;
  x86_64) triple=x86_64-unknown-linux-gnu machine=x86_64 ;;
  *) die "LAMBDA_ARCH is arm64 or x86_64, not $LAMBDA_ARCH" ;;
esac

target=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ $(uname -m) == "$machine" ]]; then
  log "release build of bootstrap ($LAMBDA_ARCH, this machine's architecture)"
  (cd "$ROOT" && cargo build --release --locked -p candidates-lambda --bin bootstrap)
  binary=$target/release/bootstrap
else
  rustup target list --installed 2>/dev/null | grep -qx "$triple" ||
    die "cross build to $LAMBDA_ARCH: run \`rustup target add $triple\` (or LAMBDA_ARCH=$(uname -m | sed 's/aarch64/arm64/'))"
  linker=${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER:-aarch64-linux-gnu-gcc}
  [[ $triple != aarch64-* ]] || command -v "$linker" >/dev/null ||
    die "cross build to $LAMBDA_ARCH: no linker $linker (apt-get install gcc-aarch64-linux-gnu), or LAMBDA_ARCH=$(uname -m | sed 's/aarch64/arm64/')"
  log "release build of bootstrap ($LAMBDA_ARCH, cross: $triple)"
  (cd "$ROOT" && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$linker \
    cargo build --release --locked -p candidates-lambda --bin bootstrap --target "$triple")
  binary=$target/$triple/release/bootstrap
fi

# The newest glibc symbol version the binary needs, against the runtime's.
needed=$(objdump -T "$binary" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
if [[ "$(printf '%s\n%s\n' "$needed" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]]; then
  die "bootstrap needs glibc $needed, provided.al2023 has $MAX_GLIBC: build on an older glibc (e.g. an Amazon Linux 2023 container)"
fi

mkdir -p "$(dirname "$LAMBDA_ZIP")"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/bootstrap"
chmod 755 "$stage/bootstrap"
rm -f "$LAMBDA_ZIP"
# -X: no extra file attributes; the mode stays (Lambda runs bootstrap as an executable).
(cd "$stage" && zip -q -X "$LAMBDA_ZIP" bootstrap)
echo "$LAMBDA_ZIP: bootstrap ($LAMBDA_ARCH, glibc >= $needed needed), $(du -h "$LAMBDA_ZIP" | cut -f1)"
