#!/usr/bin/env bash
# tests/system/t_client_failover_tools.sh: anna-cli and anna-bench with routing lists and ack
# level ALL, on a node with --threads 2 --replication 2 and no gossip during the test
# (--gossip-ms 60000), so that a value is on both replicas only if the client put it there.
# Each replica is read alone with tests/system/client_failover.c (`replica`).
source "$(dirname "$0")/lib.sh"

start_anna r --threads 2 --replication 2 --gossip-ms 60000
R=$(routing_addr)
# Nothing listens here (no node at this offset).
DEAD="tcp://127.0.0.1:$((6450 + T_OFFSET + 60))"
replica() { timeout 20 "$T_TESTS/client_failover" replica "$R" "$@" || fail "replica $*"; }

# ---- anna-cli --ack all ------------------------------------------------------------------
out=$(cli --ack all -c 'PUT cli:all v1'); expect_eq "$out" "OK" "anna-cli --ack all PUT"
expect_eq "$(replica cli:all 0)" "v1" "PUT ALL on replica 0"
expect_eq "$(replica cli:all 1)" "v1" "PUT ALL on replica 1"
# With ONE, the value reaches exactly one replica (gossip is off).
expect_eq "$(cli --ack one -c 'PUT cli:one v1')" "OK" "anna-cli --ack one PUT"
expect_eq "$( (replica cli:one 0; replica cli:one 1) | sort | tr '\n' ' ')" "missing v1 " \
    "PUT ONE on one replica only"
# GET ALL merges the replicas: a different element on each, written to each alone.
timeout 20 "$T_TESTS/client_failover" put-replica "$R" cli:set 0 a || fail "put-replica 0"
timeout 20 "$T_TESTS/client_failover" put-replica "$R" cli:set 1 b || fail "put-replica 1"
expect_eq "$(cli --ack all -c 'GET_SET cli:set')" 'SET {"a", "b"}' "anna-cli --ack all GET merges"
one=$(cli -c 'GET_SET cli:set')
[[ "$one" == 'SET {"a"}' || "$one" == 'SET {"b"}' ]] || fail "GET ONE read one replica: $one"
ok "GET ONE reads one replica: $one"
# The ACK command in a session, and a routing list whose first address is dead.
out=$(printf 'ACK ALL\nPUT cli:cmd v2\nGET cli:cmd\n' | timeout 30 "$T_BIN/anna-cli" \
      --routing "$DEAD,$R" --timeout 500)
expect_eq "$out" $'OK\nOK\nv2' "ACK ALL session over a routing list with a dead first address"
expect_eq "$(replica cli:cmd 0) $(replica cli:cmd 1)" "v2 v2" "ACK ALL PUT on both replicas"
# Bad values of the options are refused with exit status 2.
timeout 10 "$T_BIN/anna-cli" --ack some -c 'GET x' 2>"$T_WORK/ack.err"; rc=$?
expect_eq "$rc" 2 "--ack some: exit 2"
grep -q -- "--ack needs one or all" "$T_WORK/ack.err" || fail "--ack message: $(cat "$T_WORK/ack.err")"
timeout 10 "$T_BIN/anna-cli" --routing "$R,," -c 'GET x' 2>"$T_WORK/routing.err"; rc=$?
expect_eq "$rc" 2 "--routing with an empty entry: exit 2"
grep -q "up to 16 of them separated by commas" "$T_WORK/routing.err" || fail "routing message"
# Every routing address dead: one error line, within the bound (2 addresses x 300 ms + 4 x 300).
start=$(date +%s%N)
out=$(timeout 20 "$T_BIN/anna-cli" --routing "$DEAD,tcp://127.0.0.1:$((6450 + T_OFFSET + 61))" \
      --timeout 300 -c 'GET x'); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "$rc" 1 "all routing dead: exit 1"
[[ "$out" == "ERROR: timed out after 300 ms"* ]] || fail "all routing dead: $out"
[ "$ms" -lt 1800 ] || fail "all routing dead took $ms ms"
ok "all routing dead: '$out' in $ms ms"

# ---- anna-bench --ack all ----------------------------------------------------------------
out=$(timeout 60 "$T_BIN/anna-bench" --quick --ack all --routing "$DEAD,$R" --duration 1 \
      --json "$T_WORK/all.json" 2>&1); rc=$?
echo "$out"
expect_eq "$rc" 0 "anna-bench --ack all exit status"
grep -q ', ack all$' <<<"$out" || fail "no 'ack all' in the header"
line=$(grep '^result: ' <<<"$out") || fail "no result line"
[ "$(awk '{ print $2 }' <<<"$line")" -gt 0 ] || fail "no operations: $line"
grep -q '^errors 0, misses 0' <<<"$out" || fail "errors or misses: $(grep '^errors' <<<"$out")"
grep -q '"ack": "all"' "$T_WORK/all.json" || fail "JSON config lacks ack"
ok "anna-bench --ack all: $line"
# The preload wrote every key to both replicas (gossip is off).
expect_eq "$(replica key:000000000007 0 | wc -c) $(replica key:000000000007 1 | wc -c)" "9 9" \
    "a preloaded key on both replicas"
timeout 10 "$T_BIN/anna-bench" --ack most >/dev/null 2>&1; expect_eq $? 2 "anna-bench --ack most: exit 2"
timeout 10 "$T_BIN/anna-bench" --routing "$R,nonsense" >/dev/null 2>&1
expect_eq $? 2 "anna-bench bad routing list: exit 2"
kill -0 "$ANNA_PID" || fail "anna-server died during the test"
