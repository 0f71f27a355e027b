#!/usr/bin/env bash
# Tests the image's provisioning without a cloud: runs provision.sh against a throwaway root,
# checks the files, modes and unit it installs; checks that the image refuses to serve without the
# deployment's configuration (no env file shipped, the unit's ExecStartPre fails with the reason);
# then writes an env file the way cloud-init does, passes the check, starts the installed release
# binary with it (listeners on 127.0.0.1 and free ports) and checks that both listeners answer,
# with the installed candidatectl's contract check among others. Needs dist/candidate-server and
# dist/candidatectl (scripts/build-release.sh).
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
cp dist/candidate-server dist/candidatectl packer/files/candidates.service packer/files/candidates-check-config \
  packer/files/candidates.env.example "$work/src/"
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
check_mode /usr/local/libexec/candidates-check-config 755
check_mode /etc/candidates/candidates.env.example 644
cmp -s packer/files/candidates.service "$work/root/etc/systemd/system/candidates.service" || fail "unit differs"
grep -q 'would run: useradd --system' <<<"$out" || fail "no system user created"
grep -q 'would run: systemctl enable candidates.service' <<<"$out" || fail "unit not enabled"
for key in Type=notify User=candidates StateDirectory=candidates Restart=always NoNewPrivileges=yes \
  ProtectSystem=strict ProtectHome=yes PrivateTmp=yes CapabilityBoundingSet= TimeoutStopSec=60 \
  StartLimitIntervalSec=0 RestartSteps=10 RestartMaxDelaySec=120; do
  grep -qx "$key" "$work/root/etc/systemd/system/candidates.service" || fail "unit lacks $key"
done
# The unit must never reach a state where systemd stops restarting it: no start limit
# other than "none", and restarts that back off instead.
if grep -E '^StartLimit(IntervalSec|Burst)=' "$work/root/etc/systemd/system/candidates.service" | grep -vqx 'StartLimitIntervalSec=0'; then
  fail "unit has a start limit: systemd would stop restarting it"
fi
echo "ok: unit has user, state directory, readiness, restart (never given up, backing off) and hardening settings"

# Fails closed: the image ships no env file, and the unit's ExecStartPre refuses to start without
# one, saying why (systemd puts its stderr in the journal).
unit=$work/root/etc/systemd/system/candidates.service
env_file=$(sed -n 's|^EnvironmentFile=-\{0,1\}||p' "$unit")
[[ $env_file == /etc/candidates/candidates.env ]] || fail "unit reads $env_file, not cloud-init's /etc/candidates/candidates.env"
[[ ! -e "$work/root$env_file" ]] || fail "the image ships $env_file: an instance without user-data would serve a private store"
pre=$(sed -n 's|^ExecStartPre=||p' "$unit")
[[ $pre == /usr/local/libexec/candidates-check-config ]] || fail "unit has no configuration check (ExecStartPre=$pre)"
grep -q '^After=.*cloud-init\.service.*cloud-init-network\.service' "$unit" || fail "unit not ordered after both cloud-init unit names"
# The unit's own Environment= lines, as systemd passes them to ExecStartPre.
mapfile -t unit_env < <(sed -n 's|^Environment=||p' "$unit")
set +e
reason=$(env -i PATH=/usr/bin:/bin "${unit_env[@]}" CANDIDATES_ENV_FILE="$work/root$env_file" "$work/root$pre" 2>&1)
status=$?
set -e
[[ $status -ne 0 ]] || fail "the configuration check passed without an env file"
grep -q 'refusing to start' <<<"$reason" || fail "no reason given: $reason"
echo "ok: without the deployment's env file the unit's ExecStartPre exits $status: $reason"

# An env file as cloud-init writes it (modules/instance-config), with the store this test can run.
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(port)
grpc_port=$(port)
cat >"$work/root$env_file" <<ENV
# Written at first boot by cloud-init (test-provision.sh's stand-in).
CANDIDATES_STORE=embedded
CANDIDATES_HTTP_ADDR=127.0.0.1:$http_port
CANDIDATES_GRPC_ADDR=127.0.0.1:$grpc_port
CANDIDATES_DRAIN_PERIOD=0s
ENV
mapfile -t file_env < <(grep -v '^#' "$work/root$env_file")
ok=$(env -i PATH=/usr/bin:/bin "${unit_env[@]}" "${file_env[@]}" CANDIDATES_ENV_FILE="$work/root$env_file" "$work/root$pre" 2>&1) ||
  fail "the configuration check refused a complete env file: $ok"
echo "ok: with it the check passes: $ok"

# Run it the way systemd would: the unit's Environment= defaults, then the env file.
(
  export CANDIDATES_DATA_DIR="$work/state" CANDIDATES_LOG_FORMAT=json
  set -a
  # shellcheck disable=SC1090
  source "$work/root$env_file"
  set +a
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
echo "ok: the installed binary serves REST and gRPC with the deployment's environment file"
kill -TERM "$pid"
wait "$pid" || fail "the server did not exit 0 after SIGTERM"
pid=""
echo "ok: clean shutdown"
