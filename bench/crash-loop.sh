#!/usr/bin/env bash
# The crash loop, long version: 20 rounds of write load on the embedded store, SIGKILL at a random
# moment, restart, verify every acknowledged write (the test suite runs 3 rounds). Prints one line
# per round and a total; fails if any acknowledged write is lost.
#
#   bench/crash-loop.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CANDIDATES_CRASH_ROUNDS="${1:-20}"
exec cargo test --release --locked -p candidates-server --test durability -- --nocapture
