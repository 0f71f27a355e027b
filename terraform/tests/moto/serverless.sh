#!/usr/bin/env bash
# terraform/serverless/aws applied for real against moto, as run.sh does for terraform/aws: the
# real hashicorp/aws provider from the local filesystem mirror, a private moto_server on
# 127.0.0.1, dummy credentials. Steps: init (mirror only) + validate; apply with a stand-in zip
# (moto stores the code and never runs it); the function, its URL, policy, table and environment
# read back (serverless_check.py: the write key's digest is in the environment, the key is not); a
# second plan that must show no changes; destroy; nothing left behind.
# Not applied here: function_url_invoke.tf (aws_lambda_permission.invoked_via_function_url is new
# in provider 6.28; the mirror has 5.100), so serverless_override.tf pins 5.100 for the harness.
# Without the mirror (or terraform) this says why and exits 0: skipped, not failed.
# Env: TF_PLUGIN_MIRROR (default /opt/tf-plugins); KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

AWS_PROVIDER_VERSION="5.100.0"
mirror=${TF_PLUGIN_MIRROR:-/opt/tf-plugins}
region=us-east-2
name=candidates-fn

skip() {
  echo "moto apply of terraform/serverless/aws: SKIPPED: $*" >&2
  exit 0
}
command -v terraform >/dev/null || skip "terraform is not installed"
[[ -d $mirror/registry.terraform.io/hashicorp/aws/$AWS_PROVIDER_VERSION/linux_amd64 ]] ||
  skip "no hashicorp/aws $AWS_PROVIDER_VERSION in the provider mirror $mirror; this step never downloads providers"
if ! command -v moto_server >/dev/null; then
  echo "installing moto[server] (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6"
fi
python3 -c 'import boto3' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check boto3

work=$(mktemp -d)
moto_pid=""
cleanup() {
  if [[ -n $moto_pid ]]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Nothing leaves this machine: dummy credentials, no instance metadata, a dead proxy for anything
# that is not 127.0.0.1.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=$region
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  curl -sf --noproxy '*' "$endpoint/moto-api/" >/dev/null 2>&1 && break
  kill -0 "$moto_pid" 2>/dev/null || { tail -n 40 "$work/moto.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf --noproxy '*' "$endpoint/moto-api/" >/dev/null || { echo "moto_server did not come up" >&2; exit 1; }
echo "moto_server $(python3 -c 'import moto; print(moto.__version__)') on $endpoint"

# The root without function_url_invoke.tf, plus the override and the harness's variable.
mkdir -p "$work/root"
find "$root/terraform/serverless/aws" -maxdepth 1 -name '*.tf' ! -name function_url_invoke.tf \
  ! -name '*_override.tf' -exec cp {} "$work/root/" \;
cp "$here/moto_variables.tf" "$work/root/"
cp "$here/serverless_override.tf" "$work/root/moto_override.tf"
cat >"$work/cli.tfrc" <<EOT
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
EOT
export TF_CLI_CONFIG_FILE=$work/cli.tfrc TF_DATA_DIR=$work/tf-data
# A stand-in package: moto keeps the zip and never runs it.
python3 - "$work/bootstrap.zip" <<'EOT'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    z.writestr(info, "#!/bin/sh\nexit 0\n")
EOT
cd "$work/root"

vars=(-var "moto_endpoint=$endpoint" -var "region=$region" -var "name=$name" -var "package=$work/bootstrap.zip")
tf() { timeout 600 terraform "$@" -no-color; }
start=$SECONDS
step() { echo "--- $* ($((SECONDS - start))s)"; }

step "terraform init (mirror only) + validate"
tf init -backend=false -input=false >"$work/init.log" || { cat "$work/init.log" >&2; exit 1; }
tf validate

python3 "$here/serverless_check.py" "$endpoint" "$region" snapshot "$work/before.json"

step "terraform apply against moto (aws $AWS_PROVIDER_VERSION)"
if ! tf apply -auto-approve -input=false "${vars[@]}" >"$work/apply.log" 2>&1; then
  tail -n 60 "$work/apply.log" >&2
  echo "apply failed; destroying what it made" >&2
  tf destroy -auto-approve -input=false "${vars[@]}" >/dev/null 2>&1 || true
  exit 1
fi
grep -E "^Apply complete" "$work/apply.log"
write_key=$(terraform output -raw write_key)
if grep -qF -- "$write_key" "$work/apply.log"; then
  echo "the apply's output shows the write key" >&2
  exit 1
fi
echo "function_url: $(terraform output -raw function_url)"
WRITE_KEY=$write_key python3 "$here/serverless_check.py" "$endpoint" "$region" applied "$name"

step "second plan: must show no changes"
plan_status=0
tf plan -detailed-exitcode -input=false "${vars[@]}" >"$work/plan.log" 2>&1 || plan_status=$?
if [[ $plan_status -ne 0 ]]; then
  grep -v -E "Refreshing state|Reading\.\.\.|Read complete" "$work/plan.log" >&2
  echo "the second plan is not empty (exit $plan_status)" >&2
fi
grep -E "^No changes|^Plan:" "$work/plan.log" || true

step "terraform destroy"
if ! tf destroy -auto-approve -input=false "${vars[@]}" >"$work/destroy.log" 2>&1; then
  tail -n 60 "$work/destroy.log" >&2
  exit 1
fi
grep -E "^Destroy complete" "$work/destroy.log"

step "nothing left in moto"
python3 "$here/serverless_check.py" "$endpoint" "$region" leftovers "$work/before.json"
[[ $plan_status -eq 0 ]] || exit 1
echo "moto apply of terraform/serverless/aws: passed in $((SECONDS - start))s"
