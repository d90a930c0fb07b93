#!/usr/bin/env bash
# DAG semantics end to end: a function's inputs are its fixed arguments, then the upstream
# results in the order of the DAG's edges (never arrival order: the first upstream is made
# slow on purpose); fan-out and fan-in; several sources; log lines of every function reach
# the caller; results through an output key; references to KVS keys as arguments.
source "$(dirname "$0")/faas_lib.sh"

# digits(a, b, c...) = the decimal digits of its int inputs, in input order: ((a*10+b)*10+c)
digits_so=$(build_fn digits <<'EOF2'
#include "executor/function.h"
const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    int64_t acc = 0;
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].type != CB_FN_INT64)
            return cb_fn_error(ctx, "argument %zu is not an int", i + 1);
        int64_t m = 10;
        while (m <= args[i].i64)
            m *= 10;
        acc = acc * m + args[i].i64;
    }
    cb_fn_log(ctx, "digits of %zu inputs: %lld", nargs, (long long)acc);
    return cb_fn_return_int(ctx, result, acc);
}
EOF2
)
# slow(x) = x + 1 after 50 ms: its result reaches the join after the other branch's.
slow_so=$(build_fn slow <<'EOF2'
#include <time.h>
#include "executor/function.h"
const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    if (nargs < 1 || args[0].type != CB_FN_INT64)
        return cb_fn_error(ctx, "slow needs an int");
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    cb_fn_log(ctx, "slow %lld", (long long)args[0].i64);
    return cb_fn_return_int(ctx, result, args[0].i64 + 1);
}
EOF2
)

faas_up --executors 4
for f in incr square; do expect_ok "register $f" "registered $f" register $f "$T_EXAMPLES/$f.so"; done
expect_ok "register digits" "registered digits" register digits "$digits_so"
expect_ok "register slow" "registered slow" register slow "$slow_so"

# Fan-out and fan-in, with the slow branch first in the edge order.
expect_ok "diamond" "created DAG diamond: incr -> slow, incr -> square, slow -> digits, square -> digits" \
    dag create diamond incr slow square digits --edge incr:slow --edge incr:square \
    --edge slow:digits --edge square:digits
# incr(2) = 3; slow(3) = 4; square(3) = 9; digits(4, 9) = 49
for i in 1 2 3 4 5; do
    expect_ok "edge order, not arrival order ($i)" "49" call-dag diamond --arg incr=2
done
# The same functions with the join's edges the other way round: digits(9, 4) = 94
expect_ok "diamond reversed" "created DAG diamond2: incr -> slow, incr -> square, square -> digits, slow -> digits" \
    dag create diamond2 incr slow square digits --edge incr:slow --edge incr:square \
    --edge square:digits --edge slow:digits
expect_ok "reversed edge order" "94" call-dag diamond2 --arg incr=2
# Fixed arguments come first: digits(7, 4, 9) = 749
expect_ok "fixed args then upstream results" "749" call-dag diamond --arg incr=2 --arg digits=7
# Several fixed arguments keep their order: digits(1, 2, 4, 9) = 1249
expect_ok "several fixed args in order" "1249" call-dag diamond --arg digits=1 --arg incr=2 --arg digits=2

# Two sources into one sink: digits(slow(5), square(3)) = 69
expect_ok "two sources" "created DAG twosrc: slow -> digits, square -> digits" \
    dag create twosrc slow square digits --edge slow:digits --edge square:digits
expect_ok "two sources call" "69" call-dag twosrc --arg slow=5 --arg square=3

# The example sub (a - b, not commutative) with two sources, both edge orders.
expect_ok "register sub" "registered sub" register sub "$T_EXAMPLES/sub.so"
expect_ok "sub DAG" "created DAG subdag: square -> sub, incr -> sub" \
    dag create subdag square incr sub --edge square:sub --edge incr:sub
expect_ok "sub DAG reversed" "created DAG subdag2: incr -> sub, square -> sub" \
    dag create subdag2 square incr sub --edge incr:sub --edge square:sub
expect_ok "square(5) - incr(3)" "21" call-dag subdag --arg square=5 --arg incr=3
expect_ok "incr(3) - square(5)" "-21" call-dag subdag2 --arg square=5 --arg incr=3

# Logs of every function of the call come back, on stderr.
cb call-dag diamond --arg incr=2 >"$T_WORK/out" 2>"$T_WORK/err" || fail "call with logs"
expect_eq "$(cat "$T_WORK/out")" "49" "result on stdout"
grep -q "^log: slow 3$" "$T_WORK/err" || { cat "$T_WORK/err"; fail "slow's log line missing"; }
grep -q "^log: digits of 2 inputs: 49$" "$T_WORK/err" || { cat "$T_WORK/err"; fail "digits' log line missing"; }
ok "log lines of the DAG's functions"

# Output keys (futures) and references.
expect_ok "diamond into a key" "49" call-dag diamond --arg incr=2 --output-key res/diamond
expect_ok "read it back" "49" get res/diamond
expect_ok "put a" "OK" put in/a 6
expect_ok "put b" "OK" put in/b 8
# digits(@in/a, @in/b) = 68, refs resolved next to the function, in argument order
expect_ok "refs in order" "68" call digits @in/a @in/b
# incr(@in/a = 6) = 7; slow(7) = 8; square(7) = 49; digits(7, 8, 49) = 7849
expect_ok "ref as a DAG source argument" "7849" call-dag diamond --arg incr=@in/a --arg digits=7
# A result used as the next call's reference: chaining through the KVS.
expect_ok "first call into a key" "9" call square 3 --output-key chain/1
expect_ok "second call reads it" "10" call incr @chain/1

# Updating a referenced key is seen by the next call (the cache is kept up to date).
expect_ok "update in/a" "OK" put in/a 20
wait_until 10 "the new value is used" bash -c "[ \"\$(timeout 10 '$CB_BIN' --dir '$CB_RUN' call incr @in/a 2>/dev/null)\" = 21 ]"
ok "a changed key is seen by the next call"

# A failing function fails the whole call with its message: the sink, or one upstream.
expect_ok "bad chain" "created DAG badchain: square -> digits" dag create badchain square digits
expect_err "the sink fails" "not an int" call-dag badchain --arg square=2 --arg digits=str:x
expect_err "an upstream function fails" "slow needs an int" call-dag twosrc --arg slow=str:x --arg square=3
expect_ok "the DAG works again" "69" call-dag twosrc --arg slow=5 --arg square=3
faas_alive 0
echo "t_faas_dag: all passed"
