#!/usr/bin/env bash
# Makes a working CRIU (>= 4.2 preferred, >= 4.1 accepted; `criu check` passing) available to the
# gateway and keeps CRIU's source tree beside it, because the proto check compares
# proto/criu/rpc.proto with the source's images/rpc.proto. A second run is a no-op.
#
# Why 4.2: Linux 6.16 answers EOPNOTSUPP to SO_PASSCRED/SO_PASSSEC on inet sockets, and CRIU
# before 4.2 reads them from every socket it dumps, so CRIU 4.1 cannot dump any process holding
# an inet socket (a listener, a connection) on such a kernel. 4.1.1 is the fallback only when no
# 4.2 can be had; the gateway then says at start-up what it will fail on (`criu-gateway doctor`).
#
# Order of preference: $CRIU_BIN, then a `criu` >= 4.2 on PATH, then a project-local build in
# .criu/ (sid's 4.2.1, else trixie's 4.1.1), then a `criu` 4.1 on PATH. Debian 12's own criu
# (3.17) fails `criu check` on current kernels.
#
# Prints the path of the criu binary to use on its last line of stdout; everything else goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.criu"
mkdir -p "$state"
log() { printf 'install-criu: %s\n' "$*" >&2; }

# Debian source versions we know to build and work here, preferred first: 4.2.x, and 4.1.1
# only when no 4.2 source can be fetched.
versions=("4.2.1-1" "4.1.1-1")

works() { # $1: a criu binary; $2: the oldest minor of 4.x accepted (default 2). True when its
          # version is at least 4.$2 and `criu check` passes.
  local bin=$1 min_minor=${2:-2} min_major=4 out major minor
  [ -x "$bin" ] || return 1
  out=$("$bin" --version 2>/dev/null | sed -n 's/^Version: *//p') || return 1
  major=${out%%.*}; minor=${out#*.}; minor=${minor%%[.-]*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  if (( major < min_major || (major == min_major && minor < min_minor) )); then
    log "$bin is CRIU $out, older than $min_major.$min_minor"; return 1
  fi
  if ! "$bin" check >/dev/null 2>&1; then
    log "$bin (CRIU $out) fails 'criu check' on this kernel"; return 1
  fi
}

apt_ready=
apt_update_once() {
  [ -n "$apt_ready" ] && return 0
  log "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$state/apt.log" 2>&1 || {
    tail -20 "$state/apt.log" >&2; log "apt-get update failed"; return 1; }
  apt_ready=1
}

need_pkgs() { # installs the Debian packages named that are not installed yet
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  log "installing ${missing[*]} (apt log: $state/apt.log)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$state/apt.log" 2>&1 || { tail -20 "$state/apt.log" >&2; log "apt-get install failed"; return 1; }
}

# Fetches and unpacks CRIU's source into $state/src/criu-<upstream version>; echoes that directory.
# A 4.2 tree already unpacked is kept; a 4.1 one only until a 4.2 source can be fetched.
fetch_source() {
  local have
  have=$(ls -d "$state"/src/criu-*/ 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$have" ] && [ -f "$have/images/rpc.proto" ] && [[ $(basename "$have") != criu-4.1.* ]]; then
    echo "${have%/}"; return 0
  fi
  need_pkgs dpkg-dev xz-utils ca-certificates
  local apt="$state/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$state/src"
  # A private apt configuration: deb-src lines for trixie and sid only, so the machine's own
  # sources and package lists are left untouched.
  cat >"$apt/sources.list" <<SRC
deb-src http://deb.debian.org/debian trixie main
deb-src http://deb.debian.org/debian sid main
SRC
  local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache")
  log "fetching the source package index for trixie and sid"
  apt-get "${opts[@]}" update -qq >>"$state/apt.log" 2>&1 || log "apt-get update (private) reported errors; trying anyway"
  local v upstream tarball
  for v in "${versions[@]}"; do
    upstream=${v%-*}
    tarball="$state/src/criu_${upstream}.orig.tar.xz"
    if [ ! -s "$tarball" ]; then
      # The .dsc and .debian.tar.xz may be missing from the mirror while the signed-index-checked
      # orig tarball arrives, so success is judged by the tarball, not by apt's exit code.
      (cd "$state/src" && apt-get "${opts[@]}" source --download-only "criu=$v" >>"$state/apt.log" 2>&1) || true
    fi
    if [ -s "$tarball" ]; then
      log "unpacking $(basename "$tarball")"
      tar -C "$state/src" -xJf "$tarball"
      if [ -f "$state/src/criu-$upstream/images/rpc.proto" ]; then
        echo "$state/src/criu-$upstream"; return 0
      fi
    fi
    log "criu $v source is not available"
  done
  if [ -n "$have" ] && [ -f "$have/images/rpc.proto" ]; then
    log "no CRIU 4.2 source from Debian; keeping $(basename "$have")"; echo "${have%/}"; return 0
  fi
  log "could not fetch CRIU's source from Debian (tried ${versions[*]})"
  return 1
}

build_criu() { # $1: source dir; installs $state/bin/criu
  local src=$1
  need_pkgs build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev \
    protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libaio-dev libbsd-dev libnftables-dev \
    libgnutls28-dev uuid-dev python3 iproute2 iptables
  log "building CRIU in $src"
  make -C "$src" -j"$(nproc)" criu >"$state/build.log" 2>&1 || {
    tail -30 "$state/build.log" >&2; log "build failed; full log in $state/build.log"; return 1; }
  mkdir -p "$state/bin"
  install -m 0755 "$src/criu/criu" "$state/bin/criu.new"
  mv -f "$state/bin/criu.new" "$state/bin/criu"
}

chosen=
if [ -n "${CRIU_BIN:-}" ]; then
  # The operator's choice stands even at 4.1; the gateway warns about what 4.1 cannot do.
  if works "$CRIU_BIN" 1; then chosen=$CRIU_BIN; else log "CRIU_BIN=$CRIU_BIN is not usable"; fi
fi
if [ -z "$chosen" ] && command -v criu >/dev/null && works "$(command -v criu)"; then
  chosen=$(command -v criu)
fi
if [ -z "$chosen" ] && works "$state/bin/criu"; then chosen="$state/bin/criu"; fi

src=$(fetch_source)
ln -sfn "$src" "$state/source"
if [ -z "$chosen" ]; then
  # A 4.1 build is rebuilt once a 4.2 source is here; otherwise the build stands.
  if ! works "$state/bin/criu" 1 || [[ $(basename "$src") != criu-4.1.* ]]; then build_criu "$src"; fi
  if works "$state/bin/criu"; then
    chosen="$state/bin/criu"
  elif works "$state/bin/criu" 1; then
    log "WARNING: only CRIU 4.1 could be had; on Linux >= 6.16 it cannot dump processes holding inet sockets"
    chosen="$state/bin/criu"
  elif command -v criu >/dev/null && works "$(command -v criu)" 1; then
    log "WARNING: using $(command -v criu), CRIU 4.1; on Linux >= 6.16 it cannot dump processes holding inet sockets"
    chosen=$(command -v criu)
  else
    log "the CRIU built from $src does not pass 'criu check'"; exit 1
  fi
fi
log "using $chosen ($("$chosen" --version | sed -n 's/^Version: *//p'))"
echo "$chosen"
