#!/usr/bin/env bash
# The scaling-group rehearsal (`candidates-rehearsal run`) with everything it needs: HAProxy from
# Debian (installed if missing; the distribution's own service is stopped so that nothing else
# listens), the release binaries, and a shared store emulator of its own (started with the
# functions of scripts/emulators.sh, stopped on exit).
#
#   scripts/fleet.sh                      # all scenarios, time factor 0.1 (about 4 minutes)
#   scripts/fleet.sh --short              # what scripts/test.sh runs: factor 0.05, all scenarios,
#                                         # then SIGKILL again with HAProxy retries; about 2 minutes
#   scripts/fleet.sh --store moto -- --scenarios kill --retries
#
# Everything after `--` goes to `candidates-rehearsal run` (see `candidates-rehearsal run --help`).
# CANDIDATE_SERVER and CANDIDATES_REHEARSAL name prebuilt binaries (both given: no build).
# Output: fleet-out/ (or FLEET_OUT): timeline.json, chart.svg, logs/. Exit 1 when a bar fails.
set -euo pipefail
cd "$(dirname "$0")/.."

store=dynamodb-local
short=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --store) store=$2; shift 2 ;;
    --short) short=1; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--store dynamodb-local|moto] [--short] [-- candidates-rehearsal run flags]" >&2; exit 2 ;;
  esac
done

log() { printf '\n==> %s\n' "$*"; }
export NO_PROXY='127.0.0.1,localhost' no_proxy='127.0.0.1,localhost'
export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=fleet AWS_SECRET_ACCESS_KEY=fleet AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB || true

if ! command -v haproxy >/dev/null; then
  log "installing haproxy (Debian)"
  apt-get update -qq
  apt-get install -y -qq haproxy >/dev/null
fi
# The package starts its own service; the rehearsal runs its own HAProxy and nothing else may.
if command -v systemctl >/dev/null && systemctl is-active --quiet haproxy 2>/dev/null; then
  systemctl disable --now haproxy
elif [[ -f /run/haproxy.pid ]] && kill -0 "$(cat /run/haproxy.pid)" 2>/dev/null; then
  /etc/init.d/haproxy stop
fi
haproxy -v | sed -n 1p

# Loopback aliases need no setup on Linux: the whole of 127.0.0.0/8 is local.
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.11", 0))' ||
  { echo "cannot bind 127.0.0.11: loopback aliases are needed" >&2; exit 1; }

bin=${CARGO_TARGET_DIR:-target}/release
server=${CANDIDATE_SERVER:-$bin/candidate-server}
rehearsal=${CANDIDATES_REHEARSAL:-$bin/candidates-rehearsal}
if [[ -z "${CANDIDATE_SERVER:-}" || -z "${CANDIDATES_REHEARSAL:-}" ]]; then
  log "release build (candidate-server, candidates-rehearsal)"
  cargo build --release --locked -p candidates-server --bin candidate-server -p candidates-rehearsal --bin candidates-rehearsal
fi

log "store: $store (127.0.0.1)"
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh
store_pid=
# A store left stopped (SIGSTOP) would ignore the SIGTERM of stop_emulators: continue it first.
trap '[[ -n $store_pid ]] && kill -CONT "$store_pid" 2>/dev/null; stop_emulators' EXIT
case $store in
  dynamodb-local) start_dynamodb_local; endpoint=$CANDIDATES_TEST_DYNAMODB_LOCAL_URL ;;
  moto) start_moto; endpoint=$CANDIDATES_TEST_MOTO_URL ;;
  *) echo "unknown --store $store (dynamodb-local, moto)" >&2; exit 2 ;;
esac
store_pid=${EMULATOR_PIDS[-1]}
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'boto3>=1.34,<2'
python3 - "$endpoint" <<'PY'
import sys, boto3
db = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1")
db.create_table(TableName="Candidates", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "CandidateName", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "CandidateName", "KeyType": "HASH"}])
db.get_waiter("table_exists").wait(TableName="Candidates")
PY

out=${FLEET_OUT:-fleet-out}
args=(--server-bin "$server" --store-endpoint "$endpoint" --store-pid "$store_pid")
if [[ $short -eq 1 ]]; then
  args+=(--time-factor 0.05 --stall 3s)
fi
status=0
log "candidates-rehearsal run ${args[*]} --out $out $*"
"$rehearsal" run "${args[@]}" --out "$out" "$@" || status=$?
if [[ $short -eq 1 ]]; then
  # The retries bar (0 failed GETs when HAProxy may retry them elsewhere) needs its own HAProxy
  # configuration: a second, kill-only run on the same store.
  log "candidates-rehearsal run ${args[*]} --out $out/retries --scenarios kill --retries"
  "$rehearsal" run "${args[@]}" --out "$out/retries" --scenarios kill --retries || status=$?
fi
exit "$status"
