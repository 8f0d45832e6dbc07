#!/usr/bin/env bash
# Last Packer step: make the image small and safe to clone. Not run on Vagrant machines.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

rm -rf /tmp/plcfleet-files /tmp/plcfleet-payload
apt-get -y -qq autoremove --purge
apt-get -qq clean
rm -rf /var/lib/apt/lists/*

# Every clone gets its own machine-id at first boot; a shared one would give all boxes of
# a multi-machine setup the same DHCP client identity and journal ids.
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id

journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null 2>&1 || true
rm -f ~vagrant/.bash_history /root/.bash_history

# Zeroed free space compresses to nothing in the .box. dd stops at "no space left".
dd if=/dev/zero of=/var/tmp/zero bs=1M status=none || true
rm -f /var/tmp/zero
sync
