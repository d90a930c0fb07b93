#!/usr/bin/env bash
# tests/system/t_client.sh: the client library against real nodes (tests/system/client_api.c):
# every lattice kind, errors, batches (one request per worker, a key twice), several threads,
# routing with WRONG_THREAD and invalidate, a worker that does not answer, replication 2
# (address_cache_size, on a second node), timeouts against a stopped server, late replies.
# What only a broken peer produces is tested by t_client_faults.sh.
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2
NODE_PID=$ANNA_PID
# client_api stops the server (SIGSTOP) for its timeout checks. Resume it whatever happens,
# so that the cleanup's SIGTERM is not left pending on a stopped process.
trap 'kill -CONT "$NODE_PID" 2>/dev/null; t_cleanup' EXIT
# The replicated node's ports (6300+, 6350+, 6550 plus the offset) are clear of the first's.
T_OFFSET=$((T_OFFSET + 100)) start_anna replicated --threads 2 --replication 2 --gossip-ms 50
REPLICATED_PID=$ANNA_PID
REPLICATED_ROUTING=$(T_OFFSET=$((T_OFFSET + 100)) routing_addr)

timeout 120 "$T_TESTS/client_api" "$(routing_addr)" "$NODE_PID" "$T_OFFSET" "$REPLICATED_ROUTING" \
    || fail "client_api failed (exit $?)"
kill -0 "$NODE_PID" || fail "anna-server died during the test"
kill -0 "$REPLICATED_PID" || fail "the replicated anna-server died during the test"
ok "client_api"
