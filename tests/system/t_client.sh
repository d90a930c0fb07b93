#!/usr/bin/env bash
# tests/system/t_client.sh: the client library against a real node with two worker threads
# (tests/system/client_api.c): every lattice kind, errors, batches across threads, routing
# with WRONG_THREAD and invalidate, timeouts against a stopped server, late replies.
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2
# client_api stops the server (SIGSTOP) for its timeout checks. Resume it whatever happens,
# so that the cleanup's SIGTERM is not left pending on a stopped process.
trap 'kill -CONT "$ANNA_PID" 2>/dev/null; t_cleanup' EXIT

timeout 120 "$T_TESTS/client_api" "$(routing_addr)" "$ANNA_PID" "$T_OFFSET" \
    || fail "client_api failed (exit $?)"
kill -0 "$ANNA_PID" || fail "anna-server died during the test"
ok "client_api"
