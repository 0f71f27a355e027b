#!/usr/bin/env bash
# A CPU profile of the server under the pinned protocol's load: the `profiling` build (release with
# symbols) on core 1, wrk on core 0, `perf record` on the server for the load's duration. Prints the
# top entries by self time and, when inferno is installed (`cargo install inferno`), writes a flame
# graph. Talks to 127.0.0.1 only.
#
#   bench/profile.sh [PATH] [SECONDS] [LOG_LEVEL] [OUT_DIR]
#   bench/profile.sh /gtg 10 info /tmp/profile-gtg
#   bench/profile.sh /candidate/bench 10 info /tmp/profile-get
#   bench/profile.sh grpc 10 info /tmp/profile-grpc     (GetCandidate with h2load, nghttp2-client)
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-/gtg}
seconds=${2:-10}
level=${3:-info}
out=${4:-$(mktemp -d /tmp/profile.XXXX)}
mkdir -p "$out"
for tool in perf wrk h2load taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install linux-perf wrk nghttp2-client util-linux)" >&2; exit 2; }
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

# The load: wrk on a REST path, or h2load sending GetCandidate{name: "bench"} as one gRPC message.
load() {
  if [ "$path" = grpc ]; then
    printf '\x00\x00\x00\x00\x07\x0a\x05bench' >"$out/get-bench.grpc"
    taskset -c 0 h2load -c 64 -m 1 -D "$1" -d "$out/get-bench.grpc" -H 'content-type: application/grpc' \
      -H 'te: trailers' "http://127.0.0.1:$grpc/candidates.v1.CandidateService/GetCandidate" | grep -E 'finished|status codes'
  else
    taskset -c 0 wrk -t1 -c64 -d"$1s" "http://127.0.0.1:$http$path"
  fi
}
# Warm up, then profile exactly the measured window.
load 2 >/dev/null
perf record -F 1999 -g --call-graph dwarf,32768 -p "$server" -o "$out/perf.data" -- sleep "$seconds" 2>"$out/perf-record.log" &
recorder=$!
load "$seconds" | tee "$out/load.txt"
wait $recorder

perf report -i "$out/perf.data" --no-children --sort symbol --stdio --percent-limit 0.6 2>/dev/null \
  | grep -E '^ +[0-9]' | sed -E 's/ {2,}-.*$//' | cut -c1-150 | head -40 | tee "$out/top-self.txt"
echo "--- by DSO / kernel vs user"
perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
if command -v inferno-collapse-perf >/dev/null; then
  perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf > "$out/stacks.folded"
  inferno-flamegraph < "$out/stacks.folded" > "$out/flame.svg"
  echo "flame graph: $out/flame.svg"
fi
echo "profile in $out"
