#!/usr/bin/env bash
# Builds the wasm32-unknown-unknown sysroot (core, compiler_builtins, alloc) of Debian's
# rustc-web from its own library sources (rust-web-src), once, into a cache outside the
# checkout, and prints its path on stdout (progress goes to stderr). Debian ships no
# wasm32 standard library for rustc-web; the builder links every Rust module against
# this one (builder.Config.WithRustSysroot, WASMBED_RUST_SYSROOT).
#
#   hack/rust-sysroot.sh [DEST]
#   WASM_FEATURES=mvp hack/rust-sysroot.sh [DEST]   WebAssembly 1.0 only (the corpus)
#
# DEST defaults to ${XDG_CACHE_HOME:-~/.cache}/wasmbed/rust-wasm32/<rustc version>[-mvp];
# a sysroot already there is reused. The libraries are compiled for the builder's feature
# set (WebAssembly 2.0 without SIMD: docs/abi.md), size-optimised, panic=abort, with
# LLVM bitcode so that a module's LTO keeps only what it uses, and with the source path
# remapped so the bytes do not depend on where the sources sit.
set -o errexit -o nounset -o pipefail

RUSTC="${RUSTC:-/usr/bin/rustc}"
# The target features of builder/lang.go's rustFeatures: keep them equal.
FEATURES="+sign-ext,+mutable-globals,+multivalue,+reference-types,+bulk-memory,+nontrapping-fptoint"
suffix=""
case "${WASM_FEATURES:-abi}" in
  abi) ;;
  mvp) FEATURES="-sign-ext,-mutable-globals,-multivalue,-reference-types,-bulk-memory,-nontrapping-fptoint" suffix="-mvp" ;;
  *) echo "rust-sysroot: WASM_FEATURES is abi or mvp, not ${WASM_FEATURES}" >&2; exit 2 ;;
esac

log() { printf 'rust-sysroot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$RUSTC" ] || die "$RUSTC is missing (apt-get install rustc-web)"
version="$("$RUSTC" --version | awk '{print $2}')"
case "$version" in
  1.[0-9][0-9].*) ;;
  *) die "cannot read the version of $RUSTC: $("$RUSTC" --version)" ;;
esac
src="/usr/src/rustc-$version/library"
[ -f "$src/core/src/lib.rs" ] || die "$src is missing: the library sources of rustc $version (apt-get install rust-web-src)"

dest="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/rust-wasm32/$version$suffix}"
dest="$(realpath -m "$dest")" # absolute: the compiler runs from /
lib="$dest/lib/rustlib/wasm32-unknown-unknown/lib"
stamp="$dest/.complete"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version $FEATURES" ]; then
  printf '%s\n' "$dest"
  exit 0
fi

command -v flock >/dev/null || die "flock is not on PATH (Debian package util-linux)"
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version $FEATURES" ]; then
  printf '%s\n' "$dest"
  exit 0
fi

log "building core, compiler_builtins and alloc for wasm32 from $src (about a minute)"
tmp="$(mktemp -d "$dest.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tlib="$tmp/lib/rustlib/wasm32-unknown-unknown/lib"
mkdir -p "$tlib"
common=(--target wasm32-unknown-unknown --edition 2024 --crate-type rlib
  -C opt-level=s -C panic=abort -C debuginfo=0 -C embed-bitcode=yes
  -C target-cpu=mvp -C "target-feature=$FEATURES"
  -Z force-unstable-if-unmarked --sysroot "$tmp" --cap-lints allow
  "--remap-path-prefix=/usr/src/rustc-$version=/rustc/$version")
# The standard library's own crates use unstable features, as in Rust's bootstrap.
export RUSTC_BOOTSTRAP=1
# rustc records its working directory in a crate's metadata: compile from / so that the
# bytes do not depend on where the caller stands (every path here is absolute).
cd /
"$RUSTC" "${common[@]}" --crate-name core -C metadata=wasmbed-core \
  "$src/core/src/lib.rs" -o "$tlib/libcore-wasmbed.rlib"
# compiler_builtins as Rust's bootstrap builds it for wasm: its own memcpy and friends
# (feature "mem"), one function per codegen unit so the linker keeps only what is called.
"$RUSTC" "${common[@]}" --crate-name compiler_builtins -C metadata=wasmbed-compiler-builtins \
  --cfg 'feature="compiler-builtins"' --cfg 'feature="mem"' -C codegen-units=10000 -C debug-assertions=no \
  "$src/compiler-builtins/compiler-builtins/src/lib.rs" -o "$tlib/libcompiler_builtins-wasmbed.rlib"
"$RUSTC" "${common[@]}" --crate-name alloc -C metadata=wasmbed-alloc \
  "$src/alloc/src/lib.rs" -o "$tlib/liballoc-wasmbed.rlib"
printf '%s %s\n' "$version" "$FEATURES" > "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "wasm32 sysroot of rustc $version in $dest"
printf '%s\n' "$dest"
