#!/usr/bin/env bash
# tests/system/t_anna_basic.sh: a node with two threads answers PUT/GET of every lattice kind
# through the raw Anna protocol (tests/system/anna_basic.c): merges, multi-tuple requests,
# KEY_DNE, LATTICE without changing the stored value, WRONG_THREAD, invalidate, reserved
# and stats keys. Then the node is still healthy and stops cleanly.
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2 --replication 1
timeout 120 "$T_TESTS/anna_basic" "$T_OFFSET" || fail "anna_basic failed"
kill -0 "$ANNA_PID" || fail "anna-server died during the test"
kill -TERM "$ANNA_PID"
for _ in $(seq 50); do kill -0 "$ANNA_PID" 2>/dev/null || break; sleep 0.1; done
wait "$ANNA_PID"; rc=$?
expect_eq "$rc" 0 "anna-server exit status after SIGTERM"
grep -q 'thread 1: requests=[1-9]' "$T_WORK/node.log" || fail "no per-thread counters at exit"
ok "per-thread counters printed at exit"
echo PASS
