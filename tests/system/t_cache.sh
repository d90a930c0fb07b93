#!/usr/bin/env bash
# tests/system/t_cache.sh: cb-cache against a real anna-server (tests/system/cache_check.c),
# through the unmodified KVS client configured with the cache's routing address:
# read-through, write-through, pushes, negative entries, LATTICE/KEY_DNE pass-through,
# coalesced misses, malformed input, status reports (cache "main"); the byte bound and
# unsubscribing (cache "small", --max-bytes 4K); TIMEOUT with the KVS stopped (cache "slow",
# --timeout-ms 500). Then flags, --help, and a clean stop with counters.
source "$(dirname "$0")/lib.sh"

# start_cache NAME ROUTING_PORT DATA_PORT [cb-cache args...]: starts a cache on this test's
# node, waits until it says it is ready (10 s at most). Sets CACHE_PID and CACHE_ROUTING.
start_cache() {
    local name=$1 rport=$2 dport=$3; shift 3
    local log="$T_WORK/$name.log"
    CACHE_ROUTING="tcp://127.0.0.1:$rport"
    "$T_BIN/cb-cache" --kvs "$(routing_addr)" --routing "$CACHE_ROUTING" \
        --data "tcp://127.0.0.1:$dport" "$@" >"$log" 2>&1 &
    CACHE_PID=$!
    T_PIDS+=("$CACHE_PID")
    for _ in $(seq 100); do
        grep -q "cb-cache ready" "$log" 2>/dev/null && return 0
        kill -0 "$CACHE_PID" 2>/dev/null || { cat "$log" >&2; fail "cb-cache $name exited at start"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "cb-cache $name not ready within 10 s"
}

start_anna node --threads 2 --replication 1
KVS_PID=$ANNA_PID

SCHED="ipc://$T_WORK/scheduler.ipc"
start_cache main $((6470 + T_OFFSET)) $((6471 + T_OFFSET)) --scheduler "$SCHED" --report-ms 200
MAIN_PID=$CACHE_PID
timeout 120 "$T_TESTS/cache_check" basic "$CACHE_ROUTING" "$(routing_addr)" "$SCHED" \
    || fail "cache_check basic failed"

timeout 120 "$T_TESTS/cache_check" causal "$CACHE_ROUTING" "$(routing_addr)" \
    || fail "cache_check causal failed"

start_cache small $((6472 + T_OFFSET)) $((6473 + T_OFFSET)) --max-bytes 4K --node n1
timeout 120 "$T_TESTS/cache_check" evict "$CACHE_ROUTING" "$(routing_addr)" \
    || fail "cache_check evict failed"

start_cache slow $((6474 + T_OFFSET)) $((6475 + T_OFFSET)) --timeout-ms 500 --node n2
SLOW_PID=$CACHE_PID
timeout 120 "$T_TESTS/cache_check" timeout "$CACHE_ROUTING" "$(routing_addr)" "$KVS_PID" \
    || { kill -CONT "$KVS_PID"; fail "cache_check timeout failed"; }

for pid in "$KVS_PID" "$MAIN_PID" "$SLOW_PID"; do
    kill -0 "$pid" || fail "process $pid died during the tests"
done
ok "anna-server and the caches are alive"

# Flags.
"$T_BIN/cb-cache" --help | grep -q -- "--max-bytes" || fail "--help does not list --max-bytes"
ok "--help"
"$T_BIN/cb-cache" --max-bytes lots >/dev/null 2>"$T_WORK/bad.err"; rc=$?
expect_eq "$rc" 2 "exit status of a bad flag"
grep -q "max-bytes: not a size" "$T_WORK/bad.err" || fail "bad flag message: $(cat "$T_WORK/bad.err")"
"$T_BIN/cb-cache" --kvs "$(routing_addr)" --routing "tcp://127.0.0.1:$((6470 + T_OFFSET))" \
    --data "tcp://127.0.0.1:$((6476 + T_OFFSET))" >/dev/null 2>"$T_WORK/busy.err"; rc=$?
expect_eq "$rc" 1 "exit status when the routing port is taken"
grep -q "cannot bind tcp://127.0.0.1:$((6470 + T_OFFSET))" "$T_WORK/busy.err" \
    || fail "port in use message: $(cat "$T_WORK/busy.err")"
ok "a port in use is reported"

# A clean stop prints the counters.
kill -TERM "$MAIN_PID"
for _ in $(seq 50); do kill -0 "$MAIN_PID" 2>/dev/null || break; sleep 0.1; done
wait "$MAIN_PID"; rc=$?
expect_eq "$rc" 0 "cb-cache exit status after SIGTERM"
grep -q "cb-cache n0: requests=[1-9]" "$T_WORK/main.log" || fail "no counters at exit"
ok "counters printed at exit"
echo PASS
