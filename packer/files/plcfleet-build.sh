#!/usr/bin/env bash
# Build plcfleet, enip-server and the images (cpppo/scada, plcfleet/controller) from the
# source tree in /opt/plcfleet/src with the project's own docker/build.sh, and install the
# binaries in /usr/local/bin. For boxes made without prebuilt binaries and images: run at
# first boot by plcfleet-build.service, or during `vagrant up` of the stock Debian box.
# Does nothing when everything is already there.
#
# Installed as /usr/local/lib/plcfleet/build. Needs the network: Debian's mirror for the C
# toolchain, static.rust-lang.org for rustup (Debian 12 packages no rustup and its rustc is
# older than the workspace's rust-version), and crates.io.
set -euo pipefail

src="${PLCFLEET_SRC:-/opt/plcfleet/src}"
bindir=/usr/local/bin
export RUSTUP_HOME="${RUSTUP_HOME:-/opt/plcfleet/rustup}"
export CARGO_HOME="${CARGO_HOME:-/opt/plcfleet/cargo}"
export PATH="$CARGO_HOME/bin:$PATH"

missing() {
  local what=()
  [ -x "$bindir/enip-server" ] || what+=(enip-server)
  docker image inspect cpppo/scada:latest >/dev/null 2>&1 || what+=(cpppo/scada)
  # plcfleet and its controller image exist once crates/plcfleet does.
  if [ -f "$src/crates/plcfleet/Cargo.toml" ]; then
    [ -x "$bindir/plcfleet" ] || what+=(plcfleet)
    docker image inspect plcfleet/controller:latest >/dev/null 2>&1 || what+=(plcfleet/controller)
  fi
  echo "${what[*]:-}"
}

need="$(missing)"
if [ -z "$need" ]; then
  echo "plcfleet: binaries and images are installed; nothing to build"
  exit 0
fi
[ -x "$src/docker/build.sh" ] || {
  echo "plcfleet: $need missing and no $src/docker/build.sh to build them from" >&2
  exit 1
}
echo "plcfleet: building $need from $src"

export DEBIAN_FRONTEND=noninteractive
# docker/build.sh links static binaries with crt-static, which needs libc.a (libc6-dev).
tools=(gcc libc6-dev pkg-config curl ca-certificates)
absent=()
for pkg in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || absent+=("$pkg")
done
if [ ${#absent[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${absent[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable
fi

cd "$src"
docker/build.sh

host="$(rustc -vV | sed -n 's/^host: //p')"
for bin in enip-server plcfleet; do
  built="target/$host/release/$bin"
  if [ -x "$built" ]; then
    install -m 0755 "$built" "$bindir/$bin"
    echo "plcfleet: installed $bindir/$bin"
  fi
done

# The target directory is ~1.5 GB the box does not need; the toolchain stays for rebuilds.
rm -rf "$src/target"
left="$(missing)"
if [ -n "$left" ]; then
  echo "plcfleet: docker/build.sh succeeded but $left still missing" >&2
  exit 1
fi
echo "plcfleet: built and installed"
