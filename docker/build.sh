#!/usr/bin/env bash
# Build this workspace's Docker images from static binaries, with no registry and no base
# image: cargo links a static binary on the host, and each image is FROM scratch around it.
#
#   docker/build.sh              # cpppo/scada, and plcfleet/controller once it exists
#   docker/build.sh scada        # only cpppo/scada
#
# Run `docker/build.sh --help` for the settings.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: docker/build.sh [--help] [scada|controller]...

Builds static release binaries with cargo, then the images (default: all of them):
  scada       cpppo/scada:latest and cpppo/scada:<enip-server version>
              (the simulator; `docker run -p 44818:44818 cpppo/scada` serves SCADA=DINT[1000])
  controller  plcfleet/controller:latest and :<plcfleet version>
              (skipped, with a message, while crates/plcfleet does not exist)

Nothing is pulled and nothing is compiled inside Docker: each image's build context holds
only its Dockerfile and one binary. Debug info is left out of the binaries.

Environment:
  PROFILE   cargo profile to build with (default: dist — static, fat LTO, size-optimised:
            the simulator idles at 3.4 MiB; `release` builds faster)
  TARGET    Rust target (default: the host's; a *-linux-gnu one is linked with crt-static,
            a *-linux-musl one is static anyway)
  CARGO     cargo to run (default: cargo)
  DOCKER    docker client to run (default: docker; DOCKER_HOST is honoured)

Prerequisites: Rust with the standard library for TARGET, a C toolchain with static libc
(Debian: libc6-dev), and a reachable Docker engine.
EOF
}

die() {
  printf 'docker/build.sh: %s\n' "$*" >&2
  exit 1
}

say() {
  printf '== %s\n' "$*"
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

images=()
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      usage
      exit 0
      ;;
    scada | controller) images+=("$arg") ;;
    *)
      printf 'docker/build.sh: unknown argument "%s" (images: scada, controller; see --help)\n' "$arg" >&2
      exit 2
      ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(scada controller)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CARGO="${CARGO:-cargo}"
DOCKER="${DOCKER:-docker}"
PROFILE="${PROFILE:-dist}"

# --- prerequisites ------------------------------------------------------------------------

command -v "$CARGO" >/dev/null 2>&1 ||
  die "cargo not found: install Rust (https://rustup.rs), or set CARGO"
command -v rustc >/dev/null 2>&1 || die "rustc not found: install Rust (https://rustup.rs)"
command -v "$DOCKER" >/dev/null 2>&1 ||
  die "docker not found: install Docker Engine, or set DOCKER to its client"
if ! docker_err="$("$DOCKER" version --format '{{.Server.Version}}' 2>&1 >/dev/null)"; then
  die "cannot reach the Docker engine (${docker_err%%$'\n'*}): start it, or set DOCKER_HOST"
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
TARGET="${TARGET:-$host}"
case "$TARGET" in
  *-linux-gnu*) static_flags='-C target-feature=+crt-static' ;;
  *-linux-musl*) static_flags='' ;;
  *)
    die "the images need a Linux binary, and TARGET is $TARGET: set TARGET, e.g." \
      "TARGET=x86_64-unknown-linux-musl (rustup target add x86_64-unknown-linux-musl," \
      "with a linker for it configured for cargo)"
    ;;
esac

libdir="$(rustc --print target-libdir --target "$TARGET" 2>/dev/null || true)"
if ! compgen -G "$libdir/libstd-*.rlib" >/dev/null; then
  if command -v rustup >/dev/null 2>&1; then
    die "the Rust standard library for $TARGET is not installed: run" \
      "\`rustup target add $TARGET\`"
  fi
  die "the Rust standard library for $TARGET is not installed (no rustup here: install it" \
    "with your Rust distribution)"
fi

