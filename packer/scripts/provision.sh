#!/usr/bin/env bash
# Installs the candidates service on a machine image: a dedicated system user, the binary, the
# systemd unit with its configuration check, and an example environment file (documentation: the
# real one comes from cloud-init, and the service refuses to start without it). Runs as root from Packer's shell provisioner with
# the files uploaded to $SRC (default /tmp/candidates). No compiler or Python is installed.
#
# For tests, ROOT=<dir> installs into a throwaway root instead: the user and systemctl steps are
# printed, not run, and files keep root ownership.
set -euo pipefail

SRC=${SRC:-/tmp/candidates}
ROOT=${ROOT:-/}
ROOT=${ROOT%/}

for f in candidate-server candidatectl candidates.service candidates-check-config candidates.env.example; do
  [[ -f "$SRC/$f" ]] || { echo "provision: $SRC/$f is missing" >&2; exit 1; }
done

run() {
  if [[ -n "$ROOT" ]]; then echo "would run: $*"; else "$@"; fi
}

# The service user: no login, no home of its own (its state lives in /var/lib/candidates, made by
# systemd's StateDirectory=).
if [[ -z "$ROOT" ]] && id -u candidates >/dev/null 2>&1; then
  echo "user candidates exists"
else
  run useradd --system --user-group --no-create-home --home-dir /var/lib/candidates \
    --shell /usr/sbin/nologin --comment "candidates service" candidates
fi

group=root
[[ -z "$ROOT" ]] && group=candidates

install -d -m 0755 "$ROOT/usr/local/bin" "$ROOT/usr/local/libexec" "$ROOT/etc/systemd/system"
install -d -m 0750 -o root -g "$group" "$ROOT/etc/candidates"
install -m 0755 -o root -g root "$SRC/candidate-server" "$ROOT/usr/local/bin/candidate-server"
# The client, for operators on the box and for the deploy scripts' checks from inside the network.
install -m 0755 -o root -g root "$SRC/candidatectl" "$ROOT/usr/local/bin/candidatectl"
install -m 0644 -o root -g root "$SRC/candidates.service" "$ROOT/etc/systemd/system/candidates.service"
# The unit's ExecStartPre: no deployment configuration, no start.
install -m 0755 -o root -g root "$SRC/candidates-check-config" "$ROOT/usr/local/libexec/candidates-check-config"
# No candidates.env: only cloud-init writes it, from the deployment's user-data. An image with a
# default one would serve a private embedded store whenever user-data failed to arrive.
install -m 0644 -o root -g root "$SRC/candidates.env.example" "$ROOT/etc/candidates/candidates.env.example"

run systemctl daemon-reload
run systemctl enable candidates.service
echo "provision: installed $("$ROOT/usr/local/bin/candidate-server" --version)"
