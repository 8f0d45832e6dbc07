#!/usr/bin/env bash
# Install the macvlan shim (packer/files/plcfleet-macvlan-shim.sh explains why a host
# cannot otherwise reach its own macvlan simulators) and configure it from this run's
# environment: PLCFLEET_SHIM_ADDRESS, PLCFLEET_SHIM_ROUTES, PLCFLEET_SHIM_PARENT,
# PLCFLEET_SHIM_NAME. Packer runs it with none set: the box gets the unit, disabled in
# effect until /etc/default/plcfleet-macvlan-shim gives it an address; the Vagrantfile
# sets them per machine. Idempotent; runs as root.
set -euo pipefail
files="${PLCFLEET_FILES:-/tmp/plcfleet-files}"
conf=/etc/default/plcfleet-macvlan-shim

install -m 0755 "$files/plcfleet-macvlan-shim.sh" /usr/local/sbin/plcfleet-macvlan-shim
install -m 0644 "$files/plcfleet-macvlan-shim.service" /etc/systemd/system/

# The parent is resolved now, while the network is up, and written down: at boot the unit
# may run before the route it would be guessed from exists.
parent="${PLCFLEET_SHIM_PARENT:-}"
routes="${PLCFLEET_SHIM_ROUTES:-}"
shim="${PLCFLEET_SHIM_NAME:-plcfleet0}"
if [ -n "${PLCFLEET_SHIM_ADDRESS:-}" ] && [ -z "$parent" ] && [ -n "$routes" ]; then
  first="${routes%% *}"
  parent="$(ip -o route get "${first%/*}" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' || true)"
  if [ "$parent" = "$shim" ]; then
    # Provisioned before: the route goes through the shim, whose link says its parent.
    parent="$(ip -o link show dev "$shim" | sed -n 's/^[0-9]*: [^@]*@\([^:]*\):.*/\1/p')"
  fi
  [ -n "$parent" ] || echo "macvlan-shim.sh: no route to $first yet; the parent is guessed at each start" >&2
fi

if [ -n "${PLCFLEET_SHIM_ADDRESS:-}" ] || [ ! -f "$conf" ]; then
  cat >"$conf" <<CONF
# plcfleet-macvlan-shim.service settings; see /usr/local/sbin/plcfleet-macvlan-shim.
# Then: systemctl restart plcfleet-macvlan-shim
PLCFLEET_SHIM_ADDRESS="${PLCFLEET_SHIM_ADDRESS:-}"
PLCFLEET_SHIM_ROUTES="${PLCFLEET_SHIM_ROUTES:-}"
PLCFLEET_SHIM_PARENT="$parent"
PLCFLEET_SHIM_NAME="$shim"
CONF
fi

systemctl daemon-reload
systemctl enable plcfleet-macvlan-shim.service
systemctl restart plcfleet-macvlan-shim.service
