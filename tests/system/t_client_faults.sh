#!/usr/bin/env bash
# tests/system/t_client_faults.sh: the client library against the fault injector of
# tests/system/client_faults.c, a peer that sends what a correct anna-server never does
# (undecodable replies, NO_SERVERS, keys without addresses, answers split over responses,
# WRONG_THREAD after a fresh lookup, a listed worker that never answers). Needs no server:
# the injector binds ephemeral ports on 127.0.0.1 inside the test program.
source "$(dirname "$0")/lib.sh"

timeout 60 "$T_TESTS/client_faults" || fail "client_faults failed (exit $?)"
ok "client_faults"
