#!/usr/bin/env bash
# bench/run.sh: what `make bench` runs. Starts a private anna-server and a private
# redis-server on 127.0.0.1, runs the same short set of GET and SET/PUT loads against both
# (same client count, value size, key names, key count, uniform keys, every key present
# before the GETs) and writes one side-by-side table. Each cell is the median of REPS runs,
# anna and redis taking turns, because these shared VMs drift by up to 1.5x.
#   bench/run.sh BUILD_DIR [--quick]
# Output in BUILD_DIR/bench: kvs.md (the table), kvs.csv (one row per test), anna-bench.csv
# (every anna-bench result row), redis-benchmark.csv, and the logs of both servers.
# Environment: BENCH_OFFSET (port offset, default 20000: below the ephemeral port range, so
# no client connection can hold our ports), ANNA_THREADS (server threads, default 2),
# BENCH_DURATION (seconds per run, default 2), BENCH_REPS (runs per cell, default 3).
# Stops exactly the processes it started, on any exit; every wait has a time limit.
BENCH_NAME=bench
source "$(dirname "$0")/lib.sh"
OFFSET=${BENCH_OFFSET:-20000}
ANNA_THREADS=${ANNA_THREADS:-2}
ROUTING="tcp://127.0.0.1:$((6450 + OFFSET))"
REDIS_PORT=$((6379 + OFFSET))
CLK_TCK=$(getconf CLK_TCK)

if [ $QUICK = 1 ]; then
    DURATION=1; REPS=1; SIZES="8"; KEYS_SMALL=10000; KEYS_LARGE=1000
else
    DURATION=${BENCH_DURATION:-2}; REPS=${BENCH_REPS:-3}
    SIZES="8 4096"; KEYS_SMALL=100000; KEYS_LARGE=10000
fi

mkdir -p "$OUT"
rm -f "$OUT"/kvs.md "$OUT"/kvs.csv "$OUT"/anna-bench.csv "$OUT"/redis-benchmark.csv \
      "$OUT"/anna-bench.log "$OUT"/redis-benchmark.log


for b in anna-server anna-bench; do
    [ -x "$BIN/$b" ] || die "$BIN/$b not built (run make first)"
done

# ---- servers -------------------------------------------------------------------------------

"$BIN/anna-server" --port-offset "$OFFSET" --threads "$ANNA_THREADS" >"$OUT/anna-server.log" 2>&1 &
ANNA_PID=$!
PIDS+=("$ANNA_PID")
ready=0
for _ in $(seq 100); do
    if grep -q ready "$OUT/anna-server.log"; then ready=1; break; fi
    kill -0 "$ANNA_PID" 2>/dev/null || { cat "$OUT/anna-server.log" >&2; die "anna-server exited at start"; }
    sleep 0.1
done
[ $ready = 1 ] || { cat "$OUT/anna-server.log" >&2; die "anna-server not ready in 10 s"; }

REDIS=0
REDIS_PID=
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null &&
   command -v redis-cli >/dev/null; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no >"$OUT/redis-server.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for _ in $(seq 100); do
        [ "$(timeout 2 redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && { REDIS=1; break; }
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ $REDIS = 1 ] || { cat "$OUT/redis-server.log" >&2; echo "bench: redis-server did not start; anna only" >&2; }
else
    echo "bench: redis-server/redis-benchmark not installed; anna only" >&2
fi

# ---- helpers -------------------------------------------------------------------------------

# CPU seconds (user + system) a process has used so far.
cpu_of() {
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
now() { date +%s.%N; }
# "BUSY TOTAL" jiffies of all CPUs so far (busy = everything but idle and iowait: softirq
# network processing, which no process is charged for, included).
stat_of() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# Percent of all CPUs busy between two stat_of readings.
busy() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
    printf "%.0f%%", (y[2] > x[2] ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0) }'; }
