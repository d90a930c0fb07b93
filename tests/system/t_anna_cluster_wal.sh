#!/usr/bin/env bash
# tests/system/t_anna_cluster_wal.sh: a cluster node restarted from its write-ahead log. Two
# nodes on 127.0.0.1-2 with G=1 (each key on one node only, so its log is its only copy),
# --fsync always: writes through both nodes, kill -9 of node 2, restart with the same log:
# it replays, rejoins, and every acknowledged write is readable through both nodes.
source "$(dirname "$0")/lib.sh"

drive() { timeout 120 "$T_TESTS/anna_cluster" "$@"; }
COMMON=(--threads 2 --global-replication 1 --heartbeat-ms 200 --node-timeout-ms 1500
        --fsync always)
mkdir -p "$T_WORK/wal1" "$T_WORK/wal2"
start_anna n1 --bind 127.0.0.1 --wal-dir "$T_WORK/wal1" "${COMMON[@]}"
start_anna n2 --bind 127.0.0.2 --wal-dir "$T_WORK/wal2" --seed 127.0.0.1 "${COMMON[@]}"; N2=$ANNA_PID
sleep 1
drive fill "$(routing_addr 127.0.0.1)" w- 200 || fail "fill"
drive fill "$(routing_addr 127.0.0.2)" x- 200 || fail "fill"
k2=0
for t in 0 1; do
    k=$(echo "GET ANNA_METADATA|stats|$t" | timeout 10 "$T_BIN/anna-cli" \
        --routing "$(routing_addr 127.0.0.2)" | grep -o '"keys":[0-9]*' | cut -d: -f2)
    k2=$((k2 + ${k:-0}))
done
[ "$k2" -gt 50 ] && [ "$k2" -lt 350 ] || fail "node 2 holds $k2 of 400 keys, expected about half"
ok "node 2 owns $k2 of the 400 keys (G=1)"

kill -KILL "$N2"; wait "$N2" 2>/dev/null
start_anna n2-again --bind 127.0.0.2 --wal-dir "$T_WORK/wal2" --seed 127.0.0.1 "${COMMON[@]}"
grep -q "write-ahead log replayed" "$T_WORK/n2-again.log" || fail "node 2 did not replay its log"
ok "node 2 replayed its log and rejoined"
sleep 1
for n in 1 2; do
    drive verify "$(routing_addr "127.0.0.$n")" w- 200 || fail "w- keys via node $n"
    drive verify "$(routing_addr "127.0.0.$n")" x- 200 || fail "x- keys via node $n"
done
echo PASS
