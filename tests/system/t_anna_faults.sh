#!/usr/bin/env bash
# tests/system/t_anna_faults.sh: gossip under injected message faults (drop, duplicate,
# delay, reorder; seeded: anna/faults.h, test builds only). Two nodes on 127.0.0.1-2, G=2,
# two threads each with local replication 2: every key has 4 replicas. Three writers add
# elements to the same sets through both nodes, each PUT going to one replica; then every
# replica of every key must hold the same set, with every element (anti-entropy repairs
# what the faults lost).
source "$(dirname "$0")/lib.sh"

drive() { timeout 120 "$T_TESTS/anna_cluster" "$@"; }
export ANNA_FAULTS="seed=42,drop=0.3,dup=0.2,delay=0.3,delay-ms=300"
COMMON=(--threads 2 --replication 2 --global-replication 2 --heartbeat-ms 200
        --node-timeout-ms 3000 --anti-entropy-ms 1000 --gossip-ms 50)
start_anna n1 --bind 127.0.0.1 "${COMMON[@]}"
start_anna n2 --bind 127.0.0.2 --seed 127.0.0.1 "${COMMON[@]}"
grep -q "fault injection on gossip" "$T_WORK/n1.log" || fail "fault injection is not on"
sleep 1

drive sets "$(routing_addr 127.0.0.1)" f- 40 10 a > "$T_WORK/a.log" 2>&1 & A=$!
drive sets "$(routing_addr 127.0.0.2)" f- 40 10 b > "$T_WORK/b.log" 2>&1 & B=$!
drive sets "$(routing_addr 127.0.0.1)" f- 40 10 c > "$T_WORK/c.log" 2>&1 & C=$!
wait $A && wait $B && wait $C || { cat "$T_WORK"/[abc].log; fail "writers"; }
cat "$T_WORK"/[abc].log
drive converge "$(routing_addr 127.0.0.2)" f- 40 4 30 60 || fail "replicas did not converge"

faults=0
for n in 1 2; do
    for t in 0 1; do
        f=$(echo "GET ANNA_METADATA|stats|$t" | timeout 10 "$T_BIN/anna-cli" \
            --routing "$(routing_addr "127.0.0.$n")" | grep -o '"faults":[0-9]*' | cut -d: -f2)
        faults=$((faults + ${f:-0}))
    done
done
[ "$faults" -gt 20 ] || fail "only $faults gossip messages were faulted"
ok "$faults gossip messages dropped, doubled or delayed on the way"
echo PASS
