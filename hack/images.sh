#!/usr/bin/env bash
# make images: builds every image of a deployment and writes the manifests that use
# them, all without Docker.
#   1. the base images (go run ./hack/images build): REPO/static, for the static Go
#      binaries, and REPO/builder, the compile function's toolchains, from the pinned
#      Debian and npm packages; fails when ko.yaml pins other digests;
#   2. runs the builder image's toolchains in its own root file system (bubblewrap):
#      each must build a module;
#   3. every ko:// image of config/ (ko resolve, on those bases), pushed to REPO;
#   4. checks that every image reference in the result is a digest.
#
#   make images                          a local registry on 127.0.0.1:$REGISTRY_PORT
#                                        (default: the first free port from 5000),
#                                        storage in _output/registry, started for the run
#   IMAGE_REPO=ghcr.io/you/wasmbed ...   push there instead (log in first)
#   OUT=/some/dir ...                    where wasmbed.yaml goes (default _output)
#   KO=/path/to/ko                       a ko binary (default: hack/ko.sh builds it)
#   PLATFORMS=linux/amd64 ...            ko's --platform (default ko.yaml's platforms)
#
# ko.yaml names the bases where releases publish them; the same digests are pinned
# under REPO for the build (a digest names the same image in any registry).
set -o errexit -o nounset -o pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/_output}"
mkdir -p "$out"
log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/wasmbed-images.XXXXXX")"
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

repo="${IMAGE_REPO:-}"
if [ -z "$repo" ]; then
  port="${REGISTRY_PORT:-}"
  if [ -z "$port" ]; then
    # The first free port from 5000.
    for port in $(seq 5000 5100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    done
  fi
  registry="$("$root/hack/registry.sh")"
  mkdir -p "$out/registry"
  cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $out/registry
http:
  addr: 127.0.0.1:$port
YAML
  OTEL_SDK_DISABLED=true OTEL_TRACES_EXPORTER=none "$registry" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; die "the registry did not start (is port $port free? REGISTRY_PORT=...)"; }
    sleep 0.1
  done
  repo="127.0.0.1:$port/wasmbed"
fi
ko="${KO:-$("$root/hack/ko.sh")}"

start=$SECONDS
log "building the base images into $repo"
go run ./hack/images build -repo "$repo" -check "$root/ko.yaml" | tee "$out/base-images.txt"
log "base images built in $((SECONDS - start)) s"
start=$SECONDS
builder_ref="$(awk '$1 == "builder" {print $2}' "$out/base-images.txt")"
go run ./hack/images smoke "$builder_ref"
log "the builder image's toolchains built a module each, in $((SECONDS - start)) s"

# ko.yaml with the bases under $repo, the same digests.
sed "s#ghcr.io/wasmbed/#$repo/#g" "$root/ko.yaml" >"$work/ko.yaml"
start=$SECONDS
log "ko resolve -Rf config/ (pushing to $repo)"
platform=()
[ -z "${PLATFORMS:-}" ] || platform=(--platform "$PLATFORMS")
KO_CONFIG_PATH="$work/ko.yaml" KO_DOCKER_REPO="$repo" \
  "$ko" resolve --base-import-paths --recursive --filename config/ "${platform[@]}" >"$out/wasmbed.yaml"
log "ko resolve took $((SECONDS - start)) s"

# Every image reference is REPO/...@sha256:<64 hex>, and nothing is left unresolved.
go run ./hack/images refs -repo "$repo" "$out/wasmbed.yaml"
log "wrote $out/wasmbed.yaml"
