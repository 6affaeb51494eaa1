#!/usr/bin/env bash
# Installs whatever `npm start` and `npm test` need and is missing, on a fresh Debian 12 as root:
# node modules, the native seqpacket addon, a working CRIU, and the compiled gateway.
# Each step is skipped when its result is already up to date, so a second run is quick.
# With --test it also installs what only the test suite and the generators use: Debian's Python
# gRPC (for the reflection test that plays a strict non-Node client, and for the Python client's
# tests), grpc_python_plugin (which generates that client's stubs), and the programs of the
# workload matrix (test/integration/workloads), which checkpoints real servers nobody here wrote.
set -euo pipefail
for_tests=0
[ "${1:-}" = "--test" ] && for_tests=1
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf 'bootstrap: %s\n' "$*" >&2; }

# 1. Node modules, from the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing node modules"
  # `npm install`, not `npm ci`: npm 11 here writes lockfiles without the other platforms'
  # optional packages (@biomejs/cli-*, @bufbuild/buf-*), which `npm ci` then rejects as out of
  # sync. With the lockfile present, `npm install` installs exactly what it pins.
  npm install --no-fund --no-audit >&2
  touch node_modules/.package-lock.json
fi

# 2. The native addons, seqpacket and systemd (g++ and Node's headers come with the machine;
# make sure of g++).
if [ ! -f build/Release/seqpacket.node ] || [ native/seqpacket.cc -nt build/Release/seqpacket.node ] \
  || [ binding.gyp -nt build/Release/seqpacket.node ] || [ ! -f build/Release/systemd.node ] \
  || [ native/systemd.cc -nt build/Release/systemd.node ] || [ binding.gyp -nt build/Release/systemd.node ]; then
  if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
    log "installing build-essential"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential python3 >&2
  fi
  log "building the native addons"
  nodedir=$(dirname "$(dirname "$(command -v node)")")
  args=()
  [ -f "$nodedir/include/node/node_api.h" ] && args+=(--nodedir="$nodedir")
  npx --no-install node-gyp rebuild "${args[@]}" >"$root/build-native.log" 2>&1 || {
    tail -30 "$root/build-native.log" >&2; log "native build failed (log: build-native.log)"; exit 1; }
fi

# 3. CRIU: a working one on the machine, or one built from Debian's source into .criu/.
if [ ! -s .criu/criu-path ] || [ ! -x "$(cat .criu/criu-path)" ] || [ ! -e .criu/source/images/rpc.proto ] \
  || [ scripts/install-criu.sh -nt .criu/criu-path ]; then
  bash scripts/install-criu.sh >.criu-path.tmp
  mkdir -p .criu
  tail -1 .criu-path.tmp >.criu/criu-path
  rm -f .criu-path.tmp
fi

# 4. The compiled gateway, for `npm start` and the criu-gateway command.
if [ ! -f dist/.stamp ] || [ -n "$(find src gen package.json tsconfig.json tsconfig.build.json -newer dist/.stamp -print -quit)" ]; then
  log "compiling TypeScript"
  npx --no-install tsc -p tsconfig.build.json
  touch dist/.stamp
fi

# 5. Test-only: Debian's python3 with grpcio, protobuf and pip (which installs the Python client
# in its test), and the stub generators (protoc, grpc_python_plugin) of the same releases.
if [ "$for_tests" = 1 ] && { ! /usr/bin/python3 -c 'import grpc, google.protobuf, setuptools, pip' 2>/dev/null \
  || ! command -v grpc_python_plugin >/dev/null || ! command -v protoc >/dev/null; }; then
  log "installing python3-grpcio, python3-protobuf, python3-pip and the protobuf/gRPC compilers for the tests"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-grpcio \
    python3-protobuf python3-pip python3-setuptools protobuf-compiler protobuf-compiler-grpc >&2
fi

# 6. Test-only: the workload matrix's programs, each checked by the command the tests run.
if [ "$for_tests" = 1 ]; then
  missing=()
  [ -x /usr/bin/redis-server ] && [ -x /usr/bin/redis-cli ] || missing+=(redis-server redis-tools)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ -x /usr/bin/sqlite3 ] || missing+=(sqlite3)
  [ -x /usr/bin/unshare ] && [ -x /usr/bin/setsid ] || missing+=(util-linux)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} for the workload tests"
    # Other apt runs on the machine hold the lock for a while: wait for it instead of failing.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
