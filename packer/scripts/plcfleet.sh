#!/usr/bin/env bash
# Put plcfleet into the box, from what packer/stage.sh staged on the build host:
#   bin/*          prebuilt static binaries (plcfleet, enip-server) -> /usr/local/bin
#   images/*.tar   saved images (cpppo/scada, plcfleet/controller)  -> docker load
#   src.tar.gz     the committed source tree                        -> /opt/plcfleet/src
# Prebuilt is the fast path (the box is ready at first boot and needs no toolchain, and
# runs exactly what was tested on the build host). Without it the box builds from source
# with docker/build.sh: at first boot (PLCFLEET_BUILD=firstboot, what Packer does, so the
# box stays small and generic), during provisioning (now, what the Vagrantfile does), or
# not at all (never). Idempotent; runs as root.
set -euo pipefail
files="${PLCFLEET_FILES:-/tmp/plcfleet-files}"
payload="${PLCFLEET_PAYLOAD:-/tmp/plcfleet-payload}"
build="${PLCFLEET_BUILD:-firstboot}"
prefix=/opt/plcfleet

case "$build" in
  firstboot | now | never) ;;
  *)
    echo "plcfleet.sh: PLCFLEET_BUILD is '$build'; use firstboot, now or never" >&2
    exit 2
    ;;
esac

install -d -m 0755 "$prefix" "$prefix/images" /usr/local/lib/plcfleet /etc/plcfleet
install -m 0755 "$files/plcfleet-load-images.sh" /usr/local/lib/plcfleet/load-images
install -m 0755 "$files/plcfleet-build.sh" /usr/local/lib/plcfleet/build
install -m 0644 "$files/plcfleet-images.service" "$files/plcfleet-build.service" /etc/systemd/system/

shopt -s nullglob
for bin in "$payload"/bin/*; do
  install -m 0755 "$bin" /usr/local/bin/
  echo "plcfleet: installed prebuilt /usr/local/bin/${bin##*/}"
done
for archive in "$payload"/images/*.tar; do
  install -m 0644 "$archive" "$prefix/images/"
done
if [ -f "$payload/src.tar.gz" ]; then
  rm -rf "$prefix/src.new"
  mkdir "$prefix/src.new"
  tar -xzf "$payload/src.tar.gz" -C "$prefix/src.new"
  [ ! -f "$payload/REVISION" ] || install -m 0644 "$payload/REVISION" "$prefix/src.new/REVISION"
  rm -rf "$prefix/src"
  mv "$prefix/src.new" "$prefix/src"
  echo "plcfleet: source tree in $prefix/src, revision $(cat "$prefix/src/REVISION" 2>/dev/null || echo unknown)"
fi

systemctl daemon-reload
systemctl enable plcfleet-images.service
if systemctl is-active --quiet docker.service; then
  /usr/local/lib/plcfleet/load-images
fi

case "$build" in
  never) systemctl disable plcfleet-build.service ;;
  firstboot) systemctl enable plcfleet-build.service ;;
  now)
    systemctl enable plcfleet-build.service
    # Through systemd, so that a first-boot build already running is waited for rather
    # than raced (two rustup installs into one CARGO_HOME).
    echo "plcfleet: building if needed (journalctl -fu plcfleet-build in the box to watch)"
    if ! systemctl start plcfleet-build.service; then
      journalctl -u plcfleet-build.service -n 40 --no-pager >&2
      exit 1
    fi
    ;;
esac

for bin in plcfleet enip-server; do
  if [ -x "/usr/local/bin/$bin" ]; then
    echo "plcfleet: $("/usr/local/bin/$bin" --version 2>&1 | head -n 1)"
  else
    echo "plcfleet: no $bin yet (PLCFLEET_BUILD=$build)"
  fi
done
