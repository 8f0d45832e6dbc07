#!/usr/bin/env bash
# Docker Engine from Debian's own packages (docker.io): no third-party apt repository to
# trust or reach, security updates with the rest of the system, and the same engine
# (20.10) that this project's CI tests against. Plus a daemon.json for ~1000 containers.
# Idempotent; runs as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
files="${PLCFLEET_FILES:-/tmp/plcfleet-files}"

absent=()
command -v dockerd >/dev/null 2>&1 || absent+=(docker.io)
# Debian's kernel enables AppArmor, and dockerd then applies its docker-default profile
# to every container: without apparmor_parser (a Recommends we skip) containers fail to
# start.
command -v apparmor_parser >/dev/null 2>&1 || absent+=(apparmor)
if [ ${#absent[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${absent[@]}"
fi

# daemon.json, and why each setting (JSON has no comments):
#   log-driver local, 1 MiB x 2 files: json-file logs grow without bound, and a thousand
#     containers that log every request (--print) fill the disk; this caps them at ~2 GB.
#   live-restore: containers keep running while dockerd restarts or is upgraded; plcfleet
#     then reconciles, instead of a thousand simulators restarting at once.
#   userland-proxy false: a published port is forwarded by iptables instead of one
#     docker-proxy process (~5 MB) per port.
#   default-address-pools 172.16.0.0/12 in /24s: Docker's default pools include
#     192.168.0.0/16, where VirtualBox's host-only networks (192.168.56.0/21) and most
#     LANs live; a network Docker picks there on its own would cut the box off.
install -d -m 0755 /etc/docker
changed=0
if ! cmp -s "$files/daemon.json" /etc/docker/daemon.json; then
  install -m 0644 "$files/daemon.json" /etc/docker/daemon.json
  changed=1
fi

systemctl enable containerd.service docker.service
if [ "$changed" = 1 ] || ! systemctl is-active --quiet docker.service; then
  systemctl restart docker.service
fi

# The vagrant user runs docker and plcfleet without sudo (docker group = root on this box,
# which is what a disposable simulator host is for).
if id vagrant >/dev/null 2>&1; then
  usermod -aG docker vagrant
fi

docker version --format 'docker: engine {{.Server.Version}}, API {{.Server.APIVersion}}'
