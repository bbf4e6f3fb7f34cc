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
  [qemu-system-arm]=qemu-system-arm
  [clang-14]=clang-14
  [wasm-ld-14]=lld-14
  [wasm-opt]=binaryen
  [flock]=util-linux
)
# Files (not commands) -> package.
declare -A need_files=(
  [/usr/lib/picolibc/arm-none-eabi/picolibc.specs]=picolibc-arm-none-eabi
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
for f in "${!need_files[@]}"; do
  [ -e "$f" ] || missing+=("${need_files[$f]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

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
