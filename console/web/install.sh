#!/usr/bin/env bash
# Installs the console's npm dependencies from the committed lock files: the web app
# (console/web, for `npm run build` and `npm test`) and the browser test's driver
# (test/console, playwright-core). Chromium itself comes from Debian (hack/deps.sh).
set -o errexit -o nounset -o pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for dir in console/web test/console; do
  echo "npm ci in ${dir}"
  npm ci --prefix "${root}/${dir}" --no-audit --no-fund
done
