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
  # The state holds the write key in plain text: files Terraform writes are the operator's only
  # (umask 077 for new ones; existing local state files are narrowed too).
  (
    umask 077
    for state in "$ROOT/terraform/$dir"/terraform.tfstate "$ROOT/terraform/$dir"/terraform.tfstate.backup; do
      if [[ -f $state ]]; then chmod 600 "$state"; fi
    done
    terraform -chdir="$ROOT/terraform/$dir" "$@"
  )
}

tf_output() { tf "$1" output -raw "$2"; }

# use_write_key DIR: exports CANDIDATES_API_KEY, the deployment's write key (the root's sensitive
# output write_key, terraform/DIR/access.tf), for what calls the API: candidatectl reads it on
# every command, http_retry sends it as a header. It is never printed and never on a command line
# (`terraform output -raw` writes it to our pipe). A CANDIDATES_API_KEY already exported (a key of
# your own, added through api_key_lines) is kept.
use_write_key() {
  # Never traced: `bash -x` would print the key.
  { set +x; } 2>/dev/null
  if [[ -n ${CANDIDATES_API_KEY:-} ]]; then
    echo "API key: CANDIDATES_API_KEY from the environment (not terraform/$1's write_key)" >&2
    return 0
  fi
  local key
  key=$(tf_output "$1" write_key) || die "no write_key output in terraform/$1: apply first (apply makes the key)"
  [[ $key =~ ^cand_[A-Za-z0-9_-]{43}$ ]] || die "terraform/$1's write_key output is not an API key (cand_ and 43 characters)"
  export CANDIDATES_API_KEY=$key
  echo "API key: the deployment's write key (terraform -chdir=terraform/$1 output -raw write_key)" >&2
}

