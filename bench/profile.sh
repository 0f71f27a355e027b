#!/usr/bin/env bash
# A CPU profile of the server under the pinned protocol's load: the `profiling` build (release with
# symbols) on core 1, wrk on core 0, `perf record` on the server for the load's duration. Prints the
# top entries by self time and, when inferno is installed (`cargo install inferno`), writes a flame
# graph. Talks to 127.0.0.1 only.
#
#   bench/profile.sh [PATH] [SECONDS] [LOG_LEVEL] [OUT_DIR]
#   bench/profile.sh /gtg 10 info /tmp/profile-gtg
#   bench/profile.sh /candidate/bench 10 info /tmp/profile-get
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-/gtg}
seconds=${2:-10}
level=${3:-info}
out=${4:-$(mktemp -d /tmp/profile.XXXX)}
mkdir -p "$out"
for tool in perf wrk taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install linux-perf wrk util-linux)" >&2; exit 2; }
done
[ -n "${NO_BUILD:-}" ] || cargo build --profile profiling --locked --bin candidate-server
bin=${CARGO_TARGET_DIR:-target}/profiling/candidate-server

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port); grpc=$(port); data=$(mktemp -d)
taskset -c 1 "$bin" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" --data-dir "$data" \
  --log "$level" --drain-period 0s >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$http/gtg" && break; sleep 0.05; done
curl -fs -o /dev/null -X POST "http://127.0.0.1:$http/candidate/bench"

# Warm up, then profile exactly the measured window.
taskset -c 0 wrk -t1 -c64 -d2s "http://127.0.0.1:$http$path" >/dev/null
perf record -F 1999 -g --call-graph dwarf,32768 -p "$server" -o "$out/perf.data" -- sleep "$seconds" 2>"$out/perf-record.log" &
recorder=$!
taskset -c 0 wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$http$path" | tee "$out/wrk.txt"
wait $recorder

perf report -i "$out/perf.data" --no-children --sort symbol --stdio --percent-limit 0.7 2>/dev/null \
  | grep -E '^ +[0-9]' | head -40 | tee "$out/top-self.txt"
echo "--- by DSO / kernel vs user"
perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
if command -v inferno-collapse-perf >/dev/null; then
  perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf > "$out/stacks.folded"
  inferno-flamegraph < "$out/stacks.folded" > "$out/flame.svg"
  echo "flame graph: $out/flame.svg"
fi
echo "profile in $out"
