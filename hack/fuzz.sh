#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 10s).
set -o errexit -o nounset -o pipefail
fuzztime="${1:-10s}"
cd "$(dirname "$0")/.."
found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=1
    echo "fuzz: $pkg $target for $fuzztime" >&2
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
  done
done < <(git ls-files '*_test.go')
[ "$found" -eq 1 ] || echo "fuzz: no fuzz targets found" >&2
