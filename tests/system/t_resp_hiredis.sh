#!/usr/bin/env bash
# tests/system/t_resp_hiredis.sh: the RESP front end through the hiredis client library
# (tests/system/resp_hiredis.c): binary-safe values, reply types, errors, a long pipeline.
# Skipped, with a message, when libhiredis is not installed.
source "$(dirname "$0")/lib.sh"

PORT=$((6379 + T_OFFSET))
start_anna node --threads 2 --resp-port "$PORT"
timeout 60 "$T_TESTS/resp_hiredis" "$PORT"; rc=$?
if [ "$rc" = 77 ]; then echo "SKIP: libhiredis not installed"; exit 0; fi
[ "$rc" = 0 ] || fail "resp_hiredis exited $rc"
kill -0 "$ANNA_PID" || fail "anna-server died"
echo PASS
