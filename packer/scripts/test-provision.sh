#!/usr/bin/env bash
# Tests the image's provisioning without a cloud: runs provision.sh against a throwaway root,
# checks the files, modes and unit it installs, then starts the installed release binary with the
# image's default environment file (listeners moved to 127.0.0.1 and free ports) and checks that
# both listeners answer, with the installed candidatectl's contract check among others. Needs
# dist/candidate-server and dist/candidatectl (scripts/build-release.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
for bin in candidate-server candidatectl; do
  [[ -x dist/$bin ]] || { echo "dist/$bin missing: run scripts/build-release.sh" >&2; exit 1; }
done

fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/src" "$work/root"
cp dist/candidate-server dist/candidatectl packer/files/candidates.service packer/files/candidates.env.example "$work/src/"
out=$(SRC="$work/src" ROOT="$work/root" packer/scripts/provision.sh)
echo "$out"

check_mode() {
  local path=$1 want=$2 got
  [[ -e "$work/root$path" ]] || fail "$path was not installed"
  got=$(stat -c %a "$work/root$path")
  [[ "$got" == "$want" ]] || fail "$path has mode $got, want $want"
  echo "ok: $path $got"
}
check_mode /usr/local/bin/candidate-server 755
check_mode /usr/local/bin/candidatectl 755
check_mode /etc/systemd/system/candidates.service 644
check_mode /etc/candidates 750
check_mode /etc/candidates/candidates.env 640
cmp -s packer/files/candidates.service "$work/root/etc/systemd/system/candidates.service" || fail "unit differs"
grep -q 'would run: useradd --system' <<<"$out" || fail "no system user created"
grep -q 'would run: systemctl enable candidates.service' <<<"$out" || fail "unit not enabled"
for key in Type=notify User=candidates StateDirectory=candidates Restart=always NoNewPrivileges=yes \
  ProtectSystem=strict ProtectHome=yes PrivateTmp=yes CapabilityBoundingSet= TimeoutStopSec=60; do
  grep -qx "$key" "$work/root/etc/systemd/system/candidates.service" || fail "unit lacks $key"
done
echo "ok: unit has user, state directory, readiness, restart and hardening settings"

# Run it the way systemd would: the unit's Environment= defaults, then the env file.
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(port)
grpc_port=$(port)
(
  set -a
  # shellcheck disable=SC1091
  source "$work/root/etc/candidates/candidates.env"
  set +a
  export CANDIDATES_DATA_DIR="$work/state" CANDIDATES_LOG_FORMAT=json CANDIDATES_DRAIN_PERIOD=0s
  export CANDIDATES_HTTP_ADDR="127.0.0.1:$http_port" CANDIDATES_GRPC_ADDR="127.0.0.1:$grpc_port"
  exec "$work/root/usr/local/bin/candidate-server"
) >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$http_port/gtg" >/dev/null && break
  sleep 0.05
done
curl -sf "http://127.0.0.1:$http_port/gtg" >/dev/null || { cat "$work/server.log"; fail "REST listener did not answer"; }
body=$(curl -sf -X POST "http://127.0.0.1:$http_port/candidate/Image%20Check")
[[ "$body" == '{"CandidateName":"Image Check"}' ]] || fail "REST answered $body"
# gRPC: the health service over h2c, framed by hand (a zero-length HealthCheckRequest).
printf '\x00\x00\x00\x00\x00' >"$work/req.bin"
status=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' -H 'content-type: application/grpc' \
  -H 'te: trailers' --data-binary @"$work/req.bin" "http://127.0.0.1:$grpc_port/grpc.health.v1.Health/Check")
[[ "$status" == 200 ]] || fail "gRPC listener answered HTTP $status"
grep -q '"message":"listening"' "$work/server.log" || fail "no JSON log line"
# The installed client, as the deploy scripts run it on an instance: the whole contract, both APIs.
"$work/root/usr/local/bin/candidatectl" check --rest-target "http://127.0.0.1:$http_port" \
  --grpc-target "http://127.0.0.1:$grpc_port" >"$work/check.log" 2>&1 || { cat "$work/check.log"; fail "candidatectl check failed"; }
echo "ok: the installed candidatectl's contract check passes ($(tail -n 1 "$work/check.log"))"
echo "ok: the installed binary serves REST and gRPC with the image's environment file"
kill -TERM "$pid"
wait "$pid" || fail "the server did not exit 0 after SIGTERM"
pid=""
echo "ok: clean shutdown"
