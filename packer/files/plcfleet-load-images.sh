#!/usr/bin/env bash
# Load every image saved in /opt/plcfleet/images (docker save archives) into Docker.
# Installed as /usr/local/lib/plcfleet/load-images; run by plcfleet-images.service at
# boot and by packer/scripts/plcfleet.sh. Loading an image Docker already has only
# re-tags it, so it runs every time rather than keeping state that could go stale (an
# image removed by hand comes back at the next boot).
set -euo pipefail
dir="${PLCFLEET_IMAGES_DIR:-/opt/plcfleet/images}"
shopt -s nullglob
archives=("$dir"/*.tar)
if [ ${#archives[@]} -eq 0 ]; then
  echo "plcfleet: no saved images in $dir"
  exit 0
fi
for archive in "${archives[@]}"; do
  docker load --input "$archive"
done