# warn_key_in_clear URL: one line on stderr, once per run, when the write key is about to go to a
# plain-HTTP URL (a deployment without a domain and certificate: docs/deploy-<cloud>.md, HTTPS). It
# names the URL, never the key. Nothing when no key is set or the URL is https://.
# candidatectl refuses to send a key over plain HTTP off the machine unless told to: the scripts
# tell it here, where they warn.
warn_key_in_clear() {
  [[ -n ${CANDIDATES_API_KEY:-} && $1 == http://* ]] || return 0
  export CANDIDATECTL_ALLOW_PLAINTEXT_KEY=true
  [[ -z ${KEY_IN_CLEAR_WARNED:-} ]] || return 0
  KEY_IN_CLEAR_WARNED=1
  echo "warning: $1 is plain HTTP: the write key travels unencrypted (give the deployment a domain and certificate for HTTPS)" >&2
}

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

# wait_for_domain REST_URL DNS_TARGET: with HTTPS, rest_url names the operator's domain, which
# answers only once its DNS record points at the load balancer (DNS_TARGET, printed while waiting),
# and a first apply cannot have made that record before the load balancer existed. Waits up to
# HEALTH_TIMEOUT (900 s) for GET /gtg there to answer 200 (curl verifies the certificate against
# the domain). Nothing for a plain-HTTP URL (the load balancer's own name or address).
wait_for_domain() {
  local rest=$1 target=$2
  [[ $rest == https://* ]] || return 0
  wait_for "${HEALTH_TIMEOUT:-900}" "$rest/gtg answering 200 (its DNS record -> $target)" rest_answers "$rest"
}
rest_answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1/gtg") == 200 ]]; }

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
# URL (the gRPC load balancer is internal and no tunnel is available) only REST is checked. The
# check writes: candidatectl sends CANDIDATES_API_KEY (use_write_key first).
contract_check() {
  local rest=$1 grpc=${2:-}
  warn_key_in_clear "$rest"
  build_client
  if [[ -n $grpc ]]; then
    log "contract check: REST $rest, gRPC $grpc"
    "$CANDIDATECTL" check --rest-target "$rest" --grpc-target "$grpc"
  else
    log "contract check: REST $rest (gRPC skipped: the gRPC load balancer is internal)"
    "$CANDIDATECTL" check --rest-target "$rest" --skip-grpc
  fi
  anonymous_writes_refused "$rest"
  [[ $rest != https://* ]] || http_redirects_to_https "$rest"
}

# http_redirects_to_https REST_URL: with HTTPS, port 80 must answer a permanent redirect (301) to
# the same path and query over HTTPS, and never serve the API in the clear (the load balancers'
# redirect rules). One request, no credential, redirects not followed.
http_redirects_to_https() {
  local rest=$1 host plain answer
  host=${rest#https://}
  plain="http://$host/gtg?details=true"
  answer=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 10 "$plain") || answer="000 "
  # The ALB writes the default port into Location (https://host:443/...); it is the same URL.
  answer=${answer/"://$host:443/"/"://$host/"}
  [[ $answer == "301 $rest/gtg?details=true" ]] ||
    die "$plain answered \"$answer\", not a 301 to $rest/gtg?details=true: port 80 must redirect to HTTPS"
  log "port 80 redirects to HTTPS (301, path and query kept)"
}

# anonymous_writes_refused REST_URL: a write without a key must get 401. The contract check sends
# the key, and a server with no key file ignores credentials, so it alone would pass an instance
# left open; six probes, to reach more than one instance behind the load balancer.
anonymous_writes_refused() {
  local rest=$1 code i
  for i in 1 2 3 4 5 6; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$rest/candidate/anonymous-write-probe-$i") || code=000
    [[ $code == 401 ]] || die "an anonymous POST /candidate got HTTP $code from $rest, not 401: the deployment is open for writes"
  done
  log "anonymous writes refused: 401 on 6 of 6 probes"
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

# http_retry URL [CURL_ARGS...]: one HTTP request with bounded retries, for scripts under `set -e`
# where a single transient failure (a reset, a timeout, a 5xx from a load balancer still warming
# up) must not abort the run: at most HTTP_ATTEMPTS (5) attempts, 2 s apart doubling (2, 4, 8, 16),
# each bounded by --max-time 10. Prints the last answer's body (whatever its status: a 503 with
# /gtg?details is worth printing); fails only when no attempt got an HTTP answer, or with -f when
# the last answer was an HTTP error (pass -f to retry on HTTP errors too). With CANDIDATES_API_KEY
# set (use_write_key) it sends `Authorization: Bearer` with it, read by curl from a file descriptor
# (-H @file, curl 7.55+), so the key is not in curl's arguments, which `ps` shows.
http_retry() {
  local url=$1 attempt delay=${HTTP_RETRY_DELAY:-2} attempts=${HTTP_ATTEMPTS:-5} status
  shift
  warn_key_in_clear "$url"
  for ((attempt = 1; ; attempt++)); do
    status=0
    if [[ -n ${CANDIDATES_API_KEY:-} ]]; then
      curl -sS --max-time 10 -H @<(printf 'Authorization: Bearer %s\n' "$CANDIDATES_API_KEY") "$@" "$url" &&
        return 0 || status=$?
    else
      curl -sS --max-time 10 "$@" "$url" && return 0 || status=$?
    fi
    ((attempt < attempts)) || break
    echo "  $url: attempt $attempt/$attempts failed (curl exit $status); again in ${delay}s" >&2
    sleep "$delay"
    delay=$((delay * 2))
  done
  echo "$url: no answer after $attempts attempts (curl exit $status)" >&2
  return "$status"
}

# run_limit SECONDS: how long a remote command that runs SECONDS may take before its transport
# gives up on it (SSM's executionTimeout, a poll loop): SECONDS plus 10 %, at least 120 s more.
run_limit() {
  local margin=$(($1 / 10))
  ((margin >= 120)) || margin=120
  echo $(($1 + margin))
}

# calibrate CLOUD STORE MAX_INSTANCES INSTANCE_TYPE RUN_ON_INSTANCE...: runs
# scripts/deploy/calibrate-instance.sh on one instance through RUN_ON_INSTANCE (a command that
# executes stdin there as root and prints its output), turns the measurement into
# target_requests_per_instance_per_second (scripts/deploy/scaling.py) and writes it to
# terraform/CLOUD/calibration.auto.tfvars.json, which the next apply reads. The load is open loop,
# ramped and capped within the store's rules (scaling.py calibration-load: Firestore 500/50/5,
# Cosmos DB serverless's RU/s); on a burstable INSTANCE_TYPE the target is capped at its baseline
# CPU share. CAL_SECONDS (default 60) bounds the run, CAL_RATE overrides the rate (never above the
# store's cap), CAL_BASELINE the baseline share; CAL_MAX_DEMO_RATE (3000 req/s; 0 for none) caps
# the target so that the demo stays drivable; CAL_TFVARS replaces the file written (tests).
calibrate() {
  local cloud=$1 store=$2 max=$3 instance_type=$4
  shift 4
  local out result load seconds=${CAL_SECONDS:-60} rate ramp keys
  local tfvars=${CAL_TFVARS:-$ROOT/terraform/$cloud/calibration.auto.tfvars.json}
  load=$(python3 "$SCALING" calibration-load --store "$store" --seconds "$seconds") || die "no calibration load for $store"
  rate=$(json_field "$load" rate)
  if [[ -n ${CAL_RATE:-} ]]; then
    ((CAL_RATE <= rate)) || die "CAL_RATE=$CAL_RATE is over the calibration's cap of $rate req/s for $store"
    rate=$CAL_RATE
  fi
  ramp=$(json_field "$load" ramp_s)
  keys=$(json_field "$load" keys)
  out=$(mktemp)
  log "calibration on one ${instance_type:-instance}: ${seconds}s of open-loop load ramped to $rate req/s over ${ramp}s" \
    "($keys names; $store), against itself"
  {
    echo "set -- $seconds $rate $ramp"
    echo "export KEYS=$keys"
    cat "$ROOT/scripts/deploy/calibrate-instance.sh"
  } | "$@" | tee "$out"
  result=$(python3 "$SCALING" calibrate "$out" --store "$store" --max-instances "$max" \
    --max-demo-rate "${CAL_MAX_DEMO_RATE:-3000}" ${instance_type:+--instance-type "$instance_type"} \
    ${CAL_BASELINE:+--baseline "$CAL_BASELINE"}) || die "calibration failed (output above)"
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

# scale_demo CLOUD REST_URL TARGET MIN MAX STORE COUNT_COMMAND...: (after use_write_key: the load
# writes, with CANDIDATES_API_KEY) prints what must happen
# (scaling.py plan: the load, the instance counts before, at the peak and after, and by when the
# cloud's policy must reach them), then drives the load balancer with a bounded open-loop load at
# that rate (ramped within the store's rules, then held) and samples the instance count every
# INTERVAL seconds until the load stops, then until the count is back at the minimum (at most
# WATCH_AFTER seconds, by default the policy's bound plus two intervals). COUNT_COMMAND prints
# "RUNNING TARGET" (two integers: in service, and what the group is asked for). Then it checks the
# samples (scaling.py verify): the peak reached within peak_by_s of the load's start, the minimum
# again within final_by_s of its end. When they fall short it prints the autoscaler's own account
# (autoscaler_status, defined by the cloud's script) and fails. RATE/RAMP/DURATION override the plan.
# STRESS=1 instead burns CPU on every instance (stress_instances, defined by the cloud's script)
# for DURATION: it exercises only the CPU policies, not the request-rate signal the plan is about,
# and expects at least one instance more.
scale_demo() {
  local cloud=$1 rest=$2 target=$3 min=$4 max=$5 store=$6
  shift 6
  local plan plan_args=(--target "$target" --min "$min" --max "$max" --store "$store" --cloud "$cloud")
  [[ -n ${RATE:-} ]] && plan_args+=(--rate "$RATE")
  [[ -n ${RAMP:-} ]] && plan_args+=(--ramp "$RAMP")
  [[ -n ${DURATION:-} ]] && plan_args+=(--duration "$DURATION")
  [[ -n ${STRESS:-} ]] && plan_args+=(--stress)
  plan=$(python3 "$SCALING" plan "${plan_args[@]}") ||
    die "no demo plan for target $target req/s per instance (see above)"
  local rate ramp duration peak peak_by final_by interval=${INTERVAL:-30} watch_after
  rate=$(json_field "$plan" rate)
  ramp=$(json_field "$plan" ramp_s)
  duration=$(json_field "$plan" duration_s)
  peak=$(json_field "$plan" expected_peak)
  peak_by=$(json_field "$plan" peak_by_s)
  final_by=$(json_field "$plan" final_by_s)
  watch_after=${WATCH_AFTER:-$((final_by + 2 * interval))}
  if [[ -n ${STRESS:-} ]]; then
    log "STRESS=1: CPU burn on every instance for ${duration}s (forces the CPU policies; NOT the request-rate demo)"
    echo "expected: $min instance(s) now; at least $peak within ${peak_by}s while the average CPU is above the" \
      "CPU target; back to $min within ${final_by}s after the burn"
  else
    log "scale demo plan (scripts/deploy/scaling.py plan)"
    echo "$plan" | python3 -m json.tool
    echo "expected instance counts: $min now -> $peak at full load" \
      "($rate req/s = $(json_field "$plan" per_instance_rps_at_min) req/s per instance at $min, target $target)" \
      "within ${peak_by}s of the start -> $min again within ${final_by}s after the load stops"
  fi
  build_client
  local timeline=""
  if [[ -n ${STRESS:-} ]]; then
    stress_instances "$duration" &
  else
    log "load: $rate req/s (ramp ${ramp}s, total ${duration}s) against $rest; instance count every ${interval}s"
    warn_key_in_clear "$rest"
    # The per-second timeline (offered / answered req/s, errors, p50/p99) goes to TIMELINE;
    # `candidates-rehearsal chart` draws it.
    timeline=${TIMELINE:-$ROOT/scale-demo-timeline.json}
    # Keys load-000000...: see docs/scaling.md on Firestore and sequential names.
    "$CANDIDATECTL" --rest --target "$rest" load --rate "$rate" --ramp-up "${ramp}s" -d "${duration}s" \
      --mix "$(json_field "$plan" mix)" --populate --quiet --max-error-rate 0.01 --timeline "$timeline" &
  fi
  local load_pid=$!
  # The load generator stops by itself; stop it too if this script is interrupted.
  # shellcheck disable=SC2064 # the pid now: load_pid is local and gone when the trap runs
  trap "kill $load_pid 2>/dev/null || true" EXIT INT TERM
  local start=$SECONDS samples
  samples=$(mktemp)
  # sample: one count, printed and kept ("T RUNNING TARGET"); succeeds when it is the minimum.
  sample() {
    local running="?" wanted="?" out
    out=$("$@" 2>/dev/null) || out=""
    read -r running wanted _ <<<"$out" || true
    [[ $running =~ ^[0-9]+$ ]] || running="?"
    [[ $wanted =~ ^[0-9]+$ ]] || wanted="?"
    printf '%s  t=%4ds  instances: %s in service, %s wanted\n' "$(date -u +%H:%M:%S)" $((SECONDS - start)) \
      "$running" "$wanted"
    echo "$((SECONDS - start)) $running $wanted" >>"$samples"
    [[ $running == "$min" && $wanted == "$min" ]]
  }
  while kill -0 "$load_pid" 2>/dev/null; do
    sample "$@" || true
    sleep "$interval"
  done
  local load_status=0 stopped
  wait "$load_pid" || load_status=$?
  trap - EXIT INT TERM
  stopped=$((SECONDS - start))
  log "load finished after ${stopped}s (exit $load_status${timeline:+; per-second timeline in $timeline});" \
    "watching scale-in for at most ${watch_after}s"
  local stop=$((SECONDS + watch_after)) at_min=0
  while ((SECONDS < stop)); do
    if sample "$@"; then at_min=$((at_min + 1)); else at_min=0; fi
    # Two samples in a row at the minimum: scaled in (the check below wants it to hold).
    ((at_min < 2)) || break
    sleep "$interval"
  done
  sample "$@" || true
  log "check: the instance counts against the plan (scripts/deploy/scaling.py verify)"
  local verdict=0
  python3 "$SCALING" verify "$plan" "$samples" "$stopped" || verdict=$?
  rm -f "$samples"
  if ((verdict != 0)); then
    log "the group did not scale as planned; the autoscaler's own account follows"
    if declare -F autoscaler_status >/dev/null; then
      autoscaler_status || echo "(autoscaler_status failed)" >&2
    fi
    echo "scale demo: FAILED (see the checks above)" >&2
    return 1
  fi
  ((load_status == 0)) || { echo "scale demo: the load itself failed (exit $load_status)" >&2; return "$load_status"; }
  echo "scale demo: ok"
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
