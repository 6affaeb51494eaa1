#!/usr/bin/env bash
# Fails when proto/ breaks the public API (buf's FILE rules: wire and generated-code compatibility)
# against the last commit on main that changed proto/: what clients have been built against.
# The commit under test is never its own baseline: when it is itself the last change on main (CI
# on main after a merge), it is compared with the change before. main's first-parent history is
# followed, so a merge counts as one change. A deliberate break needs a new package version
# (criu.gateway.v2), never an edit of v1: see "API versions" in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-breaking: $*" >&2; exit 1; }

[ "$(git rev-parse --is-shallow-repository)" = false ] \
  || fail "this clone is shallow; the baseline needs main's history (git fetch --unshallow)"
main=""
for ref in "${CRIU_GATEWAY_MAIN_REF:-main}" origin/main; do
  if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then main=$ref; break; fi
done
[ -n "$main" ] || fail "no main branch to compare with (git fetch origin main)"

head=$(git rev-parse HEAD)
fork=$(git merge-base HEAD "$main")
against=$(git log --first-parent --format=%H "$fork" -- proto | grep -vx "$head" | head -1 || true)
if [ -z "$against" ]; then
  echo "check-breaking: no earlier commit on $main changed proto/: nothing to be compatible with yet"
  exit 0
fi
echo "check-breaking: proto/ against $(git log -1 --format='%h (%s)' "$against")"
npx --no-install buf breaking --against ".git#ref=$against"
echo "check-breaking: no breaking change"
