#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when a command is missing.
# Called by `make test` and `make run`, so a fresh Debian machine needs nothing by hand.
# Needs root (or sudo) only when something is actually missing.
set -o errexit -o nounset -o pipefail

# command -> Debian package that provides it.
declare -A need=(
  [wat2wasm]=wabt
  [wast2json]=wabt
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
  # The board images' objcopy and the size reports (gcc-arm-none-eabi pulls it in today).
  [arm-none-eabi-objcopy]=binutils-arm-none-eabi
  [arm-none-eabi-size]=binutils-arm-none-eabi
  [qemu-system-arm]=qemu-system-arm
  [cc]=gcc
  [xxd]=xxd
  # The firmware's 32-bit host tests (make -C firmware test32): cross compiler and qemu-user.
  [arm-linux-gnueabihf-gcc]=gcc-arm-linux-gnueabihf
  [qemu-arm]=qemu-user
  # The builder's C toolchain, and the linker of its Rust builds.
  [clang-19]=clang-19
  [wasm-ld-19]=lld-19
  [wasm-opt]=binaryen
  [flock]=util-linux
  [prlimit]=util-linux
  # The builder runs every compiler in a bubblewrap sandbox, and fails without it.
  [bwrap]=bubblewrap
  [chromium]=chromium
  # The mps2-an386 network image: lwIP and Mbed TLS come from Debian's source packages
  # (fetch_net_sources below); apt-get source unpacks them with dpkg-source (xz archives).
  [dpkg-source]=dpkg-dev
  [xz]=xz-utils
  # The network image's tests: QEMU's user-mode network forwards the board's one
  # connection target (guestfwd ...-cmd:socat) to the gateway's loopback port.
  [socat]=socat
)
# Files (not commands) -> package.
declare -A need_files=(
  ["/usr/lib/picolibc/arm-none-eabi/picolibc.specs"]=picolibc-arm-none-eabi
  # newlib-nano: the firmware's bare-metal test images and `make size` link --specs=nano.specs.
  ["/usr/lib/arm-none-eabi/newlib/nano.specs"]=libnewlib-arm-none-eabi
  # The C library for the 32-bit host tests (not pulled in without recommends).
  ["/usr/arm-linux-gnueabihf/include/stdio.h"]=libc6-dev-armhf-cross
  # Debian's current rustc (rustc-web, which replaces the old rustc package), called by
  # absolute path (a rustup rustc may come first on PATH), and its library sources, from
  # which hack/rust-sysroot.sh builds the wasm32 core and alloc Debian does not ship.
  ["/usr/share/doc/rustc-web"]=rustc-web
  ["/usr/share/doc/rust-web-src"]=rust-web-src
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
for f in "${!need_files[@]}"; do
  [ -e "$f" ] || missing+=("${need_files[$f]}")
done
install_asc() {
  # The pinned AssemblyScript compiler, from the npm registry into the builder cache.
  local dir="${WASMBED_ASC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/builder}"
  local lock
  lock="$(dirname "$0")/../builder/assemblyscript/package-lock.json"
  if [ ! -x "$dir/node_modules/.bin/asc" ] || ! cmp -s "$lock" "$dir/package-lock.json"; then
    echo "deps: installing AssemblyScript into $dir" >&2
    "$(dirname "$0")/../builder/assemblyscript/install.sh" >&2
  fi
}

install_npm() {
  install_asc
  # The console's UI and browser-test dependencies, from their committed lock files.
  local root
  root="$(cd "$(dirname "$0")/.." && pwd)"
  if [ ! -d "$root/console/web/node_modules" ] || [ ! -d "$root/test/console/node_modules" ] ||
     [ "$root/console/web/package-lock.json" -nt "$root/console/web/node_modules" ] ||
     [ "$root/test/console/package-lock.json" -nt "$root/test/console/node_modules" ]; then
    "$root/console/web/install.sh" >&2
  fi
}

install_rust_sysroot() {
  # Rust's wasm32 sysroot for the builder, built once per rustc version into the cache.
  "$(dirname "$0")/rust-sysroot.sh" >/dev/null
}

# lwIP 2.1.3 and Mbed TLS 2.28.3 for the mps2-an386 network image (firmware/net), from
# Debian's source packages, pinned by exact version and checked by the SHA-256 of the
# .dsc and every tarball, unpacked (Debian's patches applied) into a cache outside the
# checkout: ${WASMBED_NET_SRC:-~/.cache/wasmbed/src}/{lwip-2.1.3,mbedtls-2.28.3}. Never
# committed. apt needs deb-src entries: added as their own sources file when missing.
net_sources=(
  "lwip 2.1.3+dfsg1-2 lwip-2.1.3
   8d8f944db8e6d542fc2d6f01559078fb1b5dda71651c67ee5fa3571ed1342c50 lwip_2.1.3+dfsg1-2.dsc
   0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24 lwip_2.1.3+dfsg1.orig.tar.xz
   c5a48413d362cc757032cdd58f528f75eb64ee781ca46ca24f010b49b0e62a90 lwip_2.1.3+dfsg1-2.debian.tar.xz"
  "mbedtls 2.28.3-1 mbedtls-2.28.3
   a8bf91b5ffb40654efb0ebe0c962ac1e87b8eed5e104880982eaa70dd4bb33e3 mbedtls_2.28.3-1.dsc
   3b4953aa55a681e084d31892d9904cc5328d6b4958ea57b90ae4b4f94ae69a8d mbedtls_2.28.3.orig.tar.gz
   3e03c61f63c7bbcd0bf695b53e6663ab448cc2e15429cd67d0e4f32e699645a9 mbedtls_2.28.3-1.debian.tar.xz"
)
fetch_net_sources() {
  local dir="${WASMBED_NET_SRC:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/src}" entry pkg ver out sums
  local todo=()
  for entry in "${net_sources[@]}"; do
    read -r pkg ver out _ <<<"$entry"
    [ -f "$dir/$out/.wasmbed-verified" ] || todo+=("$entry")
  done
  [ "${#todo[@]}" -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deps: adding deb-src entries (/etc/apt/sources.list.d/wasmbed-src.sources)" >&2
    printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm bookworm-updates" \
      "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
      "Types: deb-src" "URIs: http://deb.debian.org/debian-security" "Suites: bookworm-security" \
      "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
      $sudo tee /etc/apt/sources.list.d/wasmbed-src.sources >/dev/null
    $sudo apt-get update -qq
  fi
  mkdir -p "$dir"
  for entry in "${todo[@]}"; do
    read -r pkg ver out _ <<<"$entry"
    sums="$(printf '%s\n' "$entry" | tail -n +2 | sed 's/^ *//; s/ /  /')"
    echo "deps: fetching the source of $pkg $ver into $dir" >&2
    ( cd "$dir" && rm -rf "$out" &&
      { printf '%s\n' "$sums" | sha256sum --quiet -c >/dev/null 2>&1 ||
        { apt-get source --download-only -qq "$pkg=$ver" >/dev/null || { $sudo apt-get update -qq &&
          apt-get source --download-only -qq "$pkg=$ver" >/dev/null; }; }; } &&
      printf '%s\n' "$sums" | sha256sum --quiet -c &&
      dpkg-source --no-check -x "$(printf '%s\n' "$sums" | awk 'NR==1 {print $2}')" "$out" >/dev/null &&
      touch "$out/.wasmbed-verified" ) ||
      { echo "deps: the source of $pkg $ver is missing or does not match its pinned SHA-256" >&2; return 1; }
  done
}

if [ "${#missing[@]}" -eq 0 ]; then
  fetch_net_sources
  install_npm
  install_rust_sysroot
  exit 0
fi

mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps: installing ${pkgs[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${pkgs[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fetch_net_sources
install_npm
install_rust_sysroot
