#!/usr/bin/env bash
# Fails when regenerating gen/ from proto/ changes anything: gen/ is committed and must match.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent generate >/dev/null
if [ -n "$(git status --porcelain -- gen)" ]; then
  git status --porcelain -- gen >&2
  git --no-pager diff --stat -- gen >&2
  echo "check-gen: gen/ is out of date with proto/: run 'npm run generate' and commit the result" >&2
  exit 1
fi
echo "check-gen: gen/ matches proto/"
