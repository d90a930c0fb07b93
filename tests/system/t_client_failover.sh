#!/usr/bin/env bash
# tests/system/t_client_failover.sh: the client library's failover (tests/system/client_failover.c)
# against real nodes, stopped with SIGSTOP or absent: a call whose replica is stopped is
# served by another within about one timeout, and later calls avoid the suspect; every replica
# stopped gives -ETIMEDOUT within the bound of client/kvs.h; routing lists whose first entry is
# dead or stopped work, all of them dead gives a clear error; level ALL fails naming a silent
# replica, works again with the routing tier's list, and does not skip suspects.
source "$(dirname "$0")/lib.sh"

# Three nodes, ports clear of each other: A (1 thread) at the offset, R (2 threads, 2
# replicas, no gossip during the test) at +20, B (1 thread) at +100.
start_anna a --threads 1
A_PID=$ANNA_PID
T_OFFSET=$((T_OFFSET + 20)) start_anna r --threads 2 --replication 2 --gossip-ms 60000
R_PID=$ANNA_PID
T_OFFSET=$((T_OFFSET + 100)) start_anna b --threads 1
B_PID=$ANNA_PID
# The driver stops nodes; resume them whatever happens, so the cleanup's SIGTERM is not left
# pending on a stopped process.
trap 'kill -CONT "$A_PID" "$B_PID" "$R_PID" 2>/dev/null; t_cleanup' EXIT

A_ROUTING=$(routing_addr)
A_WORKER="tcp://127.0.0.1:$((6200 + T_OFFSET))"
B_ROUTING="tcp://127.0.0.1:$((6450 + T_OFFSET + 100))"
B_WORKER="tcp://127.0.0.1:$((6200 + T_OFFSET + 100))"
R_ROUTING="tcp://127.0.0.1:$((6450 + T_OFFSET + 20))"
# Nothing listens here: a node's thread 60 (the nodes have 1 or 2).
DEAD="tcp://127.0.0.1:$((6200 + T_OFFSET + 60))"

timeout 120 "$T_TESTS/client_failover" failover "$A_ROUTING" "$A_WORKER" "$A_PID" \
    "$B_ROUTING" "$B_WORKER" "$B_PID" "$DEAD" || fail "client_failover failover (exit $?)"
timeout 60 "$T_TESTS/client_failover" all "$R_ROUTING" "$R_PID" "$DEAD" \
    || fail "client_failover all (exit $?)"
for pid in "$A_PID" "$B_PID" "$R_PID"; do kill -0 "$pid" || fail "a node died during the test"; done
ok "client_failover"