if [ -n "$static_flags" ]; then
  # crt-static on glibc links libc.a; without it the link fails deep in cargo's output.
  cc="${CC:-cc}"
  command -v "$cc" >/dev/null 2>&1 ||
    die "no C compiler \`$cc\` to link with: install one (Debian/Ubuntu: \`apt-get install gcc libc6-dev\`), or set CC"
  libc_a="$("$cc" -print-file-name=libc.a 2>/dev/null || true)"
  case "$libc_a" in
    /*) ;;
    *) die "no static C library (libc.a) for $cc: install it (Debian/Ubuntu:" \
      "\`apt-get install libc6-dev\`; Fedora: \`dnf install glibc-static\`)" ;;
  esac
fi

if [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
  die "CARGO_ENCODED_RUSTFLAGS is set and would override the static-linking RUSTFLAGS:" \
    "unset it, or put its flags in RUSTFLAGS"
fi

# --- what to build -------------------------------------------------------------------------

# Plain functions rather than associative arrays: macOS still ships bash 3.2.
image_of() {
  case "$1" in
    scada) echo cpppo/scada ;;
    controller) echo plcfleet/controller ;;
  esac
}
package_of() {
  case "$1" in
    scada) echo enip-server ;;
    controller) echo plcfleet ;;
  esac
}

selected=()
for i in "${images[@]}"; do
  if [ ! -f "crates/$(package_of "$i")/Cargo.toml" ]; then
    say "skipping $(image_of "$i"): crates/$(package_of "$i") does not exist yet"
    continue
  fi
  case " ${selected[*]:-} " in *" $i "*) ;; *) selected+=("$i") ;; esac
done
[ ${#selected[@]} -gt 0 ] || die "nothing to build"

cargo_args=(build --profile "$PROFILE" --target "$TARGET"
  # Images carry no debug info: 40 MB of it would ride along in every container.
  --config "profile.$PROFILE.debug=0" --config "profile.$PROFILE.strip=\"debuginfo\"")
for i in "${selected[@]}"; do
  cargo_args+=(-p "$(package_of "$i")" --bin "$(package_of "$i")")
done

say "cargo ${cargo_args[*]}  (RUSTFLAGS+=${static_flags:-none})"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$static_flags" "$CARGO" "${cargo_args[@]}"

target_dir="$("$CARGO" metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[ -n "$target_dir" ] || die "cannot find cargo's target directory in \`cargo metadata\`"
case "$PROFILE" in
  dev | test) profile_dir=debug ;;
  bench) profile_dir=release ;;
  *) profile_dir="$PROFILE" ;;
esac
bin_dir="$target_dir/$TARGET/$profile_dir"

# Reproducible labels: the commit and its time, not the wall clock, so an unchanged tree
# rebuilds to the same image.
revision=unknown
created=unknown
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision="$(git rev-parse HEAD)"
  git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
  created="$(git log -1 --format=%cI)"
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/plcfleet-images.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

# --- images --------------------------------------------------------------------------------

built=()
for i in "${selected[@]}"; do
  pkg="$(package_of "$i")"
  name="$(image_of "$i")"
  bin="$bin_dir/$pkg"
  [ -x "$bin" ] || die "cargo built no $bin"
  pkgid="$("$CARGO" pkgid -p "$pkg")"
  version="${pkgid##*[#@]}"
  sha="$(sha256 "$bin")"

  rm -rf "${ctx:?}/$i"
  mkdir -p "$ctx/$i"
  cp "docker/$i/Dockerfile" "$ctx/$i/Dockerfile"
  cp "$bin" "$ctx/$i/$pkg"
  chmod 0755 "$ctx/$i/$pkg"

  say "docker build $name:latest $name:$version"
  previous="$("$DOCKER" image inspect --format '{{.Id}}' "$name:latest" 2>/dev/null || true)"
  if ! out="$("$DOCKER" build --quiet \
    --tag "$name:latest" --tag "$name:$version" \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    --build-arg "BINARY_SHA256=$sha" \
    "$ctx/$i" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "docker build of $name failed"
  fi

  # A binary that is not static fails here, in an image with no dynamic loader.
  if ! out="$("$DOCKER" run --rm --read-only --cap-drop ALL "$name:latest" --version 2>&1)"; then
    die "$name:latest does not run (is $bin static?): $out"
  fi
  say "$name:latest runs: $out"
  # Drop the image this one replaces, so rebuilds leave no dangling images behind. Without
  # --force, Docker keeps it if a container still uses it or another tag names it.
  current="$("$DOCKER" image inspect --format '{{.Id}}' "$name:latest")"
  if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    "$DOCKER" image rm "$previous" >/dev/null 2>&1 || true
  fi
  built+=("$name:latest" "$name:$version")
done

say "images"
for ref in "${built[@]}"; do
  "$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}' "$ref"
done
