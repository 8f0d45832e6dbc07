#!/usr/bin/env bash
# Kernel and process limits for about a thousand simulator containers on one box. The
# values and their reasons are in the files installed here (packer/files/60-plcfleet.conf
# first). Idempotent; runs as root.
set -euo pipefail
files="${PLCFLEET_FILES:-/tmp/plcfleet-files}"

install -m 0644 "$files/60-plcfleet.conf" /etc/sysctl.d/60-plcfleet.conf
install -m 0644 "$files/plcfleet-modules.conf" /etc/modules-load.d/plcfleet.conf
install -m 0644 "$files/plcfleet-limits.conf" /etc/security/limits.d/60-plcfleet.conf
install -d -m 0755 /etc/systemd/system.conf.d
install -m 0644 "$files/plcfleet-systemd.conf" /etc/systemd/system.conf.d/60-plcfleet.conf

# Now, not only at the next boot.
grep -Ev '^[[:space:]]*(#|$)' "$files/plcfleet-modules.conf" | xargs -r modprobe -a
# -e: a kernel without IPv6 has no net.ipv6 keys; the ones that matter are read back below.
sysctl -q -e -p /etc/sysctl.d/60-plcfleet.conf
systemctl daemon-reexec

# Read back what matters most: a silently ignored setting would only show at ~500
# simulators, as ARP failures.
check() {
  local got
  got="$(sysctl -n "$1")"
  if [ "$got" != "$2" ]; then
    echo "sysctl: $1 is $got, expected $2" >&2
    exit 1
  fi
  printf 'sysctl: %s = %s\n' "$1" "$got"
}
check net.ipv4.neigh.default.gc_thresh3 32768
check net.core.netdev_max_backlog 16384
check net.ipv4.conf.all.arp_ignore 1
check net.ipv4.ip_forward 1
check fs.inotify.max_user_instances 8192
