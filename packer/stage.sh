#!/usr/bin/env bash
# Fill packer/payload/ with what goes into a box (Packer uploads it, and so does the
# Vagrantfile, which runs this script before `vagrant up` and `vagrant provision`):
#
#   src.tar.gz     the committed tree (git archive HEAD): what a box builds from when it
#                  has no prebuilt binaries. Uncommitted changes are NOT in it.
#   REVISION       the commit it came from
#   bin/           prebuilt plcfleet and enip-server, if this host has static Linux x86-64
#                  builds of them (docker/build.sh makes them) — else none
#   images/*.tar   `docker save` of cpppo/scada:latest and plcfleet/controller:latest, if
#                  this host's Docker has them — else none
#
#   packer/stage.sh [--source-only]
#
# --source-only leaves bin/ and images/ empty, for a box that builds on first boot.
# Environment: PLCFLEET_BIN_DIR (where to look for binaries first), PLCFLEET_IMAGES
# (images to save, space-separated). Safe to run concurrently (multi-machine `vagrant up`
# on libvirt does): every file is written aside and renamed into place.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
payload="$here/payload"
source_only=0
for arg in "$@"; do
  case "$arg" in
    --source-only) source_only=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "stage.sh: unknown argument '$arg' (see --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf 'stage: %s\n' "$*"; }

mkdir -p "$payload/bin" "$payload/images"
tmp="$(mktemp -d "$payload/.stage.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# --- source --------------------------------------------------------------------------------
if git -C "$root" rev-parse --verify -q HEAD >/dev/null; then
  revision="$(git -C "$root" rev-parse HEAD)"
  if [ "$(cat "$payload/REVISION" 2>/dev/null || true)" = "$revision" ] && [ -s "$payload/src.tar.gz" ]; then
    say "src.tar.gz is already $revision"
  else
    git -C "$root" archive --format=tar.gz -o "$tmp/src.tar.gz" HEAD
    echo "$revision" >"$tmp/REVISION"
    mv -f "$tmp/src.tar.gz" "$payload/src.tar.gz"
    mv -f "$tmp/REVISION" "$payload/REVISION"
    say "src.tar.gz from $revision"
  fi
  if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
    say "warning: uncommitted changes are not in src.tar.gz"
  fi
else
  # A tree without git (an unpacked release): take it as it is, minus build output.
  tar -czf "$tmp/src.tar.gz" -C "$root" --exclude=./target --exclude=./.git \
    --exclude=./.venv --exclude=./packer/payload --exclude=./packer/output \
    --exclude=./packer/packer_cache --exclude=.vagrant .
  echo unknown >"$tmp/REVISION"
  mv -f "$tmp/src.tar.gz" "$payload/src.tar.gz"
  mv -f "$tmp/REVISION" "$payload/REVISION"
  say "src.tar.gz from the working tree (not a git checkout)"
fi

# --- binaries ------------------------------------------------------------------------------
# Only static Linux x86-64 binaries run in the box whatever its libc; a build host's
# dynamically linked or macOS binaries would not.
is_static_linux() {
  command -v file >/dev/null 2>&1 &&
    file -bL "$1" | grep -Eq '^ELF 64-bit .*x86-64.*(statically linked|static-pie linked)'
}
for bin in plcfleet enip-server; do
  found=""
  if [ "$source_only" = 0 ]; then
    for dir in ${PLCFLEET_BIN_DIR:+"$PLCFLEET_BIN_DIR"} \
      "$root/target/x86_64-unknown-linux-gnu/release" \
      "$root/target/x86_64-unknown-linux-musl/release"; do
      if [ -x "$dir/$bin" ] && is_static_linux "$dir/$bin"; then
        found="$dir/$bin"
        break
      fi
    done
  fi
  if [ -n "$found" ]; then
    cp "$found" "$tmp/$bin"
    # A release build keeps debug info (40 MB instead of 6); the box has no use for it.
    # macOS's strip cannot strip an ELF file: the binary then goes in as it is.
    strip --strip-debug "$tmp/$bin" 2>/dev/null || true
    if cmp -s "$tmp/$bin" "$payload/bin/$bin"; then rm -f "$tmp/$bin"; else mv -f "$tmp/$bin" "$payload/bin/$bin"; fi
    say "bin/$bin from $found"
  else
    rm -f "$payload/bin/$bin"
  fi
done

# --- images --------------------------------------------------------------------------------
read -r -a images <<<"${PLCFLEET_IMAGES:-cpppo/scada:latest plcfleet/controller:latest}"
for image in "${images[@]}"; do
  archive="$payload/images/$(echo "${image%:*}" | tr '/' '_').tar"
  id=""
  if [ "$source_only" = 0 ] && command -v docker >/dev/null 2>&1; then
    id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  fi
  if [ -z "$id" ]; then
    rm -f "$archive" "$archive.id"
    continue
  fi
  if [ "$(cat "$archive.id" 2>/dev/null || true)" = "$id" ] && [ -s "$archive" ]; then
    say "images/${archive##*/} is already $image ($id)"
    continue
  fi
  docker save -o "$tmp/image.tar" "$image"
  echo "$id" >"$tmp/image.id"
  mv -f "$tmp/image.tar" "$archive"
  mv -f "$tmp/image.id" "$archive.id"
  say "images/${archive##*/} from $image ($id)"
done

if [ -z "$(ls -A "$payload/bin")" ] || [ -z "$(find "$payload/images" -name '*.tar')" ]; then
  say "no prebuilt binaries or images for everything: the box builds them from src.tar.gz"
fi
