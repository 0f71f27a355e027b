#!/usr/bin/env bash
# Runs ON one instance (scripts/<cloud>/calibrate.sh sends it through SSM / run-command / IAP), or
# locally against a server you started (the offline test does): an open-loop `candidatectl load`
# with the scale demo's operation mix against the instance's own REST listener, ramped from 0 to
# RATE over RAMP seconds and then held, and the CPU time the service used meanwhile, read from
# /proc (the load generator's own CPU is not counted). Open loop and ramped, not a closed loop at
# full speed: the rate stays within the store's rules (scaling.py calibration-load picks it:
# Firestore's 500 ops/s on a new collection, Cosmos DB serverless's RU/s), and the CPU cost per
# request does not need the instance saturated (nor a burstable one's credits spent).
# Bounded: one populate pass over KEYS names (sized to fit one second of the store's allowance),
# then SECONDS of load.
#
#   calibrate-instance.sh [SECONDS [RATE [RAMP [REST_URL [SERVER_PID]]]]]
#
# Prints the load report (one JSON line) and one line
#   calibration: cpu_ticks=N hz=N cores=N seconds=N rate=N ramp=N
# which scripts/deploy/scaling.py turns into target_requests_per_instance_per_second.
#
# The load writes, and a deployment's instances accept only keys whose digests are in their key
# file (CANDIDATES_API_KEYS_FILE, from the env file cloud-init wrote). The deployment's own key is
# not sent here: SSM Run Command keeps a command's parameters (this script) in its history, and
# Run Command and IAP pass through more hands than the key should. Instead, unless
# CANDIDATES_API_KEY is set, the script mints a key for this run on the instance (candidatectl
# key mint), adds its digest to the key file (a new file moved over the old one, with its owner and
# mode), waits until the server has taken it (it reads the file every 5 s), and removes the line
# again on exit, whatever the outcome. The key lives only in this process's environment.
set -euo pipefail
seconds=${1:-60}
rate=${2:-2000}
ramp=${3:-$((seconds / 4))}
target=${4:-http://127.0.0.1:8000}
pid=${5:-$(systemctl show --property MainPID --value candidates.service)}
mix=${MIX:-gtg=1,get=8,put=1}
keys=${KEYS:-1000}
ctl=${CANDIDATECTL:-candidatectl}

[[ $seconds =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ && $ramp =~ ^[0-9]+$ && $rate -gt 0 && $ramp -lt $seconds ]] ||
  { echo "calibrate: need whole SECONDS > RAMP >= 0 and RATE > 0 (got '$seconds' '$rate' '$ramp')" >&2; exit 1; }
[[ -n $pid && $pid != 0 && -r /proc/$pid/stat ]] || { echo "calibrate: no running candidate-server (pid '$pid')" >&2; exit 1; }
# utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 has no spaces for candidate-server).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

env_file=${CANDIDATES_ENV_FILE:-/etc/candidates/candidates.env}
keys_file=${CANDIDATES_API_KEYS_FILE:-}
if [[ -z $keys_file && -r $env_file ]]; then
  keys_file=$(sed -n 's/^CANDIDATES_API_KEYS_FILE=//p' "$env_file" | tail -n 1)
fi
key_line=""
# rewrite_keys FILTER...: replaces the key file by the output of FILTER on it, atomically, keeping
# its owner and mode (a reader sees the old file or the new, never half of one).
rewrite_keys() {
  local tmp
  tmp=$(mktemp "$keys_file.calibrate.XXXXXX")
  chown --reference="$keys_file" "$tmp" 2>/dev/null || true
  chmod --reference="$keys_file" "$tmp"
  "$@" <"$keys_file" >"$tmp" || { rm -f "$tmp"; return 1; }
  mv -f "$tmp" "$keys_file"
}
without_key() { grep -v -x -F -e "$key_line" || (($? == 1)); }
with_key() {
  cat
  printf '%s\n' "$key_line"
}
drop_key() {
  [[ -n $key_line ]] || return 0
  rewrite_keys without_key
  key_line=""
}
if [[ -z ${CANDIDATES_API_KEY:-} && -n $keys_file ]]; then
  [[ -w $keys_file ]] || { echo "calibrate: cannot write the key file $keys_file (run as root)" >&2; exit 1; }
  key_name=calibrate-instance-$$
  while IFS= read -r line; do
    case $line in
      "key file line: "*) key_line=${line#key file line: } ;;
      "key: "*) CANDIDATES_API_KEY=${line##* } ;;
    esac
  done < <("$ctl" key mint --name "$key_name" --scopes candidates.read,candidates.write 2>/dev/null)
  [[ -n ${CANDIDATES_API_KEY:-} && $key_line == *" $key_name" ]] || { echo "calibrate: candidatectl key mint failed" >&2; exit 1; }
  export CANDIDATES_API_KEY
  trap drop_key EXIT
  trap 'exit 130' INT TERM
  rewrite_keys with_key
  # Taken when a read with the key is no longer refused (candidatectl's exit 4, 401: a key the
  # server does not know is refused on every operation, whoever may read; a taken one gets 200 or
  # 404, exit 3); other failures are the load's. A get, not `status`: candidatectl --rest status
  # reports a 401 as a body it cannot decode (exit 5).
  refused=4
  for _ in $(seq 1 40); do
    refused=0
    "$ctl" --rest --target "$target" get calibrate-probe >/dev/null 2>&1 || refused=$?
    ((refused == 4)) || break
    sleep 0.5
  done
  ((refused != 4)) || { echo "calibrate: the server did not take the calibration key within 20 s" >&2; exit 1; }
  echo "calibrate: a key for this run ($key_name) is in $keys_file until it ends" >&2
fi

# The keys exist before the measured run, so gets find them and the populate's writes are not counted.
"$ctl" --rest --target "$target" load --requests 1 --keys "$keys" --populate --quiet >/dev/null
before=$(cpu_ticks)
# --max-error-rate 1: report whatever happened; scaling.py refuses a run with no successes.
ramp_args=()
((ramp == 0)) || ramp_args=(--ramp-up "${ramp}s")
"$ctl" --rest --target "$target" --json load --rate "$rate" "${ramp_args[@]}" -d "${seconds}s" --mix "$mix" \
  --keys "$keys" --quiet --max-error-rate 1 | tr -d '\n'
echo
after=$(cpu_ticks)
echo "calibration: cpu_ticks=$((after - before)) hz=$(getconf CLK_TCK) cores=$(nproc) seconds=$seconds rate=$rate ramp=$ramp"
