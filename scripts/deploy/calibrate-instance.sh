#!/usr/bin/env bash
# Runs ON one instance (scripts/<cloud>/calibrate.sh sends it through SSM / run-command / IAP), or
# locally against a server you started (the offline test does): a closed-loop `candidatectl load`
# with the scale demo's operation mix against the instance's own REST listener, and the CPU time
# the service used meanwhile, read from /proc (the load generator's own CPU is not counted).
# Bounded: one populate pass over KEYS names, then SECONDS of load.
#
#   calibrate-instance.sh [SECONDS [CONCURRENCY [REST_URL [SERVER_PID]]]]
#
# Prints the load report (one JSON line) and one line
#   calibration: cpu_ticks=N hz=N cores=N seconds=N concurrency=N
# which scripts/deploy/scaling.py turns into target_requests_per_instance_per_second.
set -euo pipefail
seconds=${1:-60}
concurrency=${2:-32}
target=${3:-http://127.0.0.1:8000}
pid=${4:-$(systemctl show --property MainPID --value candidates.service)}
mix=${MIX:-gtg=1,get=8,put=1}
keys=${KEYS:-1000}
ctl=${CANDIDATECTL:-candidatectl}

[[ -n $pid && $pid != 0 && -r /proc/$pid/stat ]] || { echo "calibrate: no running candidate-server (pid '$pid')" >&2; exit 1; }
# utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in field 2 has no spaces for candidate-server).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

# The keys exist before the measured run, so gets find them and the populate's writes are not counted.
"$ctl" --rest --target "$target" load --requests 1 --keys "$keys" --populate --quiet >/dev/null
before=$(cpu_ticks)
# --max-error-rate 1: report whatever happened; scaling.py refuses a run with no successes.
"$ctl" --rest --target "$target" --json load -c "$concurrency" -d "${seconds}s" --mix "$mix" --keys "$keys" --quiet \
  --max-error-rate 1 | tr -d '\n'
echo
after=$(cpu_ticks)
echo "calibration: cpu_ticks=$((after - before)) hz=$(getconf CLK_TCK) cores=$(nproc) seconds=$seconds concurrency=$concurrency"
