#!/usr/bin/env bash
# Fails when regenerating gen/ (and the Python client's stubs) from proto/ changes anything: both
# are committed and must match.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent generate >/dev/null
generated=(gen clients/python/src/criu_gateway/_proto)
if [ -n "$(git status --porcelain -- "${generated[@]}")" ]; then
  git status --porcelain -- "${generated[@]}" >&2
  git --no-pager diff --stat -- "${generated[@]}" >&2
  echo "check-gen: ${generated[*]} out of date with proto/: run 'npm run generate' and commit the result" >&2
  exit 1
fi
echo "check-gen: ${generated[*]} match proto/"
