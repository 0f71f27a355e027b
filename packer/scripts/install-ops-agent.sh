#!/usr/bin/env bash
# GCP images only (packer: `only = ["googlecompute.gcp"]`): installs Google's Ops Agent with the
# repository script its documentation gives ("Install the Ops Agent on an individual VM":
# add-google-cloud-ops-agent-repo.sh --also-install, which adds Google's signed apt repository),
# its configuration (packer/files/ops-agent.yaml: the service's JSON lines and its Prometheus
# metrics), and the same rsyslog rule and logrotate file as the AWS image, which put the service's
# JSON lines in /var/log/candidates/service.log for it. The configuration has nothing
# deployment-specific (the project comes from the metadata server), so the image carries it.
#
# ROOT=<dir> (tests) installs only the files into a throwaway root and prints the download and
# package steps instead of running them.
set -euo pipefail

SRC=${SRC:-/tmp/candidates}
ROOT=${ROOT:-}
ROOT=${ROOT%/}
REPO_SCRIPT_URL=https://dl.google.com/cloudagents/add-google-cloud-ops-agent-repo.sh

for f in candidates-rsyslog.conf candidates-logrotate logrotate-hourly.conf ops-agent.yaml; do
  [[ -f "$SRC/$f" ]] || { echo "install-ops-agent: $SRC/$f is missing" >&2; exit 1; }
done

install -d -m 0755 "$ROOT/etc/rsyslog.d" "$ROOT/etc/logrotate.d" "$ROOT/etc/systemd/system/logrotate.timer.d" "$ROOT/etc/google-cloud-ops-agent"
install -m 0644 -o root -g root "$SRC/candidates-rsyslog.conf" "$ROOT/etc/rsyslog.d/30-candidates.conf"
install -m 0644 -o root -g root "$SRC/candidates-logrotate" "$ROOT/etc/logrotate.d/candidates"
install -m 0644 -o root -g root "$SRC/logrotate-hourly.conf" "$ROOT/etc/systemd/system/logrotate.timer.d/hourly.conf"
install -m 0644 -o root -g root "$SRC/ops-agent.yaml" "$ROOT/etc/google-cloud-ops-agent/config.yaml"
if [[ -n "$ROOT" ]]; then
  install -d -m 0750 "$ROOT/var/log/candidates"
  echo "would run: chown syslog:adm /var/log/candidates"
  echo "would run: download $REPO_SCRIPT_URL, bash it with --also-install"
  exit 0
fi
# rsyslog runs as user syslog (Ubuntu drops its privileges), so it must own the directory; the
# agent runs as root and reads the file.
install -d -m 0750 -o syslog -g adm /var/log/candidates

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q rsyslog curl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/add-google-cloud-ops-agent-repo.sh" "$REPO_SCRIPT_URL"
bash "$work/add-google-cloud-ops-agent-repo.sh" --also-install
systemctl restart rsyslog
# The agent validates its configuration when it starts; a bad file fails the build here.
systemctl restart google-cloud-ops-agent
systemctl is-active --quiet google-cloud-ops-agent
echo "install-ops-agent: $(dpkg-query -W -f '${Package} ${Version}' google-cloud-ops-agent)"
