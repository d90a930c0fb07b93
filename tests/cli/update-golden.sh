#!/usr/bin/env bash
# tests/cli/update-golden.sh: regenerates tests/cli/*.out from the .in files by running the
# golden test in update mode against a fresh node. Review the diff before committing it.
# Usage: tests/cli/update-golden.sh [BUILD_DIR]   (default build/san; built if needed)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build/san}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
if [ ! -x "$BUILD/bin/anna-cli" ] || [ ! -x "$BUILD/bin/anna-server" ]; then
    make -C "$ROOT" --no-print-directory BUILD="$BUILD" SAN=1 "$BUILD/bin/anna-cli" "$BUILD/bin/anna-server"
fi
T_BIN="$BUILD/bin" T_TESTS="$BUILD/tests" T_ROOT="$ROOT" T_OFFSET=${T_OFFSET:-43000} \
    UPDATE_GOLDEN=1 bash "$ROOT/tests/system/t_cli_golden.sh"
git -C "$ROOT" --no-pager diff --stat -- tests/cli || true
