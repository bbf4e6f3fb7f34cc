#!/usr/bin/env bash
# Installs the pinned AssemblyScript compiler (package-lock.json next to this script)
# into the builder's cache, outside the checkout:
#   ${WASMBED_ASC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/builder}/node_modules
# The builder image runs it with WASMBED_ASC_DIR=/opt/wasmbed/assemblyscript.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${WASMBED_ASC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/builder}"

mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
# npm ci installs exactly what the lockfile says and fails if it disagrees with package.json.
npm ci --prefix "$dest" --ignore-scripts --no-audit --no-fund --omit=dev
echo "assemblyscript installed in $dest/node_modules"
