#!/usr/bin/env bash
# plcfleet-macvlan-shim up|down|status — let this host reach its own macvlan simulators.
#
# A macvlan child never exchanges frames with its parent interface: simulators on a
# `driver: macvlan` fleet network answer the whole LAN but not the Docker host they run
# on, so plcfleet's health probes (ListIdentity on each simulator's own IP) and any
# client on the box would time out. The fix is a macvlan interface of the host's own, in
# bridge mode on the same parent (macvlan siblings in bridge mode do talk to each
# other), with an address and routes to the simulators' addresses.
#
# Installed as /usr/local/sbin/plcfleet-macvlan-shim and run by
# plcfleet-macvlan-shim.service; configured by the environment, normally from
# /etc/default/plcfleet-macvlan-shim:
#   PLCFLEET_SHIM_ADDRESS  the shim's address, e.g. 10.213.7.254/32; empty: do nothing
#   PLCFLEET_SHIM_ROUTES   space-separated CIDRs of simulators to reach through the shim,
#                          e.g. "10.213.4.0/22" (the fleet's addresses, not the whole
#                          subnet: the parent's own address must stay reachable by eth1)
#   PLCFLEET_SHIM_PARENT   the fleet network's `parent:`; empty: the interface that
#                          routes to the first of PLCFLEET_SHIM_ROUTES today
#   PLCFLEET_SHIM_NAME     the shim's name [plcfleet0]
set -euo pipefail

name="${PLCFLEET_SHIM_NAME:-plcfleet0}"
address="${PLCFLEET_SHIM_ADDRESS:-}"
routes="${PLCFLEET_SHIM_ROUTES:-}"
parent="${PLCFLEET_SHIM_PARENT:-}"

die() {
  printf 'plcfleet-macvlan-shim: %s\n' "$*" >&2
  exit 1
}

down() {
  # Deleting the link takes its address and routes with it.
  if ip link show dev "$name" >/dev/null 2>&1; then
    ip link delete dev "$name"
  fi
}

find_parent() {
  local first="${routes%% *}"
  [ -n "$first" ] || die "PLCFLEET_SHIM_PARENT is empty and there is no route to guess it from: set PLCFLEET_SHIM_PARENT"
  ip -o route get "${first%/*}" | sed -n 's/.* dev \([^ ]*\).*/\1/p'
}

up() {
  if [ -z "$address" ]; then
    echo "plcfleet-macvlan-shim: PLCFLEET_SHIM_ADDRESS is empty, nothing to do (see /etc/default/plcfleet-macvlan-shim)"
    return 0
  fi
  case "$address" in */*) ;; *) address="$address/32" ;; esac
  # Start from nothing, so that a changed setting never leaves an old route behind, and
  # so that guessing the parent does not find the shim itself.
  down
  [ -n "$parent" ] || parent="$(find_parent)"
  [ -n "$parent" ] || die "no interface routes to ${routes%% *}: set PLCFLEET_SHIM_PARENT"
  ip link show dev "$parent" >/dev/null 2>&1 || die "parent interface $parent does not exist"
  [ "$parent" != "$name" ] || die "the parent cannot be the shim itself"

  ip link add "$name" link "$parent" type macvlan mode bridge
  ip address add "$address" dev "$name"
  ip link set dev "$name" up
  for route in $routes; do
    # src: replies come back to the shim, never to the parent's own address, which the
    # simulators cannot reach.
    ip route replace "$route" dev "$name" src "${address%/*}"
  done
  echo "plcfleet-macvlan-shim: $name on $parent, $address, routes: ${routes:-none}"
}

status() {
  ip -d address show dev "$name"
  ip route show dev "$name"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: plcfleet-macvlan-shim up|down|status" >&2
    exit 2
    ;;
esac
