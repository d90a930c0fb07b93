#!/usr/bin/env bash
# tests/system/t_anna_subscribe.sh: push subscriptions, our extension of the Anna protocol
# (tests/system/anna_subscribe.c): pushes on PUT and after gossip, batching, unsubscribe,
# refused subscriptions, a dead subscriber dropped (about 11 s), and the --max-subscriptions
# bound on a second node.
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2 --replication 2 --gossip-ms 50
PID1=$ANNA_PID
# Same test port range, 100 ports up: 6300+, 6350+, 6550.
start_anna small --port-offset $((T_OFFSET + 100)) --threads 1 --max-subscriptions 2
PID2=$ANNA_PID
timeout 120 "$T_TESTS/anna_subscribe" "$T_OFFSET" $((T_OFFSET + 100)) || fail "anna_subscribe failed"
kill -0 "$PID1" || fail "anna-server (node) died during the test"
kill -0 "$PID2" || fail "anna-server (small) died during the test"
kill -TERM "$PID1"
for _ in $(seq 50); do kill -0 "$PID1" 2>/dev/null || break; sleep 0.1; done
wait "$PID1"; rc=$?
expect_eq "$rc" 0 "anna-server exit status after SIGTERM"
grep -q 'subscriptions=' "$T_WORK/node.log" || fail "no subscription counters at exit"
ok "subscription counters printed at exit"
echo PASS
