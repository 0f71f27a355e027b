#!/usr/bin/env bash
# Reproducible release build of the binaries the machine image ships: locked dependencies, the
# release profile (stripped, thin LTO), copied to dist/ (candidate-server, the service, and
# candidatectl, the client operators and the deploy scripts' checks run on an instance). Prints
# their size and the newest glibc symbol version they need, and fails if that is newer than the
# image's glibc.
#
#   scripts/build-release.sh        # MAX_GLIBC=2.39 (Ubuntu 24.04, the image's base)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_GLIBC=${MAX_GLIBC:-2.39}

cargo build --release --locked -p candidates-server --bin candidate-server -p candidates-clients --bin candidatectl
mkdir -p dist
# Where cargo put them: CI and developers may set CARGO_TARGET_DIR.
target=${CARGO_TARGET_DIR:-target}
for bin in candidate-server candidatectl; do
  install -m 0755 "$target/release/$bin" "dist/$bin"
  floor=$(objdump -T "dist/$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  size=$(stat -c %s "dist/$bin")
  echo "dist/$bin: $((size / 1024 / 1024)) MiB ($size bytes), needs glibc >= $floor, sha256 $(sha256sum "dist/$bin" | cut -c1-16)..."
  if [[ "$(printf '%s\n%s\n' "$floor" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]]; then
    echo "dist/$bin needs glibc $floor, newer than the image's $MAX_GLIBC" >&2
    exit 1
  fi
done
