#!/usr/bin/env bash
# bench/resp_bench.sh: redis-benchmark against anna-server's RESP front end and against a
# private redis-server, in the same run: GET and SET, 1 and 50 clients, pipelines of 1 and
# 16, 3-byte and 4 KiB values. Each cell is the median of REPS runs, anna and redis taking
# turns run by run (these shared VMs drift by up to 1.5x), on the same key names
# (key:%012d), with every key written before the GETs on both sides.
#   bench/resp_bench.sh BUILD_DIR [--quick]
# Output: a table on stdout and in BUILD_DIR/bench/resp.md; every run in
# BUILD_DIR/bench/resp.csv; the servers' logs beside them.
# Environment: BENCH_OFFSET (port offset, default 21000: anna's RESP port is 6379 + offset,
# redis-server's the next one), ANNA_THREADS (default 2), BENCH_DURATION (seconds per run,
# default 1.5), BENCH_REPS (runs per cell, default 3), BENCH_KEYS (default 100000).
# Stops exactly the processes it started, on any exit; every wait has a time limit.
BENCH_NAME=resp_bench
source "$(dirname "$0")/lib.sh"
OFFSET=${BENCH_OFFSET:-21000}
ANNA_THREADS=${ANNA_THREADS:-2}
ANNA_PORT=$((6379 + OFFSET))
REDIS_PORT=$((6380 + OFFSET))
DURATION=${BENCH_DURATION:-1.5}
REPS=${BENCH_REPS:-3}
KEYS=${BENCH_KEYS:-100000}
CLK_TCK=$(getconf CLK_TCK)
if [ $QUICK = 1 ]; then
    REPS=1; DURATION=1; KEYS=10000
    CELLS="get:50:16:3 set:50:16:3 get:1:1:3"
else
    CELLS=""
    for size in 3 4096; do for c in 1 50; do for p in 1 16; do for op in get set; do
        CELLS="$CELLS $op:$c:$p:$size"
    done; done; done; done
fi

mkdir -p "$OUT"
rm -f "$OUT/resp.md" "$OUT/resp.csv"


[ -x "$BIN/anna-server" ] || die "$BIN/anna-server not built (run make first)"
for tool in redis-server redis-benchmark redis-cli; do
    command -v $tool >/dev/null || die "$tool not found (Debian package redis-tools / redis-server)"
done

# ---- servers -------------------------------------------------------------------------------

"$BIN/anna-server" --port-offset "$OFFSET" --threads "$ANNA_THREADS" --resp \
    >"$OUT/resp-anna-server.log" 2>&1 &
ANNA_PID=$!
PIDS+=("$ANNA_PID")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$OUT/resp-redis-server.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do
    grep -q ready "$OUT/resp-anna-server.log" &&
        timeout 2 redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break
    kill -0 "$ANNA_PID" 2>/dev/null || { cat "$OUT/resp-anna-server.log" >&2; die "anna-server exited"; }
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$OUT/resp-redis-server.log" >&2; die "redis-server exited"; }
    sleep 0.1
done
timeout 2 redis-cli -p "$ANNA_PORT" PING >/dev/null 2>&1 || die "anna-server's RESP port $ANNA_PORT does not answer"

# Every key, with a value of SIZE bytes, on both servers (so that no GET misses).
preload() {
    local size=$1 port value
    value=$(head -c "$size" /dev/zero | tr '\0' 'x')
    for port in $ANNA_PORT $REDIS_PORT; do
        awk -v n="$KEYS" -v v="$value" 'BEGIN { for (i = 0; i < n; i++)
            printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n", i, length(v), v }' |
            timeout 120 redis-cli -p "$port" --pipe >/dev/null 2>&1 || die "preload of port $port failed"
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# run SERVER OP C P SIZE N -> "rps p50_ms cores" (cores: server CPU / wall time)
run() {
    local server=$1 op=$2 c=$3 p=$4 size=$5 n=$6 port pid t0 t1 c0 c1 line
    if [ "$server" = anna ]; then port=$ANNA_PORT; pid=$ANNA_PID; else port=$REDIS_PORT; pid=$REDIS_PID; fi
    c0=$(cpu_ticks "$pid"); t0=$(date +%s%N)
    line=$(timeout 120 redis-benchmark -p "$port" -c "$c" -P "$p" -d "$size" -r "$KEYS" -n "$n" \
        -t "$op" --csv 2>/dev/null | grep -v '^"test"' | tail -n 1)
    t1=$(date +%s%N); c1=$(cpu_ticks "$pid")
    [ -n "$line" ] || { echo "0 0 0"; return; }
    echo "$line" | awk -F'"' -v ticks=$((c1 - c0)) -v tck="$CLK_TCK" -v ns=$((t1 - t0)) \
        '{ printf "%d %s %.2f\n", $4, $10, ticks / tck / (ns / 1e9) }'
}

median() { sort -g | awk '{a[NR] = $1} END { print (NR ? a[int((NR + 1) / 2)] : 0) }'; }

echo "server,op,clients,pipeline,size,requests,rps,p50_ms,server_cores" >"$OUT/resp.csv"
{
    echo "| test | anna ops/s | anna p50 | redis ops/s | redis p50 | ops ratio | anna cores | redis cores |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
} >"$OUT/resp.md"
loaded=""
for cell in $CELLS; do
    IFS=: read -r op c p size <<<"$cell"
    if [ "$loaded" != "$size" ]; then preload "$size"; loaded=$size; fi
    # A first short run per server sizes the measured runs to about DURATION seconds.
    declare -A n=()
    for server in anna redis; do
        read -r rps _ _ < <(run $server "$op" "$c" "$p" "$size" $((c * p * 200)))
        n[$server]=$(awk -v r="$rps" -v d="$DURATION" -v m=$((c * p * 100)) \
            'BEGIN { x = int(r * d); print (x < m ? m : x) }')
    done
    : >"$OUT/.resp_cell"
    for rep in $(seq "$REPS"); do
        for server in anna redis; do
            read -r rps p50 cores < <(run $server "$op" "$c" "$p" "$size" "${n[$server]}")
            echo "$server,$op,$c,$p,$size,${n[$server]},$rps,$p50,$cores" >>"$OUT/resp.csv"
            echo "$server $rps $p50 $cores" >>"$OUT/.resp_cell"
        done
    done
    med() { awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$OUT/.resp_cell" | median; }
    a_rps=$(med anna 2); r_rps=$(med redis 2)
    row=$(printf "| %s c=%s P=%s %sB | %s | %s ms | %s | %s ms | %s | %s | %s |" \
        "$(echo "$op" | tr a-z A-Z)" "$c" "$p" "$size" "$a_rps" "$(med anna 3)" "$r_rps" \
        "$(med redis 3)" "$(awk -v a="$a_rps" -v r="$r_rps" 'BEGIN { printf "%.2f", r ? a / r : 0 }')" \
        "$(med anna 4)" "$(med redis 4)")
    echo "$row" >>"$OUT/resp.md"
    echo "$row"
done
rm -f "$OUT/.resp_cell"
{
    echo
    echo "anna-server --threads $ANNA_THREADS --resp vs redis-server $(redis-server --version | awk '{print $3}' | tr -d 'v='),"
    echo "redis-benchmark -r $KEYS (uniform keys key:%012d, all preloaded), median of $REPS runs of ~${DURATION} s, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs."
    echo "ops ratio = anna / redis (higher is better for anna); cores = server CPU time / wall time."
} >>"$OUT/resp.md"
echo
cat "$OUT/resp.md"
