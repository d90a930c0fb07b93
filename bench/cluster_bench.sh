#!/usr/bin/env bash
# bench/cluster_bench.sh: KVS cluster throughput and latency (issue 5). Starts 1, 2 and 3
# anna-server nodes on 127.0.0.1-3 (same ports, --threads 1 each), global replication G=1
# and G=2, and runs anna-bench against them (50% GETs, 8 B values, uniform keys, preloaded);
# then, on 3 nodes with G=2, the cost of the write-ahead log under each fsync policy and,
# when anna-bench has --ack, of acknowledging PUTs at level ALL.
#   bench/cluster_bench.sh BUILD_DIR [--quick]
# Output: BUILD_DIR/bench/cluster.md (table) and cluster.csv (anna-bench rows).
# Everything runs on this machine's 2 cores: more nodes add work (gossip to G owners,
# heartbeats) and no CPU, so the figures show the cost of replication, not scaling.
# Environment: BENCH_OFFSET (port offset, default 21000), BENCH_DURATION (seconds per run,
# default 3), BENCH_CLIENTS (default 32), BENCH_REPS (rounds, default 3). Stops exactly the processes it started.
BENCH_NAME="cluster bench"
source "$(dirname "$0")/lib.sh"
OFFSET=${BENCH_OFFSET:-21000}
DURATION=${BENCH_DURATION:-3}
CLIENTS=${BENCH_CLIENTS:-32}
REPS=${BENCH_REPS:-3}
KEYS=10000
[ $QUICK = 1 ] && { DURATION=1; KEYS=1000; REPS=1; }
CSV="$OUT/cluster.csv"; MD="$OUT/cluster.md"
rm -f "$CSV" "$MD"
WORK=$(mktemp -d)
trap 'stop_pids; rm -rf "$WORK"' EXIT


# start_nodes N G [anna-server args]: N nodes, node i on 127.0.0.i joining through node 1.
start_nodes() {
    local n=$1 g=$2; shift 2
    local i
    for i in $(seq 1 "$n"); do
        local log="$WORK/node$i.log" seed=() wal=()
        [ "$i" -gt 1 ] && seed=(--seed 127.0.0.1)
        [ -n "${WAL_POLICY:-}" ] && wal=(--wal-dir "$WORK/wal/node$i" --fsync "$WAL_POLICY")
        "$BIN/anna-server" --bind "127.0.0.$i" --port-offset "$OFFSET" --threads 1 \
            --global-replication "$g" --heartbeat-ms 200 --node-timeout-ms 2000 \
            "${seed[@]}" "${wal[@]}" "$@" >"$log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 100); do
            grep -q "anna-server ready" "$log" && break
            kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$log"; die "node $i did not start"; }
            sleep 0.1
        done
    done
    # Every node must know every other before the run (its heartbeat reached them).
    sleep 1
}

# run LABEL [anna-bench args]
run() {
    local label=$1; shift
    timeout $((DURATION + 60)) "$BIN/anna-bench" --routing "tcp://127.0.0.1:$((6450 + OFFSET))" \
        -c "$CLIENTS" --keys "$KEYS" --zipf 0 -r 0.5 -d 8 --duration "$DURATION" --preload \
        --epoch 0 --csv "$CSV" --label "$label" "$@" >"$WORK/$label.out" 2>&1 ||
        { cat "$WORK/$label.out"; die "anna-bench $label failed"; }
}

# Rounds take turns through every configuration, so that a slow spell of this shared VM
# (steal time) hits them alike; each cell is the median of the rounds.
HAS_ACK=0
"$BIN/anna-bench" --help 2>&1 | grep -q -- "--ack" && HAS_ACK=1
for round in $(seq 1 "$REPS"); do
    for config in "1 1" "2 1" "2 2" "3 1" "3 2"; do
        set -- $config
        start_nodes "$1" "$2"
        run "nodes=$1 G=$2"
        stop_pids
    done
    for policy in never everyms:10 always; do
        rm -rf "$WORK/wal"; mkdir -p "$WORK/wal"/node{1,2,3}
        WAL_POLICY=$policy start_nodes 3 2
        run "nodes=3 G=2 wal=$policy"
        stop_pids
    done
    if [ $HAS_ACK = 1 ]; then
        start_nodes 3 2
        run "nodes=3 G=2 ack=all" --ack all
        stop_pids
    fi
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
col() { awk -F, -v k="$1" -v op="$2" -v c="$3" 'NR > 1 && $1 == k && $2 == op { print $c }' "$CSV" | median; }
{
    echo "| configuration | ops/s | GET p50 | GET p99 | PUT p50 | PUT p99 |"
    echo "|---|--:|--:|--:|--:|--:|"
    awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$CSV" | while read -r k; do
        printf "| %s | %.0f | %.0f us | %.0f us | %.0f us | %.0f us |\n" "$k" "$(col "$k" ALL 13)" \
            "$(col "$k" GET 15)" "$(col "$k" GET 17)" "$(col "$k" PUT 15)" "$(col "$k" PUT 17)"
    done
} > "$MD"
echo "cluster: $CLIENTS clients, 1 thread per node, $DURATION s per row, median of $REPS rounds, 8 B values, $KEYS uniform keys"
cat "$MD"
