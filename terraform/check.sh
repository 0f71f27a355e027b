#!/usr/bin/env bash
# Offline checks of terraform/ (no providers, no credentials, no network):
#   - terraform fmt -check on every module;
#   - checkov (PyPI, in a venv under .ci-cache) on each cloud's module, with --skip-download and,
#     where unshare works, inside a network namespace with no network at all: every failed check
#     must be fixed or skipped in code with a one-line reason;
#   - terraform init + validate of modules/instance-config (no providers, so it works offline);
#   - that terraform/tests/provider-schemas.json, which terraform/invariants/tests/invariants/schema.rs checks
#     every block and reference against (attribute and block names, required settings), is what
#     the pinned provider packages on PyPI say;
#   - terraform/tests: that module applied for real in a throwaway root and its cloud-init
#     document parsed as YAML, and the instance drain scripts against a fake metadata server on
#     127.0.0.1;
#   - terraform/tests/moto/run.sh: terraform/aws validated, applied, re-planned (no changes) and
#     destroyed with the real aws provider (a local filesystem mirror, never a download) against a
#     private moto_server on 127.0.0.1, and nothing left behind; skipped, with the reason, when the
#     mirror is missing; terraform/tests/moto/serverless.sh does the same for terraform/serverless/aws.
# The HCL invariants (ports, health paths, permissions, open ingress) are a cargo test:
# terraform/invariants/tests/invariants/. Not run here: `terraform init/validate/plan` of azure and gcp
# (they download providers and plan needs credentials); modules/instance-config has no providers,
# and terraform/aws runs from the local mirror against moto (above).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
VENV=$root/.ci-cache/checkov-venv
clouds=(aws azure gcp)
export CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null

if command -v terraform >/dev/null; then
  echo "$(terraform version | head -n 1): fmt -check"
  terraform fmt -check -recursive -diff .
  echo "terraform validate modules/instance-config"
  work=$(mktemp -d)
  cp -r modules/instance-config/. "$work/"
  (cd "$work" && terraform init -backend=false -input=false >/dev/null && terraform validate -no-color)
  rm -rf "$work"
else
  echo "terraform not installed: fmt not checked (the image of this machine kind has 1.11)" >&2
fi

if [[ ! -x $VENV/bin/checkov ]]; then
  echo "installing checkov (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov>=3.2.500,<4"
fi
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); fi
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
# The deployments, their state stores (terraform/state/<cloud>, scripts/<cloud>/bootstrap-state.sh)
# and the serverless roots (terraform/serverless/<cloud>).
for cloud in "${clouds[@]}" "${clouds[@]/#/state/}" serverless/aws serverless/azure serverless/gcp; do
  echo "checkov $("$VENV/bin/checkov" --version) on terraform/$cloud${offline:+ (no network)}"
  "${offline[@]}" "$VENV/bin/checkov" -d "$cloud" --framework terraform --skip-download --quiet --compact
done

echo "provider schemas (terraform/tests/provider-schemas.json) current"
"$VENV/bin/python" tests/provider_schemas.py --check

echo "terraform/tests"
(cd tests && "$VENV/bin/python" -m unittest -v 2>&1)

echo "terraform/aws against moto (terraform/tests/moto/run.sh)"
tests/moto/run.sh

echo "terraform/serverless/aws against moto (terraform/tests/moto/serverless.sh)"
tests/moto/serverless.sh
