#!/usr/bin/env bash
# Builds ko (github.com/google/ko) from the Go module proxy into a cache outside the
# checkout, once, and prints the binary's path on stdout (progress goes to stderr).
#
#   hack/ko.sh                      build if missing, print the binary path
#   KO_VERSION=v0.18.1 hack/ko.sh   another version
#
# Used by `make images`, `make deploy` and test/ko (KO_BIN).
set -o errexit -o nounset -o pipefail

KO_VERSION="${KO_VERSION:-v0.19.1}"
exec "$(dirname "$0")/go-install.sh" github.com/google/ko "$KO_VERSION" \
  "${XDG_CACHE_HOME:-$HOME/.cache}/wasmbed/ko/$KO_VERSION"
