#!/usr/bin/env bash
# Builds the CNCF distribution registry (the reference OCI registry) from the Go module
# proxy into a cache outside the checkout, so tests can push and pull OCI artifacts
# against a real registry without a download site. Prints the binary's path on stdout
# (progress goes to stderr; the first build takes about 6 minutes on 2 cores).
#
#   hack/registry.sh                    build if missing, print the binary path
#   REGISTRY_VERSION=v3.0.0 hack/...    another version of the registry
#
# Used by `make test` as WASMBED_REGISTRY_BIN for internal/artifacts and test/ko, and
# by `make images`.
set -o errexit -o nounset -o pipefail

REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
exec "$(dirname "$0")/go-install.sh" github.com/distribution/distribution/v3/cmd/registry \
  "$REGISTRY_VERSION" "${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/registry/$REGISTRY_VERSION"
