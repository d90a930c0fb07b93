#!/usr/bin/env bash
# tests/system/t_sched_basic.sh: cb-scheduler against a real anna-server, with
# tests/system/sched_check.c as the client and as fake (protocol-honest) executors:
# registration and validation of functions and DAGs with every error message, pinning
# (spread, acks, executor errors, timeouts without blocking), call and DAG dispatch (ids,
# arguments, begin flags, locations, output keys, locality, load), dead executors, re-pin of
# a restarted executor, repair, malformed input. Then a second scheduler lists the same
# metadata from the KVS, and the first, restarted, finds pins from executor reports.
source "$(dirname "$0")/lib.sh"

DEAD_MS=1000
PIN_TIMEOUT_MS=1000
REQUESTS=tcp://127.0.0.1:$((5000 + T_OFFSET))
STATUS=tcp://127.0.0.1:$((5007 + T_OFFSET))

# start_scheduler NAME OFFSET [args...]: starts cb-scheduler against this test's KVS and
# waits until it says it is ready (10 s at most). Sets SCHED_PID. A generous KVS timeout:
# on a loaded test machine a KVS answer can take longer than the default second.
start_scheduler() {
    local name=$1 offset=$2; shift 2
    local log="$T_WORK/$name.log"
    "$T_BIN/cb-scheduler" --port-offset "$offset" --kvs "$(routing_addr)" --kvs-timeout-ms 3000 \
        "$@" >"$log" 2>&1 &
    SCHED_PID=$!
    T_PIDS+=("$SCHED_PID")
    for _ in $(seq 100); do
        grep -q "cb-scheduler ready" "$log" 2>/dev/null && return 0
        kill -0 "$SCHED_PID" 2>/dev/null || { cat "$log" >&2; fail "cb-scheduler $name exited at start"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "cb-scheduler $name not ready within 10 s"
}

# stop_scheduler PID NAME: SIGTERM, then its exit status must be 0 within 10 s.
stop_scheduler() {
    kill -TERM "$1"
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && fail "cb-scheduler $2 did not stop within 10 s"
    wait "$1" || fail "cb-scheduler $2 exited with status $?"
}

"$T_BIN/cb-scheduler" --help | grep -q -- "--pin-replicas" || fail "--help lacks --pin-replicas"
"$T_BIN/cb-scheduler" --dead-ms 5 >/dev/null 2>&1; expect_eq $? 2 "a bad flag exits 2"

# A scheduler whose KVS is not there: it starts, says so, answers status, refuses the rest.
start_scheduler nokvs $((T_OFFSET + 3)) --kvs tcp://127.0.0.1:$((6450 + T_OFFSET + 3)) --kvs-timeout-ms 200
grep -q "metadata not loaded yet" "$T_WORK/nokvs.log" || fail "ready line: $(cat "$T_WORK/nokvs.log")"
timeout 60 "$T_TESTS/sched_check" nokvs tcp://127.0.0.1:$((5003 + T_OFFSET)) \
    tcp://127.0.0.1:$((5010 + T_OFFSET)) || fail "sched_check nokvs failed (exit $?)"
ok "without a KVS: status served, metadata requests refused with CB_KVS"
stop_scheduler "$SCHED_PID" nokvs

start_anna kvs --threads 2
start_scheduler first "$T_OFFSET" --dead-ms $DEAD_MS --pin-timeout-ms $PIN_TIMEOUT_MS --seed 1
FIRST=$SCHED_PID
# (If the KVS was slow to answer the first read, the scheduler says so and reads later.)
grep -Eq "0 functions and 0 DAGs loaded|not loaded yet" "$T_WORK/first.log" || fail "ready line: $(cat "$T_WORK/first.log")"

timeout 120 "$T_TESTS/sched_check" main "$REQUESTS" "$STATUS" $DEAD_MS $PIN_TIMEOUT_MS \
    || fail "sched_check main failed (exit $?)"
ok "sched_check main"

# A second scheduler, started afterwards on other ports, reads the same metadata.
start_scheduler second $((T_OFFSET + 1))
SECOND=$SCHED_PID
grep -Eq "5 functions and 1 DAG loaded|not loaded yet" "$T_WORK/second.log" || fail "ready line: $(cat "$T_WORK/second.log")"
timeout 60 "$T_TESTS/sched_check" list tcp://127.0.0.1:$((5001 + T_OFFSET)) \
    tcp://127.0.0.1:$((5008 + T_OFFSET)) "broken,double,incr,slowfn,sum" "pipeline" \
    || fail "sched_check list on a second scheduler failed (exit $?)"
ok "a second scheduler lists the same functions and DAGs"
stop_scheduler "$SECOND" second

# The first one stops cleanly and has counted what it dropped.
stop_scheduler "$FIRST" first
grep -q "malformed=1 bad_address=1 " "$T_WORK/first.log" || fail "counters: $(tail -1 "$T_WORK/first.log")"
grep -Eq "bad_reports=[2-9]" "$T_WORK/first.log" || fail "counters: $(tail -1 "$T_WORK/first.log")"
ok "malformed request, bad address and bad reports counted"

# Restarted on the same ports: metadata from the KVS, pins from executor reports, repair.
start_scheduler restarted "$T_OFFSET" --dead-ms $DEAD_MS --pin-timeout-ms $PIN_TIMEOUT_MS
timeout 60 "$T_TESTS/sched_check" restart "$REQUESTS" "$STATUS" $DEAD_MS \
    || fail "sched_check restart failed (exit $?)"
ok "sched_check restart"
stop_scheduler "$SCHED_PID" restarted
kill -0 "$ANNA_PID" || fail "anna-server died during the test"

# End to end with real executors (when they are built): their own KVS, a scheduler on
# offset + 2, two cb-executors, example functions. No fakes. The KVS's offset + 170 keeps its
# ports (keys 6370, gossip 6420, cluster 6570, routing 6620 plus the offset) clear of ours
# (6200+, 6250+, 6400, 6450) and of the next test's (+300).
EXAMPLES="$T_BIN/../examples"
if [ -x "$T_BIN/cb-executor" ] && [ -f "$EXAMPLES/incr.so" ] && [ -f "$EXAMPLES/square.so" ]; then
    T_OFFSET=$((T_OFFSET + 170)) start_anna e2e-kvs --threads 1
    E2E_KVS=$(T_OFFSET=$((T_OFFSET + 170)) routing_addr)
    start_scheduler e2e $((T_OFFSET + 2)) --kvs "$E2E_KVS"
    for i in 0 1; do
        "$T_BIN/cb-executor" --node n0 --index $i --scheduler tcp://127.0.0.1:$((5009 + T_OFFSET)) \
            --kvs "$E2E_KVS" --report-ms 200 >"$T_WORK/executor$i.log" 2>&1 &
        T_PIDS+=($!)
    done
    timeout 90 "$T_TESTS/sched_check" e2e tcp://127.0.0.1:$((5002 + T_OFFSET)) \
        tcp://127.0.0.1:$((5009 + T_OFFSET)) "$E2E_KVS" "$EXAMPLES/incr.so" "$EXAMPLES/square.so" \
        || fail "sched_check e2e failed (exit $?)"
    ok "end to end with real executors"
else
    echo "skip: end to end (no cb-executor or examples in $T_BIN/..)"
fi
