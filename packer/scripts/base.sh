#!/usr/bin/env bash
# Box basics: the Vagrant user and its insecure key, guest tools, the few tools the other
# scripts use. Idempotent: it also runs on the stock debian/bookworm64 box, which has most
# of this already. Runs as root (Packer through sudo, Vagrant's shell provisioner).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local absent=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || absent+=("$pkg")
  done
  [ ${#absent[@]} -gt 0 ] || return 0
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${absent[@]}"
}

pkgs=(ca-certificates curl iproute2 rsync sudo)
case "$(systemd-detect-virt || true)" in
  kvm | qemu) pkgs+=(qemu-guest-agent) ;;
  vmware) pkgs+=(open-vm-tools) ;;
  # VirtualBox: its Guest Additions are not in Debian 12 main, and nothing here needs
  # them (the Vagrantfile uses no shared folder).
esac
apt_install "${pkgs[@]}"

if id vagrant >/dev/null 2>&1; then
  if [ ! -f /etc/sudoers.d/vagrant ]; then
    echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/vagrant
    chmod 0440 /etc/sudoers.d/vagrant
  fi
  # Vagrant's well-known insecure key: `vagrant up` logs in with it once and replaces it
  # with a key of the machine's own. Only when no key is there yet (a stock box has one).
  keys=~vagrant/.ssh/authorized_keys
  if [ ! -s "$keys" ]; then
    install -d -m 0700 -o vagrant -g vagrant ~vagrant/.ssh
    echo 'ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7PtixWKn5y2hMNG0zQPyUecp4pzC6kivAIhyfHilFR61RGL+GPXQ2MWZWFYbAGjyiYJnAmCP3NOTd0jMZEnDkbUvxhMmBYSdETk1rRgm+R4LOzFUGaHqHDLKLX+FIPKcF96hrucXzcWyLbIbEgE98OHlnVYCzRdK8jlqm8tehUc9c9WhQ== vagrant insecure public key' >"$keys"
    chown vagrant:vagrant "$keys"
    chmod 0600 "$keys"
  fi
fi

# No reverse-DNS lookup of the client at each login: on a host-only network there is no
# PTR record, and every `vagrant ssh` would wait for the resolver to time out.
if [ -d /etc/ssh/sshd_config.d ] && [ ! -f /etc/ssh/sshd_config.d/plcfleet.conf ]; then
  echo 'UseDNS no' >/etc/ssh/sshd_config.d/plcfleet.conf
  systemctl reload ssh || true
fi
