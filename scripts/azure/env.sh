# Azure settings shared by the scripts in this folder. Source it.
# shellcheck shell=bash
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/lib.sh"
# shellcheck source=scripts/deploy/state.sh
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/state.sh"

LOCATION=${AZURE_LOCATION:-centralus}
# Packer's managed images live in a resource group of their own, outside Terraform's.
IMAGE_RG=${IMAGE_RG:-candidates-images}
# shellcheck disable=SC2034 # used by the scripts that source this file
TF_DIR=azure
# shellcheck disable=SC2034
TF_VARS=(-var "location=$LOCATION" -var "name=$STACK")

# The operator's SSH public key for the instances' admin user (Terraform's admin_ssh_public_key,
# required: Terraform no longer generates a key pair, whose private half would sit unencrypted in
# the state). ADMIN_SSH_PUBLIC_KEY (the key itself) or SSH_PUBLIC_KEY_FILE, else
# ~/.ssh/id_ed25519.pub or ~/.ssh/id_rsa.pub. Appends the -var to TF_VARS.
add_admin_key_var() {
  local key=${ADMIN_SSH_PUBLIC_KEY:-} file
  if [[ -z $key ]]; then
    for file in ${SSH_PUBLIC_KEY_FILE:-} "$HOME/.ssh/id_ed25519.pub" "$HOME/.ssh/id_rsa.pub"; do
      if [[ -r $file ]]; then
        key=$(<"$file")
        break
      fi
    done
  fi
  [[ -n $key ]] || die "no SSH public key: set ADMIN_SSH_PUBLIC_KEY or SSH_PUBLIC_KEY_FILE, or create one" \
    "(ssh-keygen -t ed25519); Terraform needs it for the instances' admin user (docs/deploy-azure.md)"
  TF_VARS+=(-var "admin_ssh_public_key=$key")
}

# A service principal, as the original: ARM_* for Terraform and Packer, and the az CLI logged in
# with the same identity, but in a configuration directory of its own (AZURE_CONFIG_DIR, exported
# so that Packer's use_azure_cli_auth uses the same login; CANDIDATES_AZURE_CONFIG_DIR overrides
# ~/.config/candidates/az-<client id>): the operator's own `az login` in ~/.azure is left as it
# was instead of being replaced by the service principal.
check_azure() {
  require_tools az terraform
  local missing=()
  for v in ARM_CLIENT_ID ARM_CLIENT_SECRET ARM_TENANT_ID ARM_SUBSCRIPTION_ID; do
    [[ -n ${!v:-} ]] || missing+=("$v")
  done
  ((${#missing[@]} == 0)) || die "set ${missing[*]} (a service principal; see docs/deploy-azure.md)"
  export AZURE_CONFIG_DIR=${CANDIDATES_AZURE_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/candidates/az-$ARM_CLIENT_ID}
  mkdir -p "$AZURE_CONFIG_DIR"
  chmod 700 "$AZURE_CONFIG_DIR"
  # Already logged in as the principal in this directory (say with a certificate, which keeps the
  # secret off the command line): keep that session. Else log in with the secret; it is on
  # az's command line for the seconds that takes (docs/deploy-azure.md).
  if [[ $(az account show --query user.name --output tsv 2>/dev/null) != "$ARM_CLIENT_ID" ]]; then
    az login --service-principal --username "$ARM_CLIENT_ID" --password "$ARM_CLIENT_SECRET" \
      --tenant "$ARM_TENANT_ID" --output none || die "az login with the service principal failed"
  fi
  az account set --subscription "$ARM_SUBSCRIPTION_ID"
}

# vmss_run_tail RG VMSS INSTANCE_ID: runs stdin as a shell script as root on one scale set
# instance (run-command, RunShellScript) and prints Run Command's message: only the last 4,096
# bytes of each stream.
vmss_run_tail() {
  az vmss run-command invoke --resource-group "$1" --name "$2" --instance-id "$3" \
    --command-id RunShellScript --scripts "$(cat)" --query 'value[0].message' --output tsv
}

# vmss_run RG VMSS INSTANCE_ID: runs stdin as a shell script as root on one scale set instance
# and prints the script's whole standard output, however long; returns the script's exit status.
# The transport calibrate.sh and scale-demo.sh hand to scripts/deploy/lib.sh. Run Command keeps
# only the last 4,096 bytes of each stream, which cut the front off calibrate-instance.sh's one-line
# JSON report (~6 KB with its timeline). So the script goes to the instance as a file and its
# standard output to another; the first call prints the script's status and the gzip+base64 length
# of that output, then the encoded output comes back in pieces of RUN_CHUNK (3,000) characters,
# each well inside the 4,096 bytes with Run Command's own framing, and is decoded here. The last
# 2 KB of the script's standard error go to this standard error.
vmss_run() {
  local rg=$1 vmss=$2 id=$3 chunk=${RUN_CHUNK:-3000}
  local dir="/var/tmp/candidates-run-$$-$RANDOM" script message status length offset encoded=""
  script=$(base64 -w0)
  message=$(vmss_run_tail "$rg" "$vmss" "$id" <<EOF
mkdir -p $dir && echo $script | base64 -d >$dir/script
bash $dir/script >$dir/out 2>$dir/err
status=\$?
tail -c 2000 $dir/err
echo "run-status=\$status run-length=\$(gzip -c $dir/out | base64 -w0 | wc -c)"
EOF
  ) || return
  if [[ ! $message =~ run-status=([0-9]+)\ run-length=([0-9]+) ]]; then
    printf '%s\n' "$message" >&2
    die "vmss_run: no status line from instance $id (output above)"
  fi
  status=${BASH_REMATCH[1]} length=${BASH_REMATCH[2]}
  grep -v -e '^run-status=' -e '^Enable succeeded' -e '^\[std\(out\|err\)\]$' <<<"$message" >&2 || true
  for ((offset = 0; offset < length; offset += chunk)); do
    message=$(vmss_run_tail "$rg" "$vmss" "$id" <<<"echo run-chunk=\$(gzip -c $dir/out | base64 -w0 | cut -c $((offset + 1))-$((offset + chunk)))") ||
      return
    [[ $message =~ run-chunk=([A-Za-z0-9+/=]*) ]] || die "vmss_run: the piece at $offset of $length is missing"
    encoded+=${BASH_REMATCH[1]}
  done
  vmss_run_tail "$rg" "$vmss" "$id" <<<"rm -rf $dir" >/dev/null || true
  ((${#encoded} == length)) || die "vmss_run: fetched ${#encoded} of $length characters"
  base64 -d <<<"$encoded" | gunzip
  return "$status"
}
