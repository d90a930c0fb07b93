#!/usr/bin/env bash
# tests/system/t_exec_basic.sh: real cb-executor processes against a real anna-server, driven
# by tests/system/exec_drive.c playing the scheduler and the client: pins, one-shot calls,
# DAGs across two executors (edge order of inputs, triggers before schedules, failures,
# expiry), crashes, timeouts, load failures, signatures (a third executor with trusted
# keys), refs, output keys, logs, the user library, malformed messages, warm-call latency.
# No cache is needed: the executors use --kvs.
source "$(dirname "$0")/lib.sh"

EXAMPLES=${T_EXAMPLES:-$(dirname "$T_BIN")/examples}
[ -f "$EXAMPLES/incr.so" ] || fail "no example functions in $EXAMPLES (make build-all)"

start_anna kvs
ROUTING=$(routing_addr)
SCHED="tcp://127.0.0.1:$((5007 + T_OFFSET))"

# start_exec NAME [cb-executor args...]: starts an executor, waits for its "ready" line (10 s
# at most), sets EXEC_ADDR and EXEC_PID.
start_exec() {
    local name=$1; shift
    local log="$T_WORK/exec-$name.log"
    "$T_BIN/cb-executor" --kvs "$ROUTING" --scheduler "$SCHED" --report-ms 200 "$@" >"$log" 2>&1 &
    EXEC_PID=$!
    T_PIDS+=("$EXEC_PID")
    for _ in $(seq 100); do
        EXEC_ADDR=$(sed -n 's/.* ready at \(tcp:[^ ]*\).*/\1/p' "$log" | head -1)
        [ -n "$EXEC_ADDR" ] && return 0
        kill -0 "$EXEC_PID" 2>/dev/null || { cat "$log" >&2; fail "cb-executor $name exited at start"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "cb-executor $name not ready within 10 s"
}

"$T_TESTS/exec_drive" pubkey 1 > "$T_WORK/trusted.keys" || fail "exec_drive pubkey"

start_exec a --node n0 --index 0;  A=$EXEC_ADDR; A_PID=$EXEC_PID
start_exec b --node n0 --index 1;  B=$EXEC_ADDR; B_PID=$EXEC_PID
start_exec t --node n1 --index 0 --trusted-keys "$T_WORK/trusted.keys"; T=$EXEC_ADDR; T_PID=$EXEC_PID

timeout 180 "$T_TESTS/exec_drive" run "$ROUTING" "$SCHED" "$EXAMPLES" "$A" "$B" "$T"
rc=$?
[ $rc = 0 ] || { tail -n 30 "$T_WORK"/exec-*.log >&2; fail "exec_drive failed (exit $rc)"; }

for pid in $A_PID $B_PID $T_PID; do
    kill -0 "$pid" 2>/dev/null || fail "an executor died during the test"
done
ok "executors alive after the test"

# A stopped executor leaves no runner behind.
RUNNERS=$(pgrep -P "$A_PID" | wc -l)
expect_eq "$RUNNERS" 1 "executor a has one runner"
RUNNER=$(pgrep -P "$A_PID")
kill -TERM "$A_PID"
for _ in $(seq 50); do kill -0 "$A_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$A_PID" 2>/dev/null && fail "executor a did not stop on SIGTERM"
wait "$A_PID"; rc=$?
expect_eq "$rc" 0 "executor a exit status"
echo "executor a: $(grep -o "warm runner round trip .*" "$T_WORK/exec-a.log")"
sleep 0.2
kill -0 "$RUNNER" 2>/dev/null && fail "the runner outlived its executor"
ok "the runner stops with its executor"
grep -q "ERROR: AddressSanitizer\|runtime error:" "$T_WORK"/exec-*.log && fail "sanitizer report in an executor log"
ok "no sanitizer reports"
