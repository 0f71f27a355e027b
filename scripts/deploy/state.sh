# Remote Terraform state (docs/deploy-<cloud>.md, "Remote state"): tf_init, which apply.sh and
# destroy.sh call instead of a bare `terraform init`, and bootstrap_state, the body of
# scripts/<cloud>/bootstrap-state.sh. Sourced by scripts/deploy/lib.sh; it does not run alone.
#
# terraform/<cloud> declares no backend, so its state is local (terraform/<cloud>/terraform.tfstate)
# until scripts/<cloud>/bootstrap-state.sh has created a state store and written
# terraform/<cloud>/backend_override.tf (git-ignored): a Terraform override file holding the whole
# backend block, which every terraform command in that directory then uses. Delete it (and run
# `terraform init -migrate-state`) to go back to local state.
# shellcheck shell=bash

# backend_override CLOUD: the backend file terraform/CLOUD reads.
backend_override() { echo "$ROOT/terraform/$1/backend_override.tf"; }

# state_resources FILE: how many resources a local state file holds (0 when there is none).
state_resources() {
  [[ -s $1 ]] || {
    echo 0
    return
  }
  python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("resources", [])))' "$1"
}

# tf_init DIR: terraform init in terraform/DIR, saying which state it uses. With remote state
# configured and a local state that still holds resources, it stops and says how to move them
# (MIGRATE_STATE=1 copies the local state to the remote key with `init -migrate-state -force-copy`,
# which replaces whatever is at that key, and keeps the local file as terraform.tfstate.migrated);
# an empty local state (after a destroy) is set aside as terraform.tfstate.local-empty.
tf_init() {
  local dir=$1 backend local_state n cloud
  # scripts/<cloud>/bootstrap-state.sh and docs/deploy-<cloud>.md, for serverless/<cloud> too.
  cloud=${dir#serverless/}
  backend=$(backend_override "$dir")
  local_state=$ROOT/terraform/$dir/terraform.tfstate
  if [[ ! -f $backend ]]; then
    log "terraform init (terraform/$dir): local state in terraform/$dir/terraform.tfstate" \
      "(for remote state with locking: scripts/$cloud/bootstrap-state.sh, docs/deploy-$cloud.md \"Remote state\")"
    tf "$dir" init -input=false
    return
  fi
  log "terraform init (terraform/$dir): remote state, $(backend_summary "$backend")"
  n=$(state_resources "$local_state")
  if ((n > 0)); then
    [[ -n ${MIGRATE_STATE:-} ]] ||
      die "terraform/$dir/terraform.tfstate holds $n resources, and terraform/$dir/backend_override.tf puts the state" \
        "elsewhere: copy it there first (MIGRATE_STATE=1 scripts/$dir/apply.sh, or" \
        "terraform -chdir=terraform/$dir init -migrate-state; docs/deploy-$cloud.md, Remote state)"
    log "copying the local state ($n resources) to the remote backend (MIGRATE_STATE=1)"
    tf "$dir" init -input=false -migrate-state -force-copy
    mv "$local_state" "$local_state.migrated"
    echo "the local state is kept as terraform/$dir/terraform.tfstate.migrated (delete it once the remote one is checked)" >&2
    return
  fi
  if [[ -f $local_state ]]; then mv "$local_state" "$local_state.local-empty"; fi
  tf "$dir" init -input=false
}

# backend_summary FILE: "s3 bucket=... key=..." from a backend file, for the log.
backend_summary() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
kind = re.search(r'backend\s+"(\w+)"', text)
pairs = re.findall(r'^\s*(bucket|key|prefix|storage_account_name|container_name)\s*=\s*"([^"]*)"', text, re.M)
print((kind.group(1) if kind else "?") + " " + " ".join(f"{k}={v}" for k, v in pairs))
PY
}

# bootstrap_state CLOUD [--dry-run]: terraform/state/CLOUD (the state store) planned, and unless
# --dry-run applied, then terraform/CLOUD/backend_override.tf written from its outputs. The cloud's
# script defines state_prepare (tools and credentials checked, STATE_TF_VARS set; run once the
# arguments are read, so --help needs no credentials) and backend_block (prints the file for the
# names it is given).
# --dry-run plans, prints the plan and the file it would write, and changes nothing: no apply, no
# file. The state root's variables come from STATE_TF_VARS (an array the cloud's script fills) and
# STATE_TF_ARGS (more flags, e.g. "-var bucket_name=my-bucket"). Tests may point STATE_ROOT at a
# copy of the root and BACKEND_FILE elsewhere.
bootstrap_state() {
  local cloud=$1 dry_run=""
  shift
  for arg in "$@"; do
    case $arg in
      --dry-run) dry_run=1 ;;
      -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
      *) die "unknown argument: $arg (usage: $0 [--dry-run])" ;;
    esac
  done
  state_prepare
  local state_root=${STATE_ROOT:-$ROOT/terraform/state/$cloud}
  local file=${BACKEND_FILE:-$(backend_override "$cloud")}
  local plan
  plan=$(mktemp)
  # shellcheck disable=SC2064 # the path now
  trap "rm -f '$plan'" RETURN
  tf_state() { (umask 077 && terraform -chdir="$state_root" "$@"); }

  log "terraform init (terraform/state/$cloud: the state store; its own state stays local)"
  tf_state init -input=false
  log "terraform plan (terraform/state/$cloud)"
  # shellcheck disable=SC2086 # STATE_TF_ARGS is a list of flags
  tf_state plan -input=false -out="$plan" "${STATE_TF_VARS[@]}" ${STATE_TF_ARGS:-}
  if [[ -n $dry_run ]]; then
    local names
    names=$(tf_state show -json "$plan" | python3 -c '
import json, sys
outputs = json.load(sys.stdin).get("planned_values", {}).get("outputs", {})
print(" ".join(str(o.get("value", "(unknown)")) for _, o in sorted(outputs.items())))')
    log "dry run: nothing applied; terraform/$cloud would get ${file#"$ROOT"/}:"
    # shellcheck disable=SC2086 # the outputs, one word each, in name order
    backend_block $names
    echo "dry run: no state store created, no backend file written" >&2
    return 0
  fi
  log "terraform apply (terraform/state/$cloud)"
  # shellcheck disable=SC2086 # STATE_TF_ARGS is a list of flags
  tf_state apply -input=false "${STATE_TF_VARS[@]}" ${AUTO_APPROVE:+-auto-approve} ${STATE_TF_ARGS:-}
  local names
  names=$(tf_state output -json | python3 -c '
import json, sys
print(" ".join(str(o["value"]) for _, o in sorted(json.load(sys.stdin).items())))')
  # shellcheck disable=SC2086 # the outputs, one word each, in name order
  backend_block $names >"$file"
  log "wrote ${file#"$ROOT"/}: $(backend_summary "$file")"
  echo "next: scripts/$cloud/apply.sh keeps the state there. A local terraform/$cloud/terraform.tfstate with" \
    "resources is moved by MIGRATE_STATE=1 scripts/$cloud/apply.sh (or terraform -chdir=terraform/$cloud init -migrate-state)." >&2
}
