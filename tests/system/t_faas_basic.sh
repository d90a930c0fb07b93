#!/usr/bin/env bash
# Every operation of the cb CLI against a real local cluster (cb up: one KVS node, a
# scheduler, one cache, three executors): register/list/delete functions, create/list/delete
# DAGs, one-shot calls and DAG calls with typed arguments, results straight back and through
# an output key (a future), a reference argument, put/get, status, down.
source "$(dirname "$0")/faas_lib.sh"

faas_up
[ -f "$CB_RUN/cluster" ] || fail "cb up wrote no cluster file"
[ -n "$(pid_of kvs)" ] && [ -n "$(pid_of scheduler)" ] && [ -n "$(pid_of cache-n0)" ] ||
    fail "state file lacks children"
for j in 0 1 2; do [ -n "$(pid_of executor-n0-$j)" ] || fail "no executor-n0-$j"; done
ok "cb up: kvs, scheduler, cache, 3 executors"

# A second cb up on the same run dir is refused, and leaves the first alone.
expect_err "second cb up" "already running" up --port-offset "$T_OFFSET"

# status before anything is registered
out=$(cb status) || fail "cb status"
echo "$out"
grep -q "^executors: 3" <<<"$out" || fail "status: expected 3 executors"
grep -q "^nodes: 1" <<<"$out" || fail "status: expected 1 node"
grep -q "n0/0" <<<"$out" && grep -q "n0/2" <<<"$out" || fail "status: executor ids"
ok "cb status"

# functions
expect_ok "register incr" "registered incr" register incr "$T_EXAMPLES/incr.so"
expect_ok "register square" "registered square" register square "$T_EXAMPLES/square.so"
expect_ok "list functions" "$(printf 'incr\nsquare')" functions
expect_ok "call incr 3" "4" call incr 3
expect_ok "call square 7" "49" call square 7
expect_ok "call square -4" "16" call square -- -4
expect_ok "re-register (replace)" "registered incr" register incr "$T_EXAMPLES/incr.so"
expect_ok "call incr after re-register" "11" call incr 10

# DAGs: the compact chain form, and the explicit edge form
expect_ok "dag create chain" "created DAG pipeline: incr -> square" dag create pipeline incr square
expect_ok "dag create edges" "created DAG pipe2: square -> incr" dag create pipe2 square incr --edge square:incr
expect_ok "list dags" "$(printf 'pipe2\npipeline')" dags
expect_ok "call-dag pipeline 3" "16" call-dag pipeline --arg incr=3
expect_ok "call-dag pipe2 3" "10" call-dag pipe2 --arg square=3
for i in 1 2 3 4 5; do
    expect_ok "call-dag pipeline $i (repeat)" "$(( (i + 1) * (i + 1) ))" call-dag pipeline --arg incr=$i
done

# put/get of typed values
expect_ok "put int" "OK" put k_int 41
expect_ok "get int" "41" get k_int
expect_ok "put string" "OK" put k_str str:hello
expect_ok "get string" '"hello"' get k_str
expect_ok "put float" "OK" put k_float 2.5
expect_ok "get float" "2.5" get k_float
expect_err "get missing key" "does not exist" get k_missing

# a reference argument: the value is read next to the function
expect_ok "call incr @k_int" "42" call incr @k_int
expect_ok "call-dag with a ref" "1764" call-dag pipeline --arg incr=@k_int
expect_err "ref to a missing key" "k_nowhere" call incr @k_nowhere

# futures: results into the KVS at an output key
expect_ok "call with output key" "4" call incr 3 --output-key out_call
expect_ok "future read back" "4" get out_call
expect_ok "call-dag with output key" "36" call-dag pipeline --arg incr=5 --output-key out_dag
expect_ok "get the dag's output key" "36" get out_dag
key=$(cb call-dag pipeline --arg incr=6 --output-key out_async --async) || fail "--async"
expect_eq "$key" "out_async" "--async prints the key"
expect_ok "wait for the async result" "49" get out_async --wait 10000

# status shows the functions, DAGs, calls
out=$(cb status) || fail "cb status"
grep -q "^functions: 2" <<<"$out" && grep -q "^dags: 2" <<<"$out" || { echo "$out"; fail "status lists"; }
calls=$(awk '/^  n0\// { s += $4 } END { print s + 0 }' <<<"$out")
[ "$calls" -gt 0 ] || { echo "$out"; fail "status: no calls counted"; }
ok "status after calls ($calls calls)"

# deletions
expect_ok "dag delete" "deleted DAG pipe2" dag delete pipe2
expect_ok "dags after delete" "pipeline" dags
expect_err "call deleted dag" "pipe2" call-dag pipe2 --arg square=3
expect_ok "delete pipeline" "deleted DAG pipeline" dag delete pipeline
expect_ok "delete function" "deleted square" delete square
expect_ok "functions after delete" "incr" functions
expect_err "call deleted function" "square" call square 3
expect_ok "incr still works" "2" call incr 1

faas_alive 0

# down: stops everything; the verbs then fail with a clear message, quickly
kvs_pid=$(pid_of kvs); sched_pid=$(pid_of scheduler)
faas_down
kill -0 "$SUP_PID" 2>/dev/null && fail "supervisor still running after cb down"
kill -0 "$kvs_pid" 2>/dev/null && fail "anna-server still running after cb down"
kill -0 "$sched_pid" 2>/dev/null && fail "scheduler still running after cb down"
ok "cb down stopped everything"
start=$SECONDS
expect_err "status with no cluster" "no answer" --timeout 500 status
[ $((SECONDS - start)) -le 5 ] || fail "status with no cluster took $((SECONDS - start)) s"
out=$(cb down) || fail "second cb down"
grep -q "no cluster running" <<<"$out" || fail "second cb down: [$out]"
ok "cb down twice"
echo "t_faas_basic: all passed"
