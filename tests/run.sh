#!/usr/bin/env bash
# Runs every test: each module self-test in its own process, then every system test script
# tests/system/t_*.sh, each under a timeout. Ends with "N passed, N failed".
# Usage: tests/run.sh SAN_BUILD_DIR RELEASE_BUILD_DIR [NAME_FILTER]
set -u
SAN=${1:-build/san}
REL=${2:-build}
FILTER=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGS="$ROOT/build/test-logs"
rm -rf "$LOGS"; mkdir -p "$LOGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0; failed=0; failures=()

record() {  # name rc log seconds
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); printf 'PASS  %-40s %5ss\n' "$1" "$4"
    else
        failed=$((failed + 1)); failures+=("$1")
        printf 'FAIL  %-40s %5ss (exit %s, log %s)\n' "$1" "$4" "$2" "$3"
        tail -n 25 "$3" | sed 's/^/      | /'
    fi
}

for t in $("$SAN/selftest" -l); do
    [ -n "$FILTER" ] && [[ "selftest:$t" != *$FILTER* ]] && continue
    log="$LOGS/selftest-$t.log"; start=$SECONDS
    timeout -k 5 300 "$SAN/selftest" -t "$t" >"$log" 2>&1; rc=$?
    record "selftest:$t" $rc "$log" $((SECONDS - start))
done

# Each system test gets its own port offset so that a leftover process of one test (or a
# cluster started by `make run`) cannot answer another test's requests.
i=0
for script in "$ROOT"/tests/system/t_*.sh; do
    [ -e "$script" ] || continue
    name=$(basename "$script" .sh)
    [ -n "$FILTER" ] && [[ "$name" != *$FILTER* ]] && continue
    i=$((i + 1))
    log="$LOGS/$name.log"; start=$SECONDS
    T_BIN="$ROOT/$SAN/bin" T_TESTS="$ROOT/$SAN/tests" T_REL="$ROOT/$REL/bin" T_ROOT="$ROOT" \
    T_OFFSET=$((${T_BASE:-10000} + i * 300)) T_WORK="$LOGS/$name.d" \
        timeout -k 10 300 bash "$script" >"$log" 2>&1; rc=$?
    record "$name" $rc "$log" $((SECONDS - start))
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
