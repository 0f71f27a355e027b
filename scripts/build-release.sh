#!/usr/bin/env bash
# Reproducible release build of the binaries the machine image ships: locked dependencies, the
# release profile (stripped, thin LTO), copied to dist/ (candidate-server, the service, and
# candidatectl, the client operators and the deploy scripts' checks run on an instance). Prints
# their size and the newest glibc symbol version they need, and fails if that is newer than the
# image's glibc.
#
# The build host must be Linux on x86_64 (the images are x86_64 Ubuntu 24.04: t3, B-series and e2
# instances), with a glibc whose symbols the binaries pick up no newer than the image's: this
# script checks the host before building and the binaries after (docs/image.md, "Build host").
# It does not cross-compile.
#
#   scripts/build-release.sh        # MAX_GLIBC=2.39 (Ubuntu 24.04, the image's base)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_GLIBC=${MAX_GLIBC:-2.39}

host_os=$(uname -s)
host_arch=$(uname -m)
if [[ $host_os != Linux || $host_arch != x86_64 ]]; then
  echo "build host is $host_os $host_arch: the image needs Linux x86_64 binaries (glibc <= $MAX_GLIBC);" \
    "build on Linux x86_64 (e.g. an Ubuntu 24.04 machine or container)" >&2
  exit 1
fi
command -v objdump >/dev/null || { echo "objdump (binutils) is needed to check the binaries' glibc floor" >&2; exit 1; }
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }') || host_glibc=""
if [[ -z $host_glibc ]]; then
  echo "build host has no glibc (getconf GNU_LIBC_VERSION): the image runs glibc binaries" >&2
  exit 1
fi
if [[ "$(printf '%s\n%s\n' "$host_glibc" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]]; then
  # Not fatal by itself: a binary needs only the versions of the symbols it uses. The check after
  # the build decides.
  echo "note: host glibc $host_glibc is newer than the image's $MAX_GLIBC; the binaries are checked after the build" >&2
fi

cargo build --release --locked -p candidates-server --bin candidate-server -p candidates-clients --bin candidatectl
mkdir -p dist
# Where cargo put them: CI and developers may set CARGO_TARGET_DIR.
target=${CARGO_TARGET_DIR:-target}
for bin in candidate-server candidatectl; do
  install -m 0755 "$target/release/$bin" "dist/$bin"
  objdump -f "dist/$bin" | grep -q 'file format elf64-x86-64' ||
    { echo "dist/$bin is not an x86_64 ELF binary ($(objdump -f "dist/$bin" | grep -o 'file format .*'))" >&2; exit 1; }
  floor=$(objdump -T "dist/$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  [[ -n $floor ]] || { echo "dist/$bin links no glibc symbol: not the dynamic glibc build the image expects" >&2; exit 1; }
  size=$(stat -c %s "dist/$bin")
  echo "dist/$bin: $((size / 1024 / 1024)) MiB ($size bytes), needs glibc >= $floor, sha256 $(sha256sum "dist/$bin" | cut -c1-16)..."
  if [[ "$(printf '%s\n%s\n' "$floor" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]]; then
    echo "dist/$bin needs glibc $floor, newer than the image's $MAX_GLIBC" >&2
    exit 1
  fi
done
