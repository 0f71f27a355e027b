# Shared by scripts/{aws,azure,gcp}/*.sh: logging, tool checks, building the binaries and the image,
# bounded waits, the contract check and the scaling demo's load. Source it; it does not run alone.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CANDIDATECTL=${CARGO_TARGET_DIR:-$ROOT/target}/release/candidatectl
SCALING=$ROOT/scripts/deploy/scaling.py
# The stack: Terraform's `name` and the `stack` tag/label on its images (destroy deletes only those).
STACK=${STACK:-candidates}

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# require_tools TOOL...: every tool on PATH, or one message naming all that are missing.
require_tools() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (see docs/deploy-<cloud>.md, Prerequisites)"
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
  local args=(-only="$only" -var "git_commit=$(git -C "$ROOT" rev-parse HEAD)" -var "stack=$STACK")
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

# calibrate CLOUD STORE MAX_INSTANCES RUN_ON_INSTANCE...: runs scripts/deploy/calibrate-instance.sh
# on one instance through RUN_ON_INSTANCE (a command that executes stdin there as root and prints
# its output), turns the measurement into target_requests_per_instance_per_second
# (scripts/deploy/scaling.py) and writes it to terraform/CLOUD/calibration.auto.tfvars.json, which
# the next apply reads. CAL_SECONDS (default 60) and CAL_CONCURRENCY (32) bound the run;
# CAL_MAX_DEMO_RATE (3000 req/s; 0 for none) caps the target so that the demo stays drivable.
calibrate() {
  local cloud=$1 store=$2 max=$3
  shift 3
  local out result tfvars=$ROOT/terraform/$cloud/calibration.auto.tfvars.json
  out=$(mktemp)
  log "calibration: ${CAL_SECONDS:-60}s of closed-loop load (c=${CAL_CONCURRENCY:-32}) on one instance, against itself"
  {
    echo "set -- ${CAL_SECONDS:-60} ${CAL_CONCURRENCY:-32}"
    cat "$ROOT/scripts/deploy/calibrate-instance.sh"
  } | "$@" | tee "$out"
  result=$(python3 "$SCALING" calibrate "$out" --store "$store" --max-instances "$max" \
    --max-demo-rate "${CAL_MAX_DEMO_RATE:-3000}") || die "calibration failed (output above)"
  rm -f "$out"
  echo "$result" | python3 -m json.tool
  python3 - "$result" "$tfvars" <<'PY'
import json, sys
result, path = json.loads(sys.argv[1]), sys.argv[2]
json.dump({"target_requests_per_instance_per_second": result["target_requests_per_instance_per_second"]},
          open(path, "w"), indent=2)
print(f"wrote {path}: target_requests_per_instance_per_second = "
      f"{result['target_requests_per_instance_per_second']} ({result['bound']}-bound)")
PY
  log "apply it: SKIP_IMAGE=1 scripts/$cloud/apply.sh (only the scaling policies change)"
}

# scale_demo REST_URL TARGET MIN MAX STORE COUNT_COMMAND...: prints what must happen (scaling.py
# plan: the load, the instance counts before, at the peak and after), then drives the load
# balancer with a bounded open-loop load at that rate (ramped within the store's rules, then held)
# and prints the instance count every INTERVAL seconds until the load stops, then for WATCH_AFTER
# seconds more so the scale-in shows too. RATE/RAMP/DURATION override the plan.
# STRESS=1 instead burns CPU on every instance (stress_instances, defined by the cloud's script)
# for DURATION: it exercises only the CPU policies, not the request-rate signal the plan is about.
scale_demo() {
  local rest=$1 target=$2 min=$3 max=$4 store=$5
  shift 5
  local plan
  plan=$(python3 "$SCALING" plan --target "$target" --min "$min" --max "$max" --store "$store") ||
    die "no demo plan for target $target req/s per instance (see above)"
  local rate ramp duration interval=${INTERVAL:-30} watch_after=${WATCH_AFTER:-1800}
  rate=${RATE:-$(json_field "$plan" rate)}
  ramp=${RAMP:-$(json_field "$plan" ramp_s)s}
  duration=${DURATION:-$(json_field "$plan" duration_s)s}
  if [[ -n ${STRESS:-} ]]; then
    log "STRESS=1: CPU burn on every instance for $duration (forces the CPU policies; NOT the request-rate demo)"
    echo "expected: $min instance(s) now; more while the average CPU is above the CPU target; back to $min after"
  else
    log "scale demo plan (scripts/deploy/scaling.py plan)"
    echo "$plan" | python3 -m json.tool
    echo "expected instance counts: $min now -> $(json_field "$plan" expected_peak) at full load" \
      "($rate req/s = $(json_field "$plan" per_instance_rps_at_min) req/s per instance at $min, target $target)" \
      "-> $min again within ${watch_after}s after the load stops"
  fi
  build_client
  local timeline=""
  if [[ -n ${STRESS:-} ]]; then
    [[ ${duration%s} =~ ^[0-9]+$ ]] || die "STRESS=1 takes DURATION in seconds (e.g. 1200s), not $duration"
    stress_instances "${duration%s}" &
  else
    log "load: $rate req/s (ramp $ramp, total $duration) against $rest; instance count every ${interval}s"
    # The per-second timeline (offered / answered req/s, errors, p50/p99) goes to TIMELINE;
    # `candidatectl chart` draws it.
    timeline=${TIMELINE:-$ROOT/scale-demo-timeline.json}
    # Keys load-000000...: see docs/scaling.md on Firestore and sequential names.
    "$CANDIDATECTL" --rest --target "$rest" load --rate "$rate" --ramp-up "$ramp" -d "$duration" \
      --mix "$(json_field "$plan" mix)" --populate --quiet --max-error-rate 0.01 --timeline "$timeline" &
  fi
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
  log "load finished (exit $load_status${timeline:+; per-second timeline in $timeline}); watching scale-in for ${watch_after}s"
  local stop=$((SECONDS + watch_after))
  while ((SECONDS < stop)); do
    report "$@"
    sleep "$interval"
  done
  return "$load_status"
}

# stress_script SECONDS: the shell script stress_instances runs on each instance: one busy loop per
# core for SECONDS, stopping by itself (no package to install).
stress_script() {
  # shellcheck disable=SC2016 # expanded on the instance
  printf 'n=$(nproc); for _ in $(seq "$n"); do timeout %d sh -c "while :; do :; done" & done; wait; echo stress-done\n' "$1"
}

# json_field JSON KEY: one top-level field of a JSON object.
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

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
