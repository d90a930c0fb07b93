#!/usr/bin/env bash
# Process faults under the supervisor: kill -9 an executor, the cache, the scheduler: the
# supervisor restarts each (the restart shows in cb status), calls keep working once it is
# back, and calls made meanwhile end in a result or a clear error in bounded time, never a
# hang. Then kill -9 the supervisor itself: its children go with it, and cb down/up recover.
source "$(dirname "$0")/faas_lib.sh"

faas_up
expect_ok "register incr" "registered incr" register incr "$T_EXAMPLES/incr.so"
expect_ok "register square" "registered square" register square "$T_EXAMPLES/square.so"
expect_ok "dag" "created DAG pipeline: incr -> square" dag create pipeline incr square
expect_ok "dag call" "16" call-dag pipeline --arg incr=3

executors_ready() { [ "$(cb status 2>/dev/null | awk '/^executors:/ { print $2 }')" = "${1:-3}" ]; }

# calls_for SECONDS: keeps calling the DAG; each call must end (result or error) within its
# bound; at least one must succeed at the end.
calls_for() {
    local until=$((SECONDS + $1)) good=0 bad=0 start out
    while [ $SECONDS -lt $until ]; do
        start=$SECONDS
        if out=$(cb --timeout 2000 call-dag pipeline --arg incr=4 2>&1); then
            [ "$out" = 25 ] || fail "wrong result [$out]"
            good=$((good + 1))
        else
            bad=$((bad + 1))
            grep -q "^cb: " <<<"$out" || fail "failed call without a cb: line: [$out]"
        fi
        [ $((SECONDS - start)) -le 8 ] || fail "a call took $((SECONDS - start)) s"
    done
    echo "calls: $good ok, $bad failed"
}

for victim in executor-n0-1 executor-n0-0; do
    old=$(pid_of $victim)
    kill -9 "$old"
    wait_until 15 "$victim restarted" bash -c "[ \"\$(awk -v n=$victim '\$2 == n { print \$4 }' '$CB_RUN/state')\" -ge 1 ] && [ \"\$(awk -v n=$victim '\$2 == n { print \$5 }' '$CB_RUN/state')\" = up ]"
    new=$(pid_of $victim)
    [ "$new" != "$old" ] && kill -0 "$new" || fail "$victim not running again"
    ok "$victim restarted by the supervisor (pid $old -> $new)"
    calls_for 3
    wait_until 20 "3 executors reported after $victim restart" executors_ready 3
    expect_ok "DAG after $victim restart" "36" call-dag pipeline --arg incr=5
    expect_ok "one-shot after $victim restart" "8" call incr 7
done
out=$(cb status) || fail "status"
[ "$(awk '$1 == "n0/1" { print $7 }' <<<"$out")" = 1 ] ||
    { echo "$out"; fail "cb status does not show the restart of n0/1"; }
ok "cb status shows restarts"

# The cache of the node.
old=$(pid_of cache-n0)
kill -9 "$old"
wait_until 15 "cache restarted" bash -c "[ \"\$(awk '\$2 == \"cache-n0\" { print \$4 }' '$CB_RUN/state')\" -ge 1 ]"
calls_for 3
wait_until 20 "calls work after the cache restart" bash -c "[ \"\$(timeout 10 '$CB_BIN' --dir '$CB_RUN' call-dag pipeline --arg incr=1 2>/dev/null)\" = 4 ]"
expect_ok "put/get after the cache restart" "OK" put k1 5
expect_ok "ref after the cache restart" "6" call incr @k1
ok "cache restart"

# The scheduler: its state is soft; functions and DAGs come back from the KVS.
old=$(pid_of scheduler)
kill -9 "$old"
wait_until 15 "scheduler restarted" bash -c "[ \"\$(awk '\$2 == \"scheduler\" { print \$4 }' '$CB_RUN/state')\" -ge 1 ]"
wait_until 20 "scheduler answers" bash -c "timeout 5 '$CB_BIN' --dir '$CB_RUN' --timeout 500 functions"
expect_ok "functions after scheduler restart" "$(printf 'incr\nsquare')" functions
expect_ok "dags after scheduler restart" "pipeline" dags
wait_until 20 "DAG works after the scheduler restart" bash -c "[ \"\$(timeout 10 '$CB_BIN' --dir '$CB_RUN' call-dag pipeline --arg incr=2 2>/dev/null)\" = 9 ]"
ok "scheduler restart"

# kill -9 of the supervisor: its children die with it (no orphans), and the run dir can be
# used again.
pids=$(awk '$1 == "child" { print $3 }' "$CB_RUN/state")
kill -9 "$SUP_PID"
for p in $pids; do
    wait_until 10 "child $p gone after the supervisor died" bash -c "! kill -0 $p 2>/dev/null"
done
ok "children die with a killed supervisor"
out=$(cb down) || fail "cb down after a killed supervisor"
faas_up
expect_ok "functions survive in the KVS? (new KVS: none)" "" functions
faas_alive 0
echo "t_faas_restart: all passed"
