#!/bin/sh
# Installs the Debian packages the build, the tests and the benchmarks need, and only
# those that are missing, so that `make` is all the set-up a fresh machine needs.
set -eu
PKGS="build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
      libsodium-dev libjemalloc-dev redis-server redis-tools libhiredis-dev
      python3 python3-zmq python3-protobuf protobuf-compiler"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
# redis and the python protobuf stack are only peers for benchmarks and compatibility tests: a
# machine that cannot install them still builds, and those tests say they were skipped.
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2 || {
    echo "deps: retrying without the optional benchmark peer" >&2
    core=$(echo "$missing" | tr ' ' '\n' | grep -v -E '^(redis|libhiredis|python3|protobuf-compiler)' | tr '\n' ' ')
    [ -n "${core# }" ] && $SUDO apt-get install -y -qq --no-install-recommends $core >&2
}
