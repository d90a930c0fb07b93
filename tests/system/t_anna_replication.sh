#!/usr/bin/env bash
# tests/system/t_anna_replication.sh: local replication by gossip between the threads of
# one node (--threads 2 --replication 2 --gossip-ms 50): a PUT on one owner is read on the
# other within a bounded wait, concurrent SET PUTs converge to the union on both owners,
# gossip is batched (tests/system/anna_replication.c).
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2 --replication 2 --gossip-ms 50
timeout 120 "$T_TESTS/anna_replication" "$T_OFFSET" || fail "anna_replication failed"
kill -0 "$ANNA_PID" || fail "anna-server died during the test"
echo PASS
