#!/usr/bin/env bash
# tests/system/t_cli_golden.sh: anna-cli golden files. For each tests/cli/NAME.in, runs
#   anna-cli --echo --client-id golden < NAME.in
# against one fresh node (--threads 2) and compares its stdout, plus a last line
# "[exit N]" with the exit status, to tests/cli/NAME.out. Each .in uses its own key prefix,
# so the files do not depend on each other or on their order.
# UPDATE_GOLDEN=1 rewrites the .out files instead of comparing (tests/cli/update-golden.sh).
source "$(dirname "$0")/lib.sh"

dir="$T_ROOT/tests/cli"
start_anna node --threads 2

failed=()
for input in "$dir"/*.in; do
    name=$(basename "$input" .in)
    actual="$T_WORK/$name.actual"
    # --client-id golden: causal clocks print the same in every run.
    { cli --echo --client-id golden <"$input"; echo "[exit $?]"; } >"$actual" 2>"$T_WORK/$name.stderr"
    if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
        cp "$actual" "$dir/$name.out"
        ok "wrote tests/cli/$name.out"
    elif [ ! -f "$dir/$name.out" ]; then
        echo "no tests/cli/$name.out (run tests/cli/update-golden.sh)" >&2
        failed+=("$name")
    elif diff -u "$dir/$name.out" "$actual"; then
        ok "$name"
    else
        failed+=("$name")
    fi
done
kill -0 "$ANNA_PID" || fail "anna-server died during the golden tests"
[ ${#failed[@]} -eq 0 ] || fail "output differs for: ${failed[*]} (if intended: tests/cli/update-golden.sh)"
