#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy into a cache outside
# the checkout, so tests (envtest) and `make run` have a real control plane without any
# download site. Prints the folder on stdout (progress goes to stderr).
#
#   hack/k8s-binaries.sh            build if missing, print the folder
#   WASMBED_K8S_DIR=/some/dir ...   use another folder
#
# The versions match the k8s.io libraries in go.mod (same minor).
set -o errexit -o nounset -o pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/k8s"
dest="${WASMBED_K8S_DIR:-$cache_root/$KUBE_VERSION-etcd$ETCD_VERSION}"

log() { printf 'k8s-binaries: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

complete() {
  [ -x "$dest/kube-apiserver" ] && [ -x "$dest/kubectl" ] && [ -x "$dest/etcd" ]
}

if complete; then
  printf '%s\n' "$dest"
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH (expected /usr/local/go/bin)"
mkdir -p "$(dirname "$dest")"

# One build at a time per cache folder: a second caller waits for the first.
exec 9>"$dest.lock"
log "waiting for the build lock $dest.lock"
flock 9
if complete; then
  printf '%s\n' "$dest"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/wasmbed-k8s.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest.partial"

minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"

export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

# kube-apiserver and kubectl ------------------------------------------------------------
if [ ! -x "$dest.partial/kube-apiserver" ] || [ ! -x "$dest.partial/kubectl" ]; then
  log "fetching k8s.io/kubernetes@$KUBE_VERSION from the module proxy"
  modfile="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$modfile" ] || die "could not download k8s.io/kubernetes@$KUBE_VERSION (is the Go module proxy reachable?)"

  mkdir -p "$work/kube"
  {
    printf 'module wasmbed.local/k8sbuild\n\ngo 1.25\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBE_VERSION"
    # Every staging module k8s.io/kubernetes replaces with a local path maps to its
    # published version of the same minor.
    grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$modfile" \
      | awk '{print $1}' | grep -v 'sample-cli-plugin' | sort -u \
      | while read -r m; do printf 'replace %s => %s %s\n' "$m" "$m" "$staging_version"; done
  } >"$work/kube/go.mod"
  cat >"$work/kube/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving dependencies (go mod tidy)"
  (cd "$work/kube" && go mod tidy >&2) || die "go mod tidy for k8s.io/kubernetes@$KUBE_VERSION failed"

  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  for bin in kube-apiserver kubectl; do
    [ -x "$dest.partial/$bin" ] && continue
    log "building $bin $KUBE_VERSION (kube-apiserver: 4 to 13 minutes on 2 cores, once)"
    start=$SECONDS
    (cd "$work/kube" && go build -trimpath -ldflags "$ldflags" -o "$dest.partial/$bin" "k8s.io/kubernetes/cmd/$bin" >&2) \
      || die "building $bin failed; see the go output above"
    log "built $bin in $((SECONDS - start)) s"
  done
fi

# etcd ----------------------------------------------------------------------------------
if [ ! -x "$dest.partial/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  printf 'module wasmbed.local/etcdbuild\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/etcd/go.mod"
  cat >"$work/etcd/main.go" <<'GO'
// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$work/etcd" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "$dest.partial/etcd" . >&2) \
    || die "building etcd $ETCD_VERSION failed; see the go output above"
fi

"$dest.partial/kube-apiserver" --version >&2 || die "the built kube-apiserver does not run"
rm -rf "$dest"
mv "$dest.partial" "$dest"
log "ready in $dest"
printf '%s\n' "$dest"
