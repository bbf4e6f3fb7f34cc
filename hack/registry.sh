#!/usr/bin/env bash
# Builds the CNCF distribution registry (the reference OCI registry) from the Go module
# proxy into a cache outside the checkout, so tests can push and pull OCI artifacts
# against a real registry without a download site. Prints the binary's path on stdout
# (progress goes to stderr).
#
#   hack/registry.sh                    build if missing, print the binary path
#   REGISTRY_VERSION=v3.0.0 hack/...    another version of the registry
#
# Used by `make test` as WASMBED_REGISTRY_BIN for internal/artifacts.
set -o errexit -o nounset -o pipefail

REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
module="github.com/distribution/distribution/v3/cmd/registry"
dest_dir="${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/registry/$REGISTRY_VERSION"
bin="$dest_dir/registry"

log() { printf 'registry: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -x "$bin" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH (expected /usr/local/go/bin)"
command -v flock >/dev/null || die "flock is not on PATH (Debian package util-linux)"
mkdir -p "$dest_dir"

# One build at a time per version: a second caller waits for the first, then reuses it.
exec 9>"$dest_dir.lock"
log "waiting for the build lock $dest_dir.lock"
flock 9
if [ -x "$bin" ]; then
  printf '%s\n' "$bin"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/wasmbed-registry.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building $module@$REGISTRY_VERSION (about 6 minutes on 2 cores, once)"
start=$SECONDS
# Outside any module, with the module's own go.mod: `go install pkg@version`.
(cd "$work" && GOFLAGS= CGO_ENABLED=0 GOBIN="$work/bin" \
  go install -trimpath -ldflags "-s -w" "$module@$REGISTRY_VERSION" >&2) \
  || die "go install $module@$REGISTRY_VERSION failed; see the go output above (is the Go module proxy reachable?)"
[ -x "$work/bin/registry" ] || die "go install left no registry binary in $work/bin"
"$work/bin/registry" --version >&2 || die "the built registry does not run"

# Rename into place so a reader never sees a half-written binary.
mv "$work/bin/registry" "$bin.partial"
mv "$bin.partial" "$bin"
log "built in $((SECONDS - start)) s: $bin"
printf '%s\n' "$bin"
