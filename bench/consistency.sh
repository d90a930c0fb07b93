#!/usr/bin/env bash
# bench/consistency.sh [BUILD] [PORT_OFFSET]: the consistency-levels table of issue 4
# (docs/benchmarks.md, "Consistency levels"). Starts a local cluster (2 nodes x 3
# executors) with the release build in BUILD (default build), runs the anomaly checker
# (build/tests/consistency_check) at every level on two workloads, the levels alternating
# within each run, and prints one markdown row per (workload, run, level):
#   A: 16 keys, 2 writers, no sleep in functions (latency), 1000 requests, seeds 1-3
#   B: 6 keys, 3 writers, 3 ms sleep after a function's first operation (the test's
#      workload: a wider window for the writers), 500 requests, seeds 1-2
#   C: as A with one client thread (requests one at a time: the cost of a level without
#      the CPU contention of 4 clients on a small machine), 600 requests, seed 1
# Ratios to LWW at p50 per run are printed after the table. Stops the cluster on exit.
set -euo pipefail
BUILD=${1:-build}
OFFSET=${2:-23000}
BIN=$BUILD/bin
CHECK=$BUILD/tests/consistency_check
SO=$BUILD/examples/rw_step.so
for f in "$BIN/cb" "$CHECK" "$SO"; do
    [ -e "$f" ] || { echo "bench/consistency.sh: $f not built (make)" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/cb-consistency.XXXXXX)
trap 'timeout 30 "$BIN/cb" --dir "$DIR/cb" down >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
timeout 90 "$BIN/cb" up --dir "$DIR/cb" --port-offset "$OFFSET" --nodes 2 --executors 3 >/dev/null
S=$(awk '$1 == "scheduler" { print $2 }' "$DIR/cb/cluster")
"$CHECK" --scheduler "$S" --so "$SO" --setup --dags 8 --requests 20 >/dev/null

field() { awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }' <<<"$2"; }
echo "| workload | level | requests | failed | RR anomalies | causal stale | causal dep | p50 ms | p99 ms | p50 / depth ms | p99 / depth ms |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
ratios=""
run() { # WORKLOAD RUN SEED ARGS...
    local w=$1 r=$2 seed=$3 lww_p50="" out
    shift 3
    for level in lww rr single multi; do
        out=$(timeout 600 "$CHECK" --scheduler "$S" --so "$SO" --level $level --seed "$seed" \
              --dags 8 "$@" 2>"$DIR/err") || { cat "$DIR/err" >&2; exit 1; }
        printf '| %s, run %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$r" "$level" \
            "$(field requests "$out")" "$(field failed "$out")" "$(field rr_anomalies "$out")" \
            "$(field causal_stale "$out")" "$(field causal_dep "$out")" "$(field p50_ms "$out")" \
            "$(field p99_ms "$out")" "$(field p50_per_depth_ms "$out")" "$(field p99_per_depth_ms "$out")"
        local p50
        p50=$(field p50_ms "$out")
        if [ $level = lww ]; then lww_p50=$p50; else
            ratios+="$w run $r: $level/LWW p50 = $(awk -v a="$p50" -v b="$lww_p50" 'BEGIN { printf "%.2f", a / b }')"$'\n'
        fi
    done
}
for seed in 1 2 3; do
    run A $seed $seed --clients 4 --requests 1000 --writers 2 --keys 16 --sleep-ms 0
done
for seed in 1 2; do
    run B $seed $seed --clients 4 --requests 500 --writers 3 --keys 6 --sleep-ms 3
done
run C 1 1 --clients 1 --requests 600 --writers 2 --keys 16 --sleep-ms 0
echo
printf '%s' "$ratios"
