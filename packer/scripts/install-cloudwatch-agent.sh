#!/usr/bin/env bash
# AWS images only (packer: `only = ["amazon-ebs.aws"]`): installs Amazon's CloudWatch agent from
# its Ubuntu package, verified against Amazon's signing key, and the rsyslog rule and logrotate
# file that put the service's JSON lines in /var/log/candidates/service.log for it. The agent is
# installed, not configured: each deployment's cloud-init writes its configuration (log group,
# Prometheus scrape) and candidates-cloudwatch-agent.service loads it (terraform/aws/observability.tf).
#
# The package and its signature come from the agent's documented download location; the key's
# fingerprint is the one the CloudWatch user guide publishes ("Verifying the signature of the
# CloudWatch agent package"), so a swapped key fails the build.
#
# ROOT=<dir> (tests) installs only the rsyslog and logrotate files into a throwaway root and prints
# the download and package steps instead of running them.
set -euo pipefail

SRC=${SRC:-/tmp/candidates}
ROOT=${ROOT:-}
ROOT=${ROOT%/}
BASE=https://amazoncloudwatch-agent.s3.amazonaws.com
PACKAGE_URL=$BASE/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb
KEY_URL=$BASE/assets/amazon-cloudwatch-agent.gpg
KEY_FINGERPRINT=937616F3450B7D806CBD9725D58167303B789C72

for f in candidates-rsyslog.conf candidates-logrotate logrotate-hourly.conf; do
  [[ -f "$SRC/$f" ]] || { echo "install-cloudwatch-agent: $SRC/$f is missing" >&2; exit 1; }
done

install -d -m 0755 "$ROOT/etc/rsyslog.d" "$ROOT/etc/logrotate.d" "$ROOT/etc/systemd/system/logrotate.timer.d"
install -m 0644 -o root -g root "$SRC/candidates-rsyslog.conf" "$ROOT/etc/rsyslog.d/30-candidates.conf"
install -m 0644 -o root -g root "$SRC/candidates-logrotate" "$ROOT/etc/logrotate.d/candidates"
install -m 0644 -o root -g root "$SRC/logrotate-hourly.conf" "$ROOT/etc/systemd/system/logrotate.timer.d/hourly.conf"
# rsyslog runs as user syslog (Ubuntu drops its privileges), so it must own the directory.
if [[ -n "$ROOT" ]]; then
  install -d -m 0750 "$ROOT/var/log/candidates"
  echo "would run: chown syslog:adm /var/log/candidates"
  echo "would run: download $PACKAGE_URL and its .sig, verify against $KEY_FINGERPRINT, dpkg -i"
  exit 0
fi
install -d -m 0750 -o syslog -g adm /var/log/candidates

export DEBIAN_FRONTEND=noninteractive
# rsyslog and gnupg are in Ubuntu's server images; installing them is a no-op there.
apt-get update -q
apt-get install -y -q rsyslog gnupg curl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/agent.deb" "$PACKAGE_URL"
curl -fsSL --retry 3 -o "$work/agent.deb.sig" "$PACKAGE_URL.sig"
curl -fsSL --retry 3 -o "$work/agent.gpg" "$KEY_URL"
export GNUPGHOME=$work/gnupg
install -d -m 0700 "$GNUPGHOME"
gpg --batch --quiet --import "$work/agent.gpg"
got=$(gpg --batch --with-colons --fingerprint | awk -F: '$1 == "fpr" {print $10; exit}')
[[ "$got" == "$KEY_FINGERPRINT" ]] || { echo "install-cloudwatch-agent: key fingerprint $got, want $KEY_FINGERPRINT" >&2; exit 1; }
gpg --batch --verify "$work/agent.deb.sig" "$work/agent.deb"
dpkg -i -E "$work/agent.deb"
systemctl restart rsyslog
echo "install-cloudwatch-agent: installed $(/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a status 2>/dev/null | tr -d '\n' | head -c 200)"
