#!/usr/bin/env bash
# Every failure a user can meet, end to end through the cb CLI: each one is a single clear
# `cb: ...` line with exit 1, in bounded time, and no daemon dies of it (the supervisor
# restarts nothing): unknown function, missing DAG, invalid and cyclic DAGs, a garbage file,
# a broken shared object, a function that fails, one that segfaults (the next call works),
# one that loops forever (timeout), values over the size limit, bad command lines, and no
# cluster at all.
source "$(dirname "$0")/faas_lib.sh"

# Test functions, built the way a user builds one.
fail_so=$(build_fn fail <<'EOF'
#include "executor/function.h"
const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)args; (void)result;
    cb_fn_log(ctx, "about to fail with %zu args", nargs);
    return cb_fn_error(ctx, "deliberate failure");
}
EOF
)
loop_so=$T_EXAMPLES/spin.so
[ -f "$loop_so" ] || fail "$loop_so not built"
if [ -f "$T_EXAMPLES/crash.so" ]; then
    crash_so=$T_EXAMPLES/crash.so
else
    crash_so=$(build_fn crash <<'EOF'
#include "executor/function.h"
const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    (void)ctx; (void)args; (void)nargs; (void)result;
    *(volatile int *)0 = 1;
    return 0;
}
EOF
)
fi

# ---- without a cluster: fails fast and says so ------------------------------------------
start=$SECONDS
expect_err "call with no cluster" "no (answer|result).*cluster up" --timeout 500 call incr 1
expect_err "functions with no cluster" "no answer" --timeout 500 functions
[ $((SECONDS - start)) -le 8 ] || fail "no-cluster errors took $((SECONDS - start)) s"

faas_up --max-value-bytes 65536
expect_ok "register incr" "registered incr" register incr "$T_EXAMPLES/incr.so"
expect_ok "register square" "registered square" register square "$T_EXAMPLES/square.so"

# ---- names that do not exist ----------------------------------------------------------------
expect_err "unknown function" "nope" call nope 1
expect_err "unknown DAG" "nodag" call-dag nodag --arg incr=1
expect_err "delete unknown function" "ghost" delete ghost
expect_err "delete unknown DAG" "ghost" dag delete ghost

# ---- invalid DAGs: each with its own message ------------------------------------------------
expect_err "cyclic DAG" "cycl" dag create cyc incr square --edge incr:square --edge square:incr
expect_err "DAG with an unregistered function" "nofn" dag create d1 incr nofn
expect_err "DAG self-edge" "self|itself|cycl" dag create d2 incr square --edge incr:incr --edge incr:square
expect_err "DAG edge to an unlisted function" "other" dag create d3 incr square --edge incr:other
expect_err "DAG with a function twice" "twice|duplicate|unique" dag create d4 incr incr
expect_ok "register incr as incr2" "registered incr2" register incr2 "$T_EXAMPLES/incr.so"
expect_err "DAG with two sinks" "sink" dag create d5 incr square incr2 --edge incr:square --edge incr:incr2
expect_err "DAG duplicate edge" "duplicate|twice" dag create d6 incr square --edge incr:square --edge incr:square
expect_ok "no invalid DAG was stored" "" dags

# ---- bad code ---------------------------------------------------------------------------------
head -c 5000 /dev/urandom >"$T_WORK/garbage.so"
expect_err "garbage file" "not an ELF shared object" register garbage "$T_WORK/garbage.so"
expect_err "missing file" "cannot open" register ghost "$T_WORK/no-such-file.so"
# A file that starts like a shared object and is garbage after: only an executor finds out.
{ head -c 64 "$T_EXAMPLES/incr.so"; head -c 20000 /dev/urandom; } >"$T_WORK/broken.so"
if out=$(cb register broken "$T_WORK/broken.so" 2>&1); then
    expect_err "call of a broken shared object" "load|ELF|shared object" call broken 1
else
    grep -Eq "load|ELF|shared object" <<<"$out" || fail "register broken: [$out]"
    ok "broken shared object refused at registration: $out"
fi
if cb dag create dbroken broken square >/dev/null 2>"$T_WORK/stderr"; then
    expect_err "call of a DAG with a broken function" "load|ELF|shared object|broken" call-dag dbroken --arg broken=1
