#!/usr/bin/env bash
# The host boxes' CI gate: everything that can be checked without booting a VM (none can
# boot on CI). Offline, a few seconds. Needs packer (1.6.6 is what Debian 12 ships),
# vagrant and shellcheck; .ci/run installs them.
#
#   packer/check.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

# HashiCorp's tools phone home for version checks; our machines may not.
export CHECKPOINT_DISABLE=1 VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1

echo "== packer fmt -check packer/"
packer fmt -check -diff packer

echo "== packer validate packer/ (virtualbox-iso, vmware-iso, qemu; vagrant post-processor)"
# Also proves every script and file the template names exists.
(cd packer && packer validate . && echo "packer/debian12.pkr.hcl is valid")
(cd packer && packer validate -var plcfleet_build=never . >/dev/null)
# Another point release takes its checksum from a SHA256SUMS file that validate would
# download: check only the syntax of that path.
(cd packer && packer validate -syntax-only -var debian_version=12.11.0 . >/dev/null)

echo "== vagrant validate --ignore-provider (in a copy: it leaves a .vagrant/ behind)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/packer/payload"
cp -R vagrant "$tmp/vagrant"
cp -R packer/files packer/scripts packer/stage.sh "$tmp/packer/"
cp packer/payload/README.md "$tmp/packer/payload/"
rm -rf "$tmp/vagrant/.vagrant"
(
  cd "$tmp/vagrant"
  vagrant validate --ignore-provider
  PLCFLEET_HOSTS=3 PLCFLEET_NETWORK=bridged PLCFLEET_SUBNET=192.168.56.0/21 PLCFLEET_BLOCK=23 \
    PLCFLEET_SIMULATORS=500 vagrant validate --ignore-provider
  # A plan that cannot fit must be refused with a reason, not half brought up.
  if out="$(PLCFLEET_HOSTS=64 vagrant validate --ignore-provider 2>&1)"; then
    echo "vagrant validate accepted 64 boxes of /22 in a /16" >&2
    exit 1
  fi
  grep -q 'more than 10.213.0.0/16 holds' <<<"$out" || {
    printf 'unexpected refusal:\n%s\n' "$out" >&2
    exit 1
  }
  echo "PLCFLEET_HOSTS=64 refused: ${out##*$'\n'}"
)

echo "== shellcheck (every provisioning and helper script)"
scripts=(packer/*.sh packer/scripts/*.sh packer/files/*.sh vagrant/*.sh)
shellcheck "${scripts[@]}"
echo "${#scripts[@]} scripts clean"

echo "== packer/files: sysctl keys exist, daemon.json parses"
# A mistyped key would be skipped with a warning at boot and show only at ~500
# simulators; this kernel has every key the box's does (nf_conntrack only once loaded).
while read -r key; do
  [ -e "/proc/sys/${key//.//}" ] && continue
  case "$key" in net.netfilter.*) [ -d /proc/sys/net/netfilter ] || continue ;; esac
  echo "packer/files/60-plcfleet.conf: no such sysctl: $key" >&2
  exit 1
done < <(sed -n 's/^\([a-z0-9_.]*\)[[:space:]]*=.*/\1/p' packer/files/60-plcfleet.conf)
python3 -m json.tool packer/files/daemon.json >/dev/null
echo "ok"
