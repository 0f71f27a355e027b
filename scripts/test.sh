#!/usr/bin/env bash
# The whole test suite, from a fresh machine: checks the toolchain, installs and starts whatever the
# tests need on 127.0.0.1 (stopped again on exit), then runs formatting, lints and every test.
#
#   scripts/test.sh            # everything (what CI runs)
#   SKIP_LINT=1 scripts/test.sh   # tests only
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it started (minutes into the run), so a slow CI run shows where its time went.
log() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Tests talk to 127.0.0.1 only: no proxies, no cloud credentials or metadata look-ups.
export NO_PROXY='127.0.0.1,localhost' no_proxy='127.0.0.1,localhost'
export AWS_EC2_METADATA_DISABLED=true
# A test that cannot run here (no emulator, no permission to mount a tmpfs) fails instead of
# printing a skip line: CI never skips silently.
export CANDIDATES_TEST_STRICT=1
unset CANDIDATES_STORE CANDIDATES_INSTANCE_METADATA CANDIDATES_METADATA_URL CANDIDATES_GRPC_UPSTREAM || true

log "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup)" >&2; exit 1; }
cargo --version
rustc --version

if [[ -z "${SKIP_LINT:-}" ]]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # The bench-only build (bench/plumbing.py) must keep compiling too.
  cargo clippy -p candidates-server -p candidates-gateway --features library-plumbing --lib --bins --locked -- -D warnings
fi

log "emulators (127.0.0.1 only)"
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh
# Dummy credentials and a fixed region for every AWS SDK client the tests build.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB || true
trap stop_emulators EXIT
start_moto
start_dynamodb_local
# Firestore: the crate talks to FIRESTORE_EMULATOR_HOST with a stub token, no Google credentials.
unset GOOGLE_CLOUD_PROJECT GOOGLE_APPLICATION_CREDENTIALS || true
start_firestore
# Cosmos DB: never the real IMDS or Entra ID; tests set a key or a fake token endpoint themselves.
unset COSMOS_ENDPOINT CANDIDATES_COSMOS_KEY IDENTITY_ENDPOINT IDENTITY_HEADER MSI_ENDPOINT || true
start_cosmos

log "cargo test (every crate, every test)"
out=$(mktemp)
trap 'rm -f "$out"; stop_emulators' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

log "cargo deny: licenses, bans, sources (offline; the advisory database is not reachable here)"
deny_status=0
DENY_ROOT="$PWD/.ci-cache/cargo-deny"
if [[ ! -x "$DENY_ROOT/bin/cargo-deny" ]]; then
  cargo install --quiet --locked cargo-deny@0.20.2 --root "$DENY_ROOT" || deny_status=$?
fi
if [[ $deny_status -eq 0 ]]; then
  cargo fetch --locked --quiet && "$DENY_ROOT/bin/cargo-deny" --offline check licenses bans sources || deny_status=$?
fi
if [[ $deny_status -eq 0 ]]; then echo "cargo deny: passed"; else echo "cargo deny: FAILED"; fi

log "schemathesis: the REST API against its own OpenAPI document"
fuzz_status=0
scripts/schemathesis.sh || fuzz_status=$?
if [[ $fuzz_status -eq 0 ]]; then echo "schemathesis: passed"; else echo "schemathesis: FAILED"; fi

log "machine image checks (offline: release build, packer, systemd unit, provisioning, shellcheck)"
install_tool() { # install_tool COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null && return
  if [[ -z "${apt_updated:-}" ]]; then apt-get update -qq && apt_updated=1; fi
  apt-get install -y -qq "$2" >/dev/null
}
image_status=0
install_tool packer packer && install_tool shellcheck shellcheck &&
  scripts/build-release.sh && packer/scripts/check.sh && packer/scripts/test-provision.sh ||
  image_status=$?
if [[ $image_status -eq 0 ]]; then echo "image checks: passed"; else echo "image checks: FAILED"; fi

log "browser tests (Debian's chromium, headless, driven by playwright-core: CORS, gRPC-Web, the API explorer; 127.0.0.1 only)"
browser_status=0
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm not found: the browser tests need Node.js 20 or later" >&2
  browser_status=1
else
  # playwright-core drives the chromium installed here and downloads no browser of its own.
  install_tool chromium chromium &&
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund --loglevel=error) &&
    BIN=target/debug/candidate-server timeout 150 node tests/browser/run.mjs ||
    browser_status=$?
fi
if [[ $browser_status -eq 0 ]]; then echo "browser tests: passed"; else echo "browser tests: FAILED (target/browser-artifacts/)"; fi

log "fleet rehearsal, short (HAProxy, candidate-server instances on loopback, DynamoDB Local; a failed bar fails the run)"
fleet_status=0
FLEET_OUT=.ci-cache/fleet scripts/fleet.sh --short || fleet_status=$?
if [[ $fleet_status -eq 0 ]]; then echo "fleet rehearsal: passed"; else echo "fleet rehearsal: FAILED (.ci-cache/fleet/)"; fi

log "terraform checks (offline: fmt, checkov, provider schemas, the instance-config module, drain scripts, scale-demo arithmetic and calibration)"
tf_status=0
terraform/check.sh || tf_status=$?
if [[ $tf_status -eq 0 ]]; then echo "terraform checks: passed"; else echo "terraform checks: FAILED"; fi

# One closing line for the whole run (cargo prints one per test binary, the last often a doc-test
# binary with nothing in it).
echo
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$out"
echo "whole run: $((SECONDS / 60)) min $((SECONDS % 60)) s"
[[ $status -eq 0 ]] || exit "$status"
[[ $deny_status -eq 0 ]] || exit "$deny_status"
[[ $fuzz_status -eq 0 ]] || exit "$fuzz_status"
[[ $image_status -eq 0 ]] || exit "$image_status"
[[ $browser_status -eq 0 ]] || exit "$browser_status"
[[ $fleet_status -eq 0 ]] || exit "$fleet_status"
exit "$tf_status"
