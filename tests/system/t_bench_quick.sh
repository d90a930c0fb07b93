# tests/system/t_bench_quick.sh: anna-bench passes its self-tests; --quick against a real node
# gives a result with non-zero throughput and no errors; and when the node is frozen
# (kill -STOP) mid-run the benchmark still ends on time, counting timeouts instead of hanging.
. "$(dirname "$0")/lib.sh"

# 0. The generator's own self-tests: histogram percentiles, message codec vs protobuf-c.
timeout 60 "$T_BIN/anna-bench" --self-test >"$T_WORK/self-test.out" 2>&1 ||
    { cat "$T_WORK/self-test.out"; fail "anna-bench --self-test"; }
ok "anna-bench --self-test"

start_anna node --threads 2
R=$(routing_addr)

# 1. A clean quick run.
out=$(timeout 60 "$T_BIN/anna-bench" --quick --routing "$R" --json "$T_WORK/quick.json" 2>&1)
rc=$?
echo "$out"
expect_eq "$rc" 0 "anna-bench --quick exit status"
line=$(grep '^result: ' <<<"$out") || fail "no result line"
ops=$(awk '{ print $2 }' <<<"$line")
[ "${ops:-0}" -gt 0 ] || fail "no operations completed: $line"
ok "throughput: $line"
grep -q '^errors 0, misses 0' <<<"$out" || fail "errors or misses: $(grep '^errors' <<<"$out")"
ok "no errors, no misses"
grep -q '^epoch 1: [1-9][0-9]* ops/s' <<<"$out" || fail "no epoch progress line"
ok "progress lines"
grep -q '"ops_per_s": [1-9]' "$T_WORK/quick.json" || fail "JSON result missing"
ok "JSON result"

# 2. Freeze the node mid-run: the run must still end by --duration + --timeout (plus set-up
# and slack), with the lost requests counted as timeouts. Always thaw the node before exit
# (lib.sh's cleanup cannot stop a stopped process with TERM).
trap 'kill -CONT "$ANNA_PID" 2>/dev/null; t_cleanup' EXIT
"$T_BIN/anna-bench" --quick --routing "$R" --duration 3 --timeout 300 \
    >"$T_WORK/stopped.out" 2>&1 &
bench_pid=$!
sleep 1.5
kill -STOP "$ANNA_PID"
start=$SECONDS
ended=0
for _ in $(seq 150); do             # 15 s at most; the run needs about 2 more seconds
    kill -0 "$bench_pid" 2>/dev/null || { ended=1; break; }
    sleep 0.1
done
kill -CONT "$ANNA_PID"
if [ $ended = 0 ]; then
    kill -KILL "$bench_pid" 2>/dev/null
    cat "$T_WORK/stopped.out"
    fail "anna-bench did not end while the server was stopped"
fi
wait "$bench_pid"
rc=$?
cat "$T_WORK/stopped.out"
expect_eq "$rc" 0 "anna-bench exit status with the server stopped"
ok "ended $((SECONDS - start)) s after the server was stopped"
timeouts=$(sed -n 's/^errors [0-9]* (.*timeout \([0-9]*\).*/\1/p' "$T_WORK/stopped.out")
[ "${timeouts:-0}" -gt 0 ] || fail "no timeouts counted: $(grep '^errors' "$T_WORK/stopped.out")"
ok "timeouts counted: $timeouts"

# 3. The node still works after being thawed.
out=$(timeout 60 "$T_BIN/anna-bench" --quick --routing "$R" --duration 1 2>&1) || fail "rerun: $out"
grep -q '^errors 0,' <<<"$out" || fail "errors after thaw: $(grep '^errors' <<<"$out")"
ok "node serves again after SIGCONT"
echo "PASS"
