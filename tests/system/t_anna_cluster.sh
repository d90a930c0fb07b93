#!/usr/bin/env bash
# tests/system/t_anna_cluster.sh: three anna-server nodes on 127.0.0.1-3 (same ports), G=2,
# two threads each (tests/system/anna_cluster.c is the client side):
#  1. joins: after node 3 joins, every key is readable through every node, and the keys are
#     redistributed: each is on exactly G=2 nodes (counted on every thread of every node);
#  2. graceful leave of node 2 (SIGTERM): its keys are handed over, none is lost;
#     A per-key replication override places its key on 3 nodes x 2 threads;
#  3. node 2 back, then kill -9 of node 3 under a write load at level ALL: every
#     acknowledged write is still readable, no call hangs past the client's bound, the load
#     keeps going once node 3 is removed, and every key gets its second replica back.
source "$(dirname "$0")/lib.sh"

drive() { timeout 120 "$T_TESTS/anna_cluster" "$@"; }
COMMON=(--threads 2 --global-replication 2 --heartbeat-ms 200 --node-timeout-ms 1500
        --anti-entropy-ms 1000 --gossip-ms 50)
node() { start_anna "n$1-$2" --bind "127.0.0.$1" "${@:3}" "${COMMON[@]}"; }

# The value of a node's own key (stats of thread T, or the members) as the CLI prints it.
node_key_cli() { timeout 10 "$T_BIN/anna-cli" --routing "$(routing_addr "127.0.0.$1")"; }
node_key() { echo "GET $2" | node_key_cli "$1"; }
# Keys stored on nodes $@ (every thread).
keys_on() {
    local total=0 n t k
    for n in "$@"; do
        for t in 0 1; do
            k=$(node_key "$n" "ANNA_METADATA|stats|$t" | grep -o '"keys":[0-9]*' | cut -d: -f2)
            total=$((total + ${k:-0}))
        done
    done
    echo "$total"
}
members_of() {
    node_key "$1" "ANNA_METADATA|members" | sed -n 's/.*"members":\[\([^]]*\)\].*/\1/p' |
        tr ',' '\n' | tr -d '"' | sort | tr '\n' ' '
}
# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local what=$1 secs=$2; shift 2
    for _ in $(seq $((secs * 5))); do "$@" && { ok "$what"; return 0; }; sleep 0.2; done
    fail "$what (not within $secs s)"
}
members_are() { local n=$1; shift; [ "$(members_of "$n")" == "$* " ]; }
keys_are() { local want=$1; shift; [ "$(keys_on "$@")" == "$want" ]; }

node 1 a;              N1=$ANNA_PID
node 2 a --seed 127.0.0.1; N2=$ANNA_PID
wait_for "node 1 and node 2 know each other" 10 members_are 1 127.0.0.1 127.0.0.2
drive fill "$(routing_addr 127.0.0.1)" join- 300 || fail "fill"
wait_for "300 keys on both nodes (G=2 of 2 nodes)" 20 keys_are 600 1 2

# 1. Node 3 joins through node 2.
node 3 a --seed 127.0.0.2; N3=$ANNA_PID
for n in 1 2 3; do
    wait_for "node $n sees 3 members" 10 members_are "$n" 127.0.0.1 127.0.0.2 127.0.0.3
done
wait_for "after the join each key is on exactly 2 of the 3 nodes" 30 keys_are 600 1 2 3
k3=$(keys_on 3)
[ "$k3" -gt 100 ] && [ "$k3" -lt 500 ] || fail "node 3 holds $k3 key copies, expected about 400"
ok "node 3 took its share ($k3 of 600 copies)"
for n in 1 2 3; do drive verify "$(routing_addr "127.0.0.$n")" join- 300 || fail "verify via node $n"; done
drive replicas "$(routing_addr 127.0.0.3)" join- 300 2 || fail "replicas after join"

# Per-key replication override (ANNA_METADATA|replication|<key> = "G L"): hot0 on all 3
# nodes and both threads of each, known by every node's routing thread.
out=$(echo 'PUT ANNA_METADATA|replication|hot0 3\ 2' | node_key_cli 1)
expect_eq "$out" "OK" "override PUT"
out=$(echo 'PUT ANNA_METADATA|replication|hot1 banana' | node_key_cli 2 2>&1)
[[ "$out" == *"G 1..64 and L 1..2"* ]] || fail "bad override accepted or unclear: $out"
ok "a bad override is refused with its reason"
sleep 0.5
expect_eq "$(node_key 3 'ANNA_METADATA|replication|hot0')" "3 2" "override known on node 3"
drive fill "$(routing_addr 127.0.0.2)" hot 1 || fail "fill hot"
for n in 1 2 3; do drive replicas "$(routing_addr "127.0.0.$n")" hot 1 6 || fail "override via node $n"; done

# 2. Graceful leave of node 2.
kill -TERM "$N2"; wait "$N2" 2>/dev/null
grep -q "not handed over" "$T_WORK/n2-a.log" && fail "node 2 did not hand every key over"
wait_for "node 1 sees node 2 gone" 10 members_are 1 127.0.0.1 127.0.0.3
wait_for "after the leave every key is on both remaining nodes (hot0: 2 threads each)" 30 keys_are 604 1 3
for n in 1 3; do drive verify "$(routing_addr "127.0.0.$n")" join- 300 || fail "verify via node $n after leave"; done

# 3. Node 2 back; kill -9 of node 3 under load at level ALL.
node 2 b --seed 127.0.0.3; N2=$ANNA_PID
for n in 1 2 3; do
    wait_for "node $n sees 3 members again" 10 members_are "$n" 127.0.0.1 127.0.0.2 127.0.0.3
done
mark="$T_WORK/killed"; out="$T_WORK/acked"
drive load "$(routing_addr 127.0.0.1)" 9000 1000 "$mark" "$out" > "$T_WORK/load.log" 2>&1 &
LOAD=$!
sleep 3
kill -KILL "$N3"; wait "$N3" 2>/dev/null; touch "$mark"
wait "$LOAD"; rc=$?
cat "$T_WORK/load.log"
[ $rc -eq 0 ] || fail "the load failed"
wait_for "node 1 removed the dead node" 10 members_are 1 127.0.0.1 127.0.0.2
for n in 1 2; do drive check "$(routing_addr "127.0.0.$n")" "$out" || fail "acknowledged writes lost"; done
same_keys() { [ "$(keys_on 1)" == "$(keys_on 2)" ]; }
wait_for "both live nodes hold every key again (replication restored)" 30 same_keys
drive replicas "$(routing_addr 127.0.0.2)" join- 300 2 || fail "replicas after the failure"
echo PASS