else
    grep -Eq "load|ELF|shared object|broken" "$T_WORK/stderr" || fail "dag create dbroken: $(cat "$T_WORK/stderr")"
    ok "DAG with a broken function refused: $(cat "$T_WORK/stderr")"
fi
# A real shared object without cb_fn_abi_version: the executor refuses to load it.
if cb register noabi "$T_EXAMPLES/noabi.so" >/dev/null 2>"$T_WORK/stderr"; then
    expect_err "shared object without the ABI symbol" "abi|ABI|load" call noabi 1
else
    grep -Eq "abi|ABI|load" "$T_WORK/stderr" || fail "register noabi: $(cat "$T_WORK/stderr")"
    ok "noabi refused at registration: $(cat "$T_WORK/stderr")"
fi
faas_alive 0

# ---- functions that fail, crash, hang -------------------------------------------------------
expect_ok "register fail" "registered fail" register fail "$fail_so"
expect_err "failing function" "deliberate failure" call fail 1
cb call fail 1 2>&1 | grep -q "^log: about to fail with 1 args" || fail "logs of a failed call"
ok "a failed call's logs reach the caller"
expect_err "wrong argument type" "." call incr str:x

expect_ok "register crash" "registered crash" register crash "$crash_so"
expect_err "segfaulting function" "crash" call crash 1
expect_ok "next call after a crash" "8" call incr 7
expect_err "segfaulting function again" "crash" call crash 1
expect_ok "square after a crash" "81" call square 9
expect_ok "crashing DAG registered" "created DAG dcrash: incr -> crash" dag create dcrash incr crash
expect_err "DAG whose sink crashes" "crash" call-dag dcrash --arg incr=1
expect_ok "DAG still fine after" "4" call incr 3
faas_alive 0

expect_ok "register spin" "registered spin" register spin "$loop_so"
start=$SECONDS
expect_err "function looping forever" "time" call spin --timeout 1000
took=$((SECONDS - start))
[ $took -le 6 ] || fail "timeout of a 1 s call took $took s"
ok "infinite loop ended in $took s"
expect_ok "next call after a timeout" "6" call incr 5
expect_err "looping function with output key" "time|spin" call spin --timeout 500 --output-key k_spin
expect_err "its error is at the output key" "time|spin|failed" get k_spin
faas_alive 0

# ---- sizes --------------------------------------------------------------------------------
# The cluster runs with --max-value-bytes 65536 (KVS and cache).
big=$(head -c 70000 /dev/zero | tr '\0' x)
expect_err "put over the KVS limit" "large|limit|exceeds" put k_big "str:$big"
expect_ok "register big" "registered big" register big "$T_EXAMPLES/big.so"
expect_ok "a result under the limit at an output key" "OK" put k_small 1
expect_err "a result over the limit at an output key" "large|limit|too|exceeds" call big 100000 --output-key k_bigout
expect_ok "small results still fine" "3" call incr 2
# Code: over the scheduler's limit (16 MiB by default), and over the client's (64 MiB).
head -c 64 "$T_EXAMPLES/incr.so" >"$T_WORK/huge.so"
truncate -s 20M "$T_WORK/huge.so"
expect_err "code over the scheduler's limit" "large|limit" register huge "$T_WORK/huge.so"
truncate -s 70M "$T_WORK/huge.so"
expect_err "code over the client's limit" "limit" register huge "$T_WORK/huge.so"
rm -f "$T_WORK/huge.so"
faas_alive 0

# ---- bad command lines: exit 2, one line -----------------------------------------------------
for args in "bogus" "call" "register onlyname" "dag create" "dag create x" "call incr --timeout x" \
            "call-dag" "up --nodes 0" "up --nodes x" "get" "put k" "call incr --async" "--port-offset" \
            "dag create d7 incr square --edge incr-square" "call incr int:abc" "call incr @" \
            "register a/b $T_EXAMPLES/incr.so" "call-dag x --arg =3" "get k --wait 0"; do
    # shellcheck disable=SC2086
    out=$(cb $args 2>&1); rc=$?
    [ $rc = 2 ] || fail "cb $args: expected exit 2, got $rc ($out)"
    [ "$(wc -l <<<"$out")" = 1 ] || fail "cb $args: expected one line, got [$out]"
done
ok "bad command lines exit 2 with one line"

faas_alive 0
expect_ok "cluster still serves" "16" call square 4
echo "t_faas_errors: all passed"
