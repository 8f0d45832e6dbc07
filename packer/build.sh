#!/usr/bin/env bash
# Build the plcfleet host box for one or more providers, as output/plcfleet-debian12-*.box:
#
#   packer/build.sh [--source-only] virtualbox|vmware|qemu... [-- PACKER BUILD ARGS]
#   packer/build.sh qemu -- -var headless=false -var qemu_accelerator=hvf
#
# Stages packer/payload/ first (packer/stage.sh; --source-only makes a box that builds
# plcfleet at first boot instead of carrying prebuilt binaries and images). Needs the
# hypervisor, and the internet for the Debian ISO and packages.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

stage_args=()
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --source-only) stage_args+=(--source-only) ;;
    virtualbox) only+=(virtualbox-iso.debian12) ;;
    vmware) only+=(vmware-iso.debian12) ;;
    qemu | libvirt) only+=(qemu.debian12) ;;
    --)
      shift
      break
      ;;
    *)
      echo "build.sh: unknown argument '$1' (providers: virtualbox, vmware, qemu)" >&2
      exit 2
      ;;
  esac
  shift
done
if [ ${#only[@]} -eq 0 ]; then
  echo "usage: packer/build.sh [--source-only] virtualbox|vmware|qemu... [-- PACKER ARGS]" >&2
  exit 2
fi

# The +-form because macOS's bash 3.2 calls an empty array unbound.
"$here/stage.sh" ${stage_args[@]+"${stage_args[@]}"}
# The ISO is cached beside the template, not in whatever directory this was run from.
export PACKER_CACHE_DIR="${PACKER_CACHE_DIR:-$here/packer_cache}"
cd "$here"
only_list="$(IFS=,; echo "${only[*]}")"
# -force: replace output/vm-* left by an earlier build.
packer build -force -only="$only_list" "$@" .
ls -l "$here"/output/*.box
