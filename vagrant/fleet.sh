#!/usr/bin/env bash
# Write this box's example fleet, /etc/plcfleet/fleet.yaml: one macvlan network on the
# private (or bridged) NIC, whose simulators are on the same network as the host that
# runs Vagrant, and each box of a multi-machine setup in its own slice of addresses.
# Run by the Vagrantfile, which computes the addresses; not part of the Packer build.
# Runs as root.
set -euo pipefail

: "${PLCFLEET_FLEET_NAME:?}" "${PLCFLEET_SUBNET:?}" "${PLCFLEET_GATEWAY:?}"
: "${PLCFLEET_BOX_IP:?}" "${PLCFLEET_IP_START:?}" "${PLCFLEET_SIMULATORS:?}"
image="${PLCFLEET_IMAGE:-cpppo/scada:latest}"

# The fleet network's parent is the NIC Vagrant gave the box's address on that network;
# found by address, because its name depends on the box (eth1 on ours, maybe not on a
# stock one).
parent="$(ip -o -4 address show | awk -v ip="$PLCFLEET_BOX_IP" '{ split($4, a, "/"); if (a[1] == ip) print $2 }')"
if [ -z "$parent" ]; then
  echo "fleet.sh: no interface has $PLCFLEET_BOX_IP; is the private network up?" >&2
  exit 1
fi

install -d -m 0755 /etc/plcfleet
cat >/etc/plcfleet/fleet.yaml.new <<YAML
# Written by vagrant/fleet.sh at provisioning; \`vagrant provision\` rewrites it.
# $PLCFLEET_SIMULATORS simulators from $PLCFLEET_IP_START, each on its own address of
# $PLCFLEET_SUBNET, through a macvlan network on $parent (the box's $PLCFLEET_BOX_IP).
#   plcfleet apply /etc/plcfleet/fleet.yaml
kind: Fleet
metadata:
  name: $PLCFLEET_FLEET_NAME
spec:
  backend: docker
  image: $image
  network:
    name: $PLCFLEET_FLEET_NAME
    driver: macvlan
    parent: $parent
    subnet: $PLCFLEET_SUBNET
    gateway: $PLCFLEET_GATEWAY
  defaults:
    tags: { SCADA: "DINT[1000]" }
  simulators:
    - name: $PLCFLEET_FLEET_NAME-{index:04}
      replicas: $PLCFLEET_SIMULATORS
      ipStart: $PLCFLEET_IP_START
YAML
mv /etc/plcfleet/fleet.yaml.new /etc/plcfleet/fleet.yaml
echo "fleet.sh: /etc/plcfleet/fleet.yaml: $PLCFLEET_SIMULATORS simulators from $PLCFLEET_IP_START on $parent"
