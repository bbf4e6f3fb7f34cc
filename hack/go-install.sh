#!/usr/bin/env bash
# Builds one Go command from the Go module proxy into a cache outside the checkout,
# once, under a lock, and prints the binary's path on stdout (progress goes to stderr).
# A fresh clone on the same machine reuses it; a new machine builds it.
#
#   hack/go-install.sh MODULE/PATH/TO/CMD VERSION DEST_DIR
#
# The binary lands in DEST_DIR under the command's name. Used by registry.sh and ko.sh.
set -o errexit -o nounset -o pipefail

[ "$#" -eq 3 ] || { echo "usage: $0 MODULE/PATH/TO/CMD VERSION DEST_DIR" >&2; exit 2; }
pkg="$1" version="$2" dest_dir="$3"
name="${pkg##*/}"
bin="$dest_dir/$name"

log() { printf '%s: %s\n' "$name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -x "$bin" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH (expected /usr/local/go/bin)"
command -v flock >/dev/null || die "flock is not on PATH (Debian package util-linux)"
mkdir -p "$dest_dir"

# One build at a time per binary: a second caller waits for the first, then reuses it.
exec 9>"$dest_dir.lock"
flock 9
if [ -x "$bin" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/wasmbed-go-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building $pkg@$version (once; cached in $dest_dir)"
start=$SECONDS
# Outside any module, with the command's own go.mod: `go install pkg@version`.
(cd "$work" && GOFLAGS= CGO_ENABLED=0 GOBIN="$work/bin" \
  go install -trimpath -ldflags "-s -w" "$pkg@$version" >&2) \
  || die "go install $pkg@$version failed; see the go output above (is the Go module proxy reachable?)"
[ -x "$work/bin/$name" ] || die "go install left no $name binary in $work/bin"

# Rename into place so a reader never sees a half-written binary.
mv "$work/bin/$name" "$bin.partial"
mv "$bin.partial" "$bin"
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
