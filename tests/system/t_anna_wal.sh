#!/usr/bin/env bash
# tests/system/t_anna_wal.sh: the write-ahead log (--wal-dir). Under a write load, kill -9
# the node, restart it with the same --wal-dir: every acknowledged write is back
# (tests/system/anna_wal_check.c), with each --fsync policy and with --replication 2. A clean
# stop keeps everything too; compaction keeps the log small; a log written with other
# --threads is refused, and so is a second node on the same --wal-dir.
source "$(dirname "$0")/lib.sh"

check() { timeout 60 "$T_TESTS/anna_wal_check" "$@"; }

# wait_lines N FILE: waits (10 s at most) until FILE has N lines.
wait_lines() {
    for _ in $(seq 100); do
        [ "$(wc -l 2>/dev/null <"$2" || echo 0)" -ge "$1" ] && return 0
        sleep 0.1
    done
    fail "fewer than $1 acknowledged writes in $2 within 10 s"
}

# crash_and_recover NAME ARGS...: a writer PUTs in the background; after 300 acknowledged
# writes the node is killed with SIGKILL; restarted with the same arguments, it holds every
# write acknowledged before the kill. (With replication, a thread's log replays what it
# acknowledged itself and gossips it to the other replicas again, within a gossip period.)
crash_and_recover() {
    local name=$1; shift
    local dir="$T_WORK/wal-$name" acked="$T_WORK/acked-$name"
    start_anna "$name" --wal-dir "$dir" "$@"
    local pid=$ANNA_PID
    check put "$(routing_addr)" "$name-" 100000 "$acked" &
    local writer=$!
    wait_lines 300 "$acked"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    wait "$writer" || fail "$name: the writer got no acknowledgement"
    local n; n=$(wc -l <"$acked")
    start_anna "$name-again" --wal-dir "$dir" "$@"
    sleep 0.5
    check verify "$(routing_addr)" "$acked" || fail "$name: acknowledged writes lost"
    grep -q "write-ahead log replayed" "$T_WORK/$name-again.log" || fail "$name: no replay logged"
    ok "$name: all $n writes acknowledged before kill -9 are back after the restart"
    kill -TERM "$ANNA_PID"
    wait "$ANNA_PID" 2>/dev/null
}

crash_and_recover always --threads 2 --fsync always
crash_and_recover everyms --threads 2 --fsync everyms:20
crash_and_recover never --threads 2 --fsync never
crash_and_recover replicated --threads 2 --replication 2 --gossip-ms 20 --fsync always

# A clean stop (SIGTERM) keeps everything, and a second restart replays the same.
dir="$T_WORK/wal-clean"
start_anna clean --threads 2 --wal-dir "$dir" --fsync never
check put "$(routing_addr)" clean- 200 "$T_WORK/acked-clean" || fail "clean: writes"
kill -TERM "$ANNA_PID"; wait "$ANNA_PID"; expect_eq "$?" 0 "clean stop with a log"
start_anna clean-again --threads 2 --wal-dir "$dir" --fsync never
check verify "$(routing_addr)" "$T_WORK/acked-clean" || fail "clean: writes lost"
ok "a clean stop and restart keeps every write"

# The same --wal-dir cannot serve two nodes at once.
timeout 10 "$T_BIN/anna-server" --port-offset $((T_OFFSET + 100)) \
    --threads 2 --wal-dir "$dir" >"$T_WORK/second.log" 2>&1 && fail "a second node used the log"
grep -q "in use by another process" "$T_WORK/second.log" || { cat "$T_WORK/second.log" >&2;
    fail "second node: no clear message"; }
ok "a second node on the same wal-dir is refused: $(head -1 "$T_WORK/second.log")"
kill -TERM "$ANNA_PID"; wait "$ANNA_PID"

# A log written with --threads 2 is refused by a node with --threads 3 (its keys would land
# on threads that do not own them).
timeout 10 "$T_BIN/anna-server" --port-offset "$T_OFFSET" --threads 3 --wal-dir "$dir" \
    >"$T_WORK/layout.log" 2>&1 && fail "a node with other --threads used the log"
grep -q "was written with" "$T_WORK/layout.log" || { cat "$T_WORK/layout.log" >&2;
    fail "layout: no clear message"; }
ok "a log written with other --threads is refused"

# Compaction: 100 rounds over 100 keys (11000 writes, about 280K of records per thread) with
# a 64K threshold: each thread's log stays under 96K, and the last value of every key is back
# after a restart.
dir="$T_WORK/wal-compact"
start_anna compact --threads 2 --wal-dir "$dir" --fsync never --wal-compact-bytes 64K
check put "$(routing_addr)" compact- 100 "$T_WORK/acked-compact" 100 || fail "compact: writes"
compactions=0
for t in 0 1; do
    n=$(cli -c "GET ANNA_METADATA|stats|$t" | grep -o '"wal_compactions":[0-9]*' | cut -d: -f2)
    compactions=$((compactions + ${n:-0}))
done
[ "$compactions" -gt 0 ] || fail "compaction: no compaction counted in the stats"
ok "compaction: $compactions compactions counted"
kill -KILL "$ANNA_PID"; wait "$ANNA_PID" 2>/dev/null
for f in "$dir"/wal-*.log; do
    size=$(stat -c %s "$f")
    [ "$size" -le $((96 * 1024)) ] || fail "compaction: $f is $size bytes"
done
ok "compaction: logs $(stat -c %s "$dir"/wal-*.log | tr '\n' ' ')bytes after 11000 writes"
start_anna compact-again --threads 2 --wal-dir "$dir" --fsync never --wal-compact-bytes 64K
check verify "$(routing_addr)" "$T_WORK/acked-compact" || fail "compact: writes lost"
ok "compacted logs replay every last value"
echo PASS
