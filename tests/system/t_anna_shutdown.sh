#!/usr/bin/env bash
# tests/system/t_anna_shutdown.sh: the life cycle of anna-server. An idle node uses no CPU;
# SIGTERM and SIGINT stop it with exit 0 within 5 s (also with replies queued to a dead
# client and gossip pending), printing per-thread counters (and, in ASan builds, no leaks);
# a second node on ports in use fails at once with a clear message.
source "$(dirname "$0")/lib.sh"

# stop_within PID SIGNAL SECONDS: sends SIGNAL, expects exit 0 within SECONDS.
stop_within() {
    local pid=$1 sig=$2 limit=$3 start=$SECONDS
    kill -"$sig" "$pid"
    for _ in $(seq $((limit * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && fail "anna-server still running ${limit} s after SIG$sig"
    wait "$pid"; local rc=$?
    expect_eq "$rc" 0 "exit status after SIG$sig ($((SECONDS - start)) s)"
}

# cpu_ticks PID: user + system clock ticks used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

probe() { timeout 30 "$T_TESTS/anna_probe" "$T_OFFSET" "$@"; }

# 1. Idle: no busy polling. Two seconds of an idle 2-thread node cost (almost) no CPU.
start_anna idle --threads 2 --replication 2 --gossip-ms 10
probe put warm-up hello || fail "PUT"
sleep 0.5
before=$(cpu_ticks "$ANNA_PID"); sleep 2; after=$(cpu_ticks "$ANNA_PID")
used=$((after - before))
[ "$used" -le 10 ] || fail "idle node used $used ticks of CPU in 2 s (busy polling?)"
ok "idle node used $used CPU ticks in 2 s"
expect_eq "$(probe get warm-up)" hello "GET after idling"
stop_within "$ANNA_PID" TERM 5
grep -q 'anna-server thread 0: requests=' "$T_WORK/idle.log" || fail "no counters at exit"
grep -q 'anna-server routing: requests=' "$T_WORK/idle.log" || fail "no routing counters at exit"
ok "per-thread counters printed at exit"
grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\)' "$T_WORK/idle.log" && fail "sanitizer report"

# 2. SIGINT, with replies queued for a client that does not exist and gossip pending
# (a 10 s gossip period, so the change set is not empty when the signal comes).
start_anna busy --threads 2 --replication 2 --gossip-ms 10000
probe flood 0 5000 || fail "flood"
probe put pending-gossip x || fail "PUT"
stats=$(probe stats 0) || fail "stats"
grep -q '"replies_dropped":[1-9]' <<<"$stats" || fail "no replies dropped: $stats"
ok "replies to a dead client dropped: $stats"
stop_within "$ANNA_PID" INT 5

# 3. Ports in use: a second node on the same ports fails at once, saying which port.
start_anna first --threads 2
start=$SECONDS
out=$(timeout 10 "$T_BIN/anna-server" --port-offset "$T_OFFSET" --threads 2 2>&1); rc=$?
expect_eq "$rc" 1 "exit status of a node whose ports are in use"
grep -q "cannot bind tcp://127.0.0.1:$((6200 + T_OFFSET)): Address already in use" <<<"$out" \
    || fail "unclear bind error: [$out]"
ok "bind error: $out ($((SECONDS - start)) s)"
# The first node is unharmed.
probe put still-here yes || fail "first node no longer answers"
stop_within "$ANNA_PID" TERM 5

# Only the routing port taken (by another program): the node binds its key and gossip
# ports, then fails on the routing port; it must still say which port, close what it
# opened and exit 1 (no hang, no leak report).
timeout 30 "$T_TESTS/anna_probe" "$T_OFFSET" hold $((6450 + T_OFFSET)) 30 >"$T_WORK/hold.out" 2>&1 &
T_PIDS+=($!)
for _ in $(seq 50); do grep -q holding "$T_WORK/hold.out" && break; sleep 0.1; done
grep -q holding "$T_WORK/hold.out" || fail "could not take the routing port: $(cat "$T_WORK/hold.out")"
out=$(timeout 10 "$T_BIN/anna-server" --port-offset "$T_OFFSET" --threads 2 2>&1); rc=$?
expect_eq "$rc" 1 "exit status when only the routing port is in use"
grep -q "^anna-server: cannot bind tcp://127.0.0.1:$((6450 + T_OFFSET)): Address already in use$" \
    <<<"$out" || fail "routing port conflict: [$out]"
ok "routing port conflict after other binds: $out"
echo PASS
