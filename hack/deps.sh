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

if [ "${#missing[@]}" -eq 0 ]; then
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
install_npm
install_rust_sysroot
