#!/usr/bin/env bash
# The FaaS client library and cb CLI against a scripted scheduler (faas_fake_scheduler.c),
# no cluster needed: replies matched by request id (a stale reply and a garbage frame are
# dropped), every CbError becomes one clear line and exit 1, a scheduler that never answers
# costs exactly the bounded wait, signatures verify on the other side, DAG edges and
# per-function arguments are sent as the command line says, status is printed.
source "$(dirname "$0")/lib.sh"
CB_BIN="$T_BIN/cb"
cbf() { timeout 30 "$CB_BIN" --dir "$T_WORK/none" --port-offset "$T_OFFSET" "$@"; }

"$T_TESTS/faas_fake_scheduler" "$T_OFFSET" >"$T_WORK/fake.log" 2>&1 &
T_PIDS+=($!)
for _ in $(seq 50); do grep -q ready "$T_WORK/fake.log" && break; sleep 0.1; done
grep -q ready "$T_WORK/fake.log" || { cat "$T_WORK/fake.log"; fail "fake scheduler did not start"; }

out=$(cbf functions) || fail "functions"
expect_eq "$out" "$(printf 'alpha\nbeta')" "stale reply and garbage dropped, names sorted"

out=$(cbf call echo 3 2.5 str:x @some/key word) || fail "call echo"
expect_eq "$out" '"[3 2.5 \"x\" @some/key \"word\"] timeout 10000"' "typed args and a ref sent in order"
out=$(cbf call echo 1 --timeout 1234 2>"$T_WORK/err") || fail "call echo --timeout"
expect_eq "$out" '"[1] timeout 1234"' "--timeout is the call's timeout"
expect_eq "$(cat "$T_WORK/err")" "$(printf 'log: first log line\nlog: second log line')" "logs on stderr"
out=$(cbf call echo -- -5 --x) || fail "call echo -- -5"
expect_eq "$out" '"[-5 \"--x\"] timeout 10000"' "-- ends the options"

# Every CbError: exit 1, one line with the scheduler's message, the logs still shown.
for code in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
    out=$(cbf call err$code 2>&1); rc=$?
    [ $rc = 1 ] || fail "err$code: exit $rc"
    expect_eq "$(grep -v '^log:' <<<"$out")" "cb: call err$code: fake error $code" "CbError $code"
    grep -q '^log: first log line$' <<<"$out" || fail "err$code: logs of a failed call missing"
done
out=$(cbf call errval 2>&1); rc=$?
[ $rc = 1 ] && [ "$out" = "cb: call errval: failed as a value" ] || fail "error value: $rc [$out]"
ok "an error value is an error"

# A scheduler that does not answer: the wait is the call's timeout + 2 s margin, no more.
start=$(date +%s%N)
out=$(cbf call hang --timeout 500 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 1 ] || fail "hang: exit $rc"
grep -q "no result within 2500 ms" <<<"$out" || fail "hang: [$out]"
[ $ms -ge 2400 ] && [ $ms -lt 5000 ] || fail "hang took $ms ms, expected about 2500"
ok "no answer: bounded wait ($ms ms): $out"
out=$(cbf call late) || fail "late"
expect_eq "$out" '"late"' "a late (300 ms) answer is still taken"
# The next request after a timed-out one is not confused by anything.
out=$(cbf functions) || fail "functions after hang"
expect_eq "$out" "$(printf 'alpha\nbeta')" "requests after a timeout"

# Futures: the scheduler answers with the key; --async prints it.
out=$(cbf call echo 1 --output-key fut/1 --async) || fail "async"
expect_eq "$out" "fut/1" "--async prints the output key"

# Signing: what cb signs verifies on the other side (name || 0x00 || code).
"$CB_BIN" keygen "$T_WORK/keys" >/dev/null || fail "keygen"
head -c 64 "$T_BIN/cb" >"$T_WORK/fn.so"; head -c 1000 /dev/urandom >>"$T_WORK/fn.so"
out=$(cbf register fn "$T_WORK/fn.so" --sign "$T_WORK/keys/cb.key") || fail "signed register: $out"
expect_eq "$out" "registered fn (signed)" "signature verifies"
out=$(cbf register fn "$T_WORK/fn.so") || fail "unsigned register"
expect_eq "$out" "registered fn" "unsigned register"
printf 'zz\n' >"$T_WORK/bad.key"
out=$(cbf register fn "$T_WORK/fn.so" --sign "$T_WORK/bad.key" 2>&1); rc=$?
[ $rc = 1 ] && grep -q "not a secret key" <<<"$out" || fail "bad key file: $rc [$out]"
ok "a bad key file is refused before sending"

# DAG creation: the chain form and the edge form send what they say.
out=$(cbf dag create show a b c 2>&1)
expect_eq "$out" "cb: create DAG show: functions a,b,c edges a->b,b->c" "chain form"
out=$(cbf dag create show a b c d --edge a:c --edge b:c --edge c:d 2>&1)
expect_eq "$out" "cb: create DAG show: functions a,b,c,d edges a->c,b->c,c->d" "edge form, in order"
out=$(cbf dag create show solo 2>&1)
expect_eq "$out" "cb: create DAG show: functions solo edges " "single function"

# DAG calls: --arg grouped per function, order kept within a function.
out=$(cbf call-dag show --arg b=2 --arg a=1 --arg b=str:x --arg a=@k) || fail "call-dag"
expect_eq "$out" '"a=[1 @k];b=[2 \"x\"]"' "per-function arguments"
out=$(cbf call-dag show) || fail "call-dag without args"
expect_eq "$out" '""' "no arguments"
out=$(cbf call-dag show --arg a=1 --output-key fut/2 --async) || fail "call-dag --async"
expect_eq "$out" "fut/2" "call-dag future"

# Status.
out=$(cbf status) || fail "status"
echo "$out"
grep -q "^executors: 2" <<<"$out" && grep -q "^nodes: 1" <<<"$out" || fail "status counts"
[ "$(grep -n 'n0/0' <<<"$out" | cut -d: -f1)" -lt "$(grep -n 'n0/1' <<<"$out" | cut -d: -f1)" ] ||
    fail "executors sorted"
grep -Eq "^  n0/0 .* alpha,beta$" <<<"$out" || fail "pinned functions"
grep -q "25%" <<<"$out" || fail "utilization"
ok "status"

# Wrong addresses are reported, not crashed on.
out=$(timeout 10 "$CB_BIN" --scheduler nonsense functions 2>&1); rc=$?
[ $rc = 1 ] && grep -q "bad address" <<<"$out" || fail "bad address: $rc [$out]"
ok "bad address"
echo "t_faas_client: all passed"
