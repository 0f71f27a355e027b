# Shared by scripts/{aws,azure,gcp}/*.sh: logging, tool checks, building the binaries and the image,
# bounded waits, the contract check and the scaling demo's load. Source it; it does not run alone.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CANDIDATECTL=$ROOT/target/release/candidatectl

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# require_tools TOOL...: every tool on PATH, or one message naming all that are missing.
require_tools() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (see README, Deploy prerequisites)"
}

# build_server: the stripped release binary Packer installs (dist/candidate-server).
build_server() {
  log "release build of candidate-server"
  "$ROOT/scripts/build-release.sh"
}

# build_client: candidatectl, for the contract check and the load.
build_client() {
  [[ -x $CANDIDATECTL && -z ${REBUILD_CLIENT:-} ]] && return
  log "release build of candidatectl"
  (cd "$ROOT" && cargo build --release --locked -p candidates-clients --bin candidatectl)
}

# packer_build ONLY [VAR=VALUE...]: builds one cloud's image; the manifest records its id.
packer_build() {
  local only=$1
  shift
  local args=(-only="$only" -var "git_commit=$(git -C "$ROOT" rev-parse HEAD)")
  for kv in "$@"; do args+=(-var "$kv"); done
  log "packer build -only=$only"
  (cd "$ROOT/packer" && packer init . && packer build "${args[@]}" .)
}

# tf DIR ARGS...: terraform in one cloud's root module, without prompts.
tf() {
  local dir=$1
  shift
  terraform -chdir="$ROOT/terraform/$dir" "$@"
}

tf_output() { tf "$1" output -raw "$2"; }

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 10 s until it succeeds or time is up.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  log "waiting up to ${limit}s for $what"
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
    sleep 10
  done
  echo "$what: ok (after $((SECONDS + limit - deadline))s)" >&2
}

# all_in_state WANT MIN STATES: prints the states with the time (progress for wait_for), then
# succeeds when there are at least MIN and every one is WANT (a load balancer's backend health).
all_in_state() {
  local want=$1 min=$2 states=$3 n=0
  echo "  $(date -u +%H:%M:%S) ${states:-no backends}" >&2
  for s in $states; do
    [[ $s == "$want" ]] || return 1
    n=$((n + 1))
  done
  ((n >= min))
}

# contract_check REST_URL [GRPC_URL]: the wire contract against the load balancers; with no gRPC
# URL (the gRPC load balancer is internal and no tunnel is available) only REST is checked.
contract_check() {
  local rest=$1 grpc=${2:-}
  build_client
  if [[ -n $grpc ]]; then
    log "contract check: REST $rest, gRPC $grpc"
    "$CANDIDATECTL" check --rest-target "$rest" --grpc-target "$grpc"
  else
    log "contract check: REST $rest (gRPC skipped: the gRPC load balancer is internal)"
    "$CANDIDATECTL" check --rest-target "$rest" --skip-grpc
  fi
}

# free_port: an unused local TCP port, for tunnels.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT: until something listens on 127.0.0.1:PORT (a tunnel came up), at most 30 s.
wait_port() {
  for _ in $(seq 1 60); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

# scale_demo REST_URL COUNT_COMMAND...: drives the load balancer with a bounded open-loop load
# (RATE req/s ramped over RAMP, then held for DURATION; see README) and prints the instance count
# every INTERVAL seconds until the load stops, then keeps watching for WATCH_AFTER seconds so the
# scale-in shows too.
scale_demo() {
  local rest=$1
  shift
  local rate=${RATE:-3000} ramp=${RAMP:-5m} duration=${DURATION:-20m} interval=${INTERVAL:-30}
  local watch_after=${WATCH_AFTER:-1200}
  build_client
  log "load: $rate req/s (ramp $ramp, total $duration) against $rest; instance count every ${interval}s"
  "$CANDIDATECTL" --rest --target "$rest" load --rate "$rate" --ramp-up "$ramp" -d "$duration" \
    --mix gtg=1,get=8,put=1 --populate --quiet --max-error-rate 0.01 &
  local load_pid=$!
  # The load generator stops by itself; stop it too if this script is interrupted.
  trap 'kill "$load_pid" 2>/dev/null || true' EXIT INT TERM
  local start=$SECONDS
  report() { printf '%s  t=%4ds  instances: %s\n' "$(date -u +%H:%M:%S)" $((SECONDS - start)) "$("$@" 2>/dev/null || echo '?')"; }
  while kill -0 "$load_pid" 2>/dev/null; do
    report "$@"
    sleep "$interval"
  done
  local load_status=0
  wait "$load_pid" || load_status=$?
  log "load finished (exit $load_status); watching scale-in for ${watch_after}s"
  local stop=$((SECONDS + watch_after))
  while ((SECONDS < stop)); do
    report "$@"
    sleep "$interval"
  done
  return "$load_status"
}

# forget_images BUILDER_TYPE: drops that builder's entries from packer/packer-manifest.json after
# their images were deleted, so the next apply does not point at a deleted image.
forget_images() {
  local manifest=$ROOT/packer/packer-manifest.json
  [[ -f $manifest ]] || return 0
  python3 - "$manifest" "$1" <<'PY'
import json, sys
path, builder = sys.argv[1], sys.argv[2]
data = json.load(open(path))
data["builds"] = [b for b in data.get("builds", []) if b.get("builder_type") != builder]
json.dump(data, open(path, "w"), indent=2)
PY
}