# Cores used: CPU seconds BEFORE AFTER over the wall time T0 T1.
cores() { awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" 'BEGIN { printf "%.2f", (t1 > t0 ? (b - a) / (t1 - t0) : 0) }'; }
# Cores used by a command timed with TIMEFORMAT='%U %S' ("USER SYS") over T0 T1.
gen_cores() { awk -v g="$1" -v t0="$2" -v t1="$3" 'BEGIN { split(g, a, " "); printf "%.2f", (t1 > t0 ? (a[1] + a[2]) / (t1 - t0) : 0) }'; }
# Median of the arguments ("-" if none).
median() {
    [ $# -eq 0 ] && { echo -; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
pct() { if [ "$1" = - ]; then echo -; else echo "$1%"; fi; }
fmt_us() { awk -v u="$1" 'BEGIN { if (u == "" || u == "-") print "-";
    else if (u < 1000) printf "%.0f us", u; else printf "%.2f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 <= 0) print "-"; else printf "%.2f", a / b }'; }

# Fills redis with KEYS keys key:%012d of SIZE bytes: the names anna-bench and
# redis-benchmark -r use, so that every GET finds a value on both sides.
redis_preload() {
    local keys=$1 size=$2
    awk -v n="$keys" -v size="$size" 'BEGIN {
        v = sprintf("%*s", size, ""); gsub(/ /, "x", v)
        for (i = 0; i < n; i++) {
            k = sprintf("key:%012d", i)
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
        }
    }' | timeout 120 redis-cli -p "$REDIS_PORT" --pipe >/dev/null || die "redis preload failed"
}

# anna_preload SIZE KEYS: PUTs every key once (not measured).
anna_preload() {
    timeout 300 "$BIN/anna-bench" --routing "$ROUTING" -c 50 -d "$1" -k "$2" --preload -n 1 \
        --epoch 0 --timeout 1000 >>"$OUT/anna-bench.log" 2>&1 ||
        die "anna-bench preload failed (see $OUT/anna-bench.log)"
}

# anna_run OP CLIENTS SIZE KEYS: one measured run. Sets A_OPS A_P50 A_P99 (us) A_ERR, A_SRV
# (anna-server cores), A_GEN (anna-bench cores) and A_BUSY (percent of all CPUs busy).
anna_run() {
    local op=$1 c=$2 size=$3 keys=$4 ratio=1 tmp="$OUT/anna-run.csv" t0 t1 c0 c1 s0 s1 g
    [ "$op" = PUT ] && ratio=0
    rm -f "$tmp"
    c0=$(cpu_of "$ANNA_PID"); t0=$(now); s0=$(stat_of)
    local TIMEFORMAT='%U %S'
    g=$( { time timeout $((DURATION + 60)) "$BIN/anna-bench" --routing "$ROUTING" -c "$c" \
            -d "$size" -k "$keys" --zipf 0 -r "$ratio" --duration "$DURATION" --epoch 1 \
            --timeout 1000 --label "$op c=$c ${size}B" --csv "$tmp" >>"$OUT/anna-bench.log" 2>&1
         } 2>&1 ) || die "anna-bench failed (see $OUT/anna-bench.log)"
    t1=$(now); c1=$(cpu_of "$ANNA_PID"); s1=$(stat_of)
    [ -s "$OUT/anna-bench.csv" ] || head -n 1 "$tmp" >"$OUT/anna-bench.csv"
    tail -n +2 "$tmp" >>"$OUT/anna-bench.csv"
    # CSV columns: 13 ops_per_s, 15 p50_us, 17 p99_us, 20 errors (row ALL)
    IFS=, read -r A_OPS A_P50 A_P99 A_ERR < <(awk -F, 'NR > 1 && $2 == "ALL" {
        printf "%.0f,%s,%s,%s\n", $13, $15, $17, $20 }' "$tmp")
    A_SRV=$(cores "$c0" "$c1" "$t0" "$t1")
    A_GEN=$(gen_cores "$g" "$t0" "$t1")
    A_BUSY=$(busy "$s0" "$s1")
}

# redis_run OP CLIENTS SIZE KEYS N: one redis-benchmark run of N requests. Sets R_OPS R_P50
# R_P99 (us), R_SRV, R_GEN and R_BUSY, as anna_run.
redis_run() {
    local op=$1 c=$2 size=$3 keys=$4 n=$5 test=get tmp="$OUT/redis-run.csv" t0 t1 c0 c1 s0 s1 g
    [ "$op" = PUT ] && test=set
    c0=$(cpu_of "$REDIS_PID"); t0=$(now); s0=$(stat_of)
    local TIMEFORMAT='%U %S'
    g=$( { time timeout 300 redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$c" -n "$n" \
            -d "$size" -r "$keys" -t "$test" --csv >"$tmp" 2>>"$OUT/redis-benchmark.log"; } 2>&1 ) \
        || die "redis-benchmark failed (see $OUT/redis-benchmark.log)"
    t1=$(now); c1=$(cpu_of "$REDIS_PID"); s1=$(stat_of)
    [ -s "$OUT/redis-benchmark.csv" ] || echo "test,clients,value_size,$(head -n 1 "$tmp" | tr -d '"' | cut -d, -f2-)" >"$OUT/redis-benchmark.csv"
    tail -n +2 "$tmp" | tr -d '"' | sed "s/^[A-Z]*,/$op c=$c ${size}B,$c,$size,/" >>"$OUT/redis-benchmark.csv"
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    IFS=, read -r R_OPS R_P50 R_P99 < <(tr -d '"' <"$tmp" | awk -F, 'NR > 1 {
        printf "%.0f,%.1f,%.1f\n", $2, $5 * 1000, $7 * 1000 }')
    R_SRV=$(cores "$c0" "$c1" "$t0" "$t1")
    R_GEN=$(gen_cores "$g" "$t0" "$t1")
    R_BUSY=$(busy "$s0" "$s1")
}

# ---- the table -----------------------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
HOST_CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
NCPU=$(nproc)
REDIS_VERSION=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')
{
    echo "# KVS benchmark: anna-server vs redis-server"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`make bench\`$([ $QUICK = 1 ] && echo ' (--quick)'),"
    echo "$NCPU vCPU ($HOST_CPU), Linux $(uname -r)."
    echo
    echo "**Only $NCPU cores, shared by the server, the load generator and their I/O threads**: what"
    echo "the generator uses is taken from the server. anna-server: $ANNA_THREADS worker threads."
    echo "anna-bench: 1 thread, closed loop (each client has one request in flight). redis-server"
    echo "${REDIS_VERSION:-?} without persistence; redis-benchmark: 1 thread, -P 1. Same key names"
    echo "(key:%012d), uniform keys, every key present before the GETs ($KEYS_SMALL keys for 8 B values,"
    echo "$KEYS_LARGE for 4 KiB). Each cell: median of $REPS runs of about $DURATION s, anna and redis"
    echo "taking turns. Latency per request as the client sees it. cpu: cores used by the"
    echo "server / by the load generator / % of all $NCPU cores busy, whoever used them (the"
    echo "kernel's network processing is charged to no process: it shows only in the last)."
    echo
    echo "| test | anna ops/s | anna p50 | anna p99 | redis ops/s | redis p50 | redis p99 | ops ratio | p50 ratio | cpu anna srv/gen/busy | cpu redis srv/gen/busy |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
} >"$OUT/kvs.md"
echo "test,op,clients,value_size,keys,anna_ops,anna_p50_us,anna_p99_us,anna_errors,redis_ops,redis_p50_us,redis_p99_us,ops_ratio,p50_ratio,anna_srv_cores,anna_gen_cores,anna_busy,redis_srv_cores,redis_gen_cores,redis_busy" >"$OUT/kvs.csv"

echo "bench: anna-server ($ANNA_THREADS threads) at $ROUTING, redis-server at 127.0.0.1:$REDIS_PORT"
echo "bench: $REPS x ${DURATION} s per cell; table in $OUT/kvs.md"
errors_total=0
for size in $SIZES; do
    keys=$KEYS_SMALL
    [ "$size" -gt 1024 ] && keys=$KEYS_LARGE
    anna_preload "$size" "$keys"
    [ $REDIS = 1 ] && redis_preload "$keys" "$size"
    for op in GET PUT; do
        for c in 1 50; do
            name="$op c=$c ${size}B"
            # redis-benchmark takes a request count: aim at DURATION seconds from a guess, then
            # from the rate of the previous run.
            rate=40000
            [ "$c" -gt 1 ] && rate=90000
            a_ops=(); a_p50=(); a_p99=(); a_srv=(); a_gen=(); a_busy=(); a_err=0
            r_ops=(); r_p50=(); r_p99=(); r_srv=(); r_gen=(); r_busy=()
            for _ in $(seq "$REPS"); do
                anna_run "$op" "$c" "$size" "$keys"
                a_ops+=("$A_OPS"); a_p50+=("$A_P50"); a_p99+=("$A_P99")
                a_srv+=("$A_SRV"); a_gen+=("$A_GEN"); a_busy+=("${A_BUSY%\%}")
                a_err=$((a_err + ${A_ERR:-0}))
                if [ $REDIS = 1 ]; then
                    n=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { n = int(r * d); print (n < 5000 ? 5000 : n) }')
                    redis_run "$op" "$c" "$size" "$keys" "$n"
                    r_ops+=("$R_OPS"); r_p50+=("$R_P50"); r_p99+=("$R_P99")
                    r_srv+=("$R_SRV"); r_gen+=("$R_GEN"); r_busy+=("${R_BUSY%\%}")
                    rate=$R_OPS
                fi
            done
            A_OPS=$(median "${a_ops[@]}"); A_P50=$(median "${a_p50[@]}"); A_P99=$(median "${a_p99[@]}")
            A_SRV=$(median "${a_srv[@]}"); A_GEN=$(median "${a_gen[@]}"); A_BUSY=$(median "${a_busy[@]}")
            R_OPS=$(median "${r_ops[@]}"); R_P50=$(median "${r_p50[@]}"); R_P99=$(median "${r_p99[@]}")
            R_SRV=$(median "${r_srv[@]}"); R_GEN=$(median "${r_gen[@]}"); R_BUSY=$(median "${r_busy[@]}")
            ops_ratio=$(ratio "$A_OPS" "$R_OPS")
            p50_ratio=$(ratio "$A_P50" "$R_P50")
            printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s |\n' \
                "$name" "$A_OPS" "$(fmt_us "$A_P50")" "$(fmt_us "$A_P99")" \
                "$(awk -v r="$R_OPS" 'BEGIN { if (r == "-") print r; else printf "%.0f", r }')" \
                "$(fmt_us "$R_P50")" "$(fmt_us "$R_P99")" "$ops_ratio" "$p50_ratio" \
                "$A_SRV" "$A_GEN" "$(pct "$A_BUSY")" "$R_SRV" "$R_GEN" "$(pct "$R_BUSY")" >>"$OUT/kvs.md"
            echo "$name,$op,$c,$size,$keys,$A_OPS,$A_P50,$A_P99,$a_err,$R_OPS,$R_P50,$R_P99,$ops_ratio,$p50_ratio,$A_SRV,$A_GEN,$A_BUSY,$R_SRV,$R_GEN,$R_BUSY" >>"$OUT/kvs.csv"
            [ "$a_err" = 0 ] || echo "bench: warning: $name: anna-bench counted $a_err errors" >&2
            errors_total=$((errors_total + a_err))
            printf 'bench: %-15s anna %7.0f ops/s p50 %8s | redis %7s ops/s p50 %8s\n' "$name" \
                "$A_OPS" "$(fmt_us "$A_P50")" "$R_OPS" "$(fmt_us "$R_P50")"
        done
    done
done
{
    echo
    echo "ops ratio = anna ops/s / redis ops/s; p50 ratio = anna p50 / redis p50. Targets"
    echo "(docs/benchmarks.md): ops ratio >= 1 at the same client count (>= 1.5 at 50 clients)"
    echo "and p50 ratio <= 1.5. anna-bench errors over all runs: $errors_total."
    echo "Load average (1/5/15 min) at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "(above ~0.5 at the start, other processes were competing for the $NCPU cores)."
} >>"$OUT/kvs.md"
echo
cat "$OUT/kvs.md"
[ "$errors_total" = 0 ] || exit 1

# ---- FaaS: the composition benchmark (cb-bench) ---------------------------------------------
# A private cluster (cb up: one KVS node, a scheduler, one cache, three executors) on its own
# port offset (BENCH_FAAS_OFFSET, default 25500) and run dir; registers incr, square and
# incr_square, the DAG bench_dag = incr -> square, and runs cb-bench: square(incr(3)) as the
# DAG and as one function, 2000 calls each (--quick: 500), against the bare ZeroMQ round trip
# in the same run. Table in $OUT/faas.md, rows in $OUT/faas.csv.
FAAS_OFFSET=${BENCH_FAAS_OFFSET:-25500}
FAAS_DIR="$OUT/cb"
FAAS_CALLS=2000
[ $QUICK = 1 ] && FAAS_CALLS=500
faas_cleanup() {
    [ -f "$FAAS_DIR/supervisor.pid" ] && timeout 30 "$BIN/cb" --dir "$FAAS_DIR" down >/dev/null 2>&1
    stop_pids
}
trap faas_cleanup EXIT
for b in cb cb-bench cb-scheduler cb-executor cb-cache; do
    [ -x "$BIN/$b" ] || die "$BIN/$b not built (run make first)"
done
for f in incr square incr_square; do
    [ -f "$BUILD/examples/$f.so" ] || die "$BUILD/examples/$f.so not built (run make first)"
done
faas() { timeout 60 "$BIN/cb" --dir "$FAAS_DIR" "$@" >>"$OUT/faas-setup.log" 2>&1 ||
    { cat "$OUT/faas-setup.log" >&2; die "cb $* failed"; }; }
rm -f "$OUT/faas.md" "$OUT/faas.csv" "$OUT/faas-setup.log" "$OUT/cb-bench.log"
echo
echo "bench: FaaS cluster (cb up, port offset $FAAS_OFFSET, run dir $FAAS_DIR)"
timeout 90 "$BIN/cb" up --dir "$FAAS_DIR" --port-offset "$FAAS_OFFSET" >>"$OUT/faas-setup.log" 2>&1 ||
    { cat "$OUT/faas-setup.log" >&2; die "cb up failed (logs in $FAAS_DIR/logs)"; }
faas register incr "$BUILD/examples/incr.so"
faas register square "$BUILD/examples/square.so"
faas register incr_square "$BUILD/examples/incr_square.so"
faas dag create bench_dag incr square
FAAS_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
timeout 600 "$BIN/cb-bench" --port-offset "$FAAS_OFFSET" -n "$FAAS_CALLS" --warmup 200 \
    --csv "$OUT/faas.csv" >"$OUT/cb-bench.log" 2>&1 || { cat "$OUT/cb-bench.log" >&2; die "cb-bench failed"; }
{
    echo "# FaaS composition benchmark: square(incr(3))"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), \`make bench\`$([ $QUICK = 1 ] && echo ' (--quick)'),"
    echo "$NCPU vCPU ($HOST_CPU), Linux $(uname -r). One local cluster (cb up: 1 KVS node,"
    echo "1 scheduler, 1 cache, 3 executors), all on 127.0.0.1. cb-bench: closed loop, one call in"
    echo "flight, $FAAS_CALLS calls per row in 4 rounds taking turns, after 200 warm-up calls."
    echo "Latency in microseconds as the client sees it (the call returns with the result)."
    echo
    sed -n '/^| latency/,/^$/p' "$OUT/cb-bench.log"
    grep '^errors of' "$OUT/cb-bench.log" || true
    echo
    echo "Targets (docs/benchmarks.md): DAG p50 < 200 us and p99 < 1 ms; one function p50 < 120 us."
    echo "Load average at the start: $FAAS_LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$OUT/faas.md"
timeout 30 "$BIN/cb" --dir "$FAAS_DIR" down >>"$OUT/faas-setup.log" 2>&1
echo
cat "$OUT/faas.md"
