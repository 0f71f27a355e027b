#!/usr/bin/env bash
# Offline checks of the image definition (no cloud, no plugin download):
#   - packer fmt -check on the template;
#   - packer validate on a copy without the blocks and builder options Debian's packer 1.6.6
#     predates (`packer {}` with required_plugins, variable `validation {}` rules, amazon-ebs
#     `metadata_options {}` and `temporary_security_group_source_public_ip`),
#     with its built-in amazon-ebs, azure-arm and googlecompute builders;
#   - systemd-analyze verify on the unit;
#   - shellcheck on every shell script of the repository.
# Not checked here: plugin versions (needs `packer init`, i.e. the network), the validation rules
# and metadata_options (need packer >= 1.7), and a real build (needs cloud credentials).
set -euo pipefail
cd "$(dirname "$0")/.."
packer_dir=$PWD

echo "packer $(packer version | head -n 1): fmt"
packer fmt -check -diff .

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/packer" "$work/dist"
python3 - "$packer_dir/candidates.pkr.hcl" "$work/packer/candidates.pkr.hcl" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()

NEWER_ATTRS = ["temporary_security_group_source_public_ip"]


def strip_block(text, header):
    """Removes every block whose first line matches `header` (a regex), braces balanced."""
    out, pos = [], 0
    for m in re.finditer(header, text, flags=re.M):
        if m.start() < pos:
            continue
        depth, i = 0, text.index("{", m.start())
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
        out.append(text[pos:m.start()])
        pos = j + 1
    out.append(text[pos:])
    return "".join(out)

text = strip_block(text, r"^packer \{")
text = strip_block(text, r"^\s*validation \{")
# amazon-ebs gained metadata_options (IMDSv2 on the build instance) after 1.6.6.
text = strip_block(text, r"^\s*metadata_options \{")
# Builder options newer than 1.6.6's built-in builders (checked by the HCL test instead,
# terraform/invariants/tests/invariants/rules.rs): one line each.
for attr in NEWER_ATTRS:
    text = re.sub(r"^\s*" + attr + r"\s*=.*\n", "", text, flags=re.M)
open(dst, "w").write(text)
PY
cp -r files scripts "$work/packer/"
: >"$work/dist/candidate-server"
: >"$work/dist/candidatectl"
(cd "$work/packer" && packer validate -var git_commit=0123abc -var gcp_project_id=example \
  -var azure_subscription_id=00000000-0000-0000-0000-000000000000 .)

if command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze verify candidates.service"
  unit_root=$(mktemp -d)
  mkdir -p "$unit_root/usr/local/bin"
  cp files/candidates.service "$unit_root/"
  # verify resolves ExecStart= and ExecStartPre=; point them at a stand-in executable.
  sed -e "s|/usr/local/bin/candidate-server|/bin/true|" -e "s|/usr/local/libexec/candidates-check-config|/bin/true|" \
    files/candidates.service >"$unit_root/candidates.service"
  # RestartSteps= and RestartMaxDelaySec= are systemd 254+ (the image's Ubuntu 24.04 has 255); an
  # older systemd here only warns that it does not know them, which is all that is tolerated.
  verify_out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit_root/candidates.service" 2>&1) || {
    echo "$verify_out" >&2
    exit 1
  }
  grep -v -E "Unknown key (name )?'(RestartSteps|RestartMaxDelaySec)'" <<<"$verify_out" | grep . >&2 && exit 1
  rm -rf "$unit_root"
else
  echo "systemd-analyze not installed: unit not verified" >&2
fi

echo "shellcheck"
cd ..
git ls-files '*.sh' | xargs shellcheck -x
shellcheck packer/files/candidates-check-config
