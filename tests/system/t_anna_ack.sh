#!/usr/bin/env bash
# tests/system/t_anna_ack.sh: acknowledgement levels (tests/system/anna_ack.c) on a node with
# --threads 2 --replication 2 and no gossip during the test (--gossip-ms 60000): PUT ALL
# reaches both replicas before it returns, PUT ONE only one; GET ALL merges the replicas; a
# stopped server fails PUT ALL with a timeout. Then with the write-ahead log: writes
# acknowledged with ALL are on every replica after kill -9 and a restart, with no gossip.
source "$(dirname "$0")/lib.sh"

ack() { timeout 60 "$T_TESTS/anna_ack" "$@"; }

start_anna levels --threads 2 --replication 2 --gossip-ms 60000
NODE_PID=$ANNA_PID
trap 'kill -CONT "$NODE_PID" 2>/dev/null; t_cleanup' EXIT
ack levels "$(routing_addr)" "$NODE_PID" || fail "anna_ack levels"
kill -0 "$NODE_PID" || fail "anna-server died during the test"
kill -TERM "$NODE_PID"; wait "$NODE_PID"

dir="$T_WORK/wal-ack"
start_anna durable --threads 2 --replication 2 --gossip-ms 60000 --wal-dir "$dir"
ack write "$(routing_addr)" durable- 300 || fail "PUT ALL"
kill -KILL "$ANNA_PID"; wait "$ANNA_PID" 2>/dev/null
start_anna durable-again --threads 2 --replication 2 --gossip-ms 60000 --wal-dir "$dir"
ack check "$(routing_addr)" durable- 300 || fail "writes acknowledged with ALL lost"
ok "writes acknowledged with ALL are on every replica after kill -9 and restart"
echo PASS
