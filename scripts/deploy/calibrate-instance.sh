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
