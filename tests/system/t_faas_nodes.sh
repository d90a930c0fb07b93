#!/usr/bin/env bash
# cb up --nodes 2: two function nodes on one machine (node i binds 127.0.0.(i+1)), each with
# its cache and executors. A DAG whose functions report where they ran must show both nodes,
# and values written on one node are read through the other node's cache.
source "$(dirname "$0")/faas_lib.sh"

# hop(trail...) = the trail with this executor's id appended: where each function ran.
hop_so=$(build_fn hop <<'EOF2'
#include <stdio.h>
#include "executor/function.h"
const uint32_t cb_fn_abi_version = CB_FN_ABI_VERSION;
int cb_fn_run(cb_fn_ctx_t *ctx, const cb_fn_value_t *args, size_t nargs, cb_fn_value_t *result)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%.*s", nargs && args[nargs - 1].type == CB_FN_STRING
                     ? (int)args[nargs - 1].len : 0, nargs ? (const char *)args[nargs - 1].data : "");
    snprintf(buf + n, sizeof buf - (size_t)n, "%s%s", n ? " " : "", cb_fn_getid(ctx));
    return cb_fn_return_string(ctx, result, buf);
}
EOF2
)

faas_up --nodes 2 --executors 2
out=$(cb status) || fail "status"
echo "$out"
grep -q "^executors: 4" <<<"$out" || fail "expected 4 executors"
grep -q "^nodes: 2" <<<"$out" || fail "expected 2 nodes"
grep -Eq "^  n1/1 +tcp://127\.0\.0\.2:" <<<"$out" || fail "n1's executors are not on 127.0.0.2"
grep -Eq "^  n0/0 +tcp://127\.0\.0\.1:" <<<"$out" || fail "n0's executors are not on 127.0.0.1"
[ -n "$(pid_of cache-n1)" ] || fail "no cache for n1"
ok "two nodes, distinct addresses"

for i in 1 2 3 4; do
    expect_ok "register hop$i" "registered hop$i" register hop$i "$hop_so"
done
expect_ok "4-hop DAG" "created DAG hops: hop1 -> hop2, hop2 -> hop3, hop3 -> hop4" dag create hops hop1 hop2 hop3 hop4
both=0
for i in $(seq 30); do
    trail=$(cb call-dag hops --arg hop1=str:) || fail "call-dag hops"
    [ "$(wc -w <<<"$trail")" = 4 ] || fail "trail of 4 hops expected, got [$trail]"
    if grep -q "127.0.0.1" <<<"$trail" && grep -q "127.0.0.2" <<<"$trail"; then
        both=1
        break
    fi
done
[ $both = 1 ] || fail "30 calls never ran on both nodes (last trail: $trail)"
ok "one DAG call ran on both nodes: $trail"

# One-shot calls spread too, and state is shared through the KVS whatever the node.
expect_ok "register incr" "registered incr" register incr "$T_EXAMPLES/incr.so"
expect_ok "put" "OK" put shared/x 41
nodes_seen=""
for i in $(seq 30); do
    expect_ok "ref from any node ($i)" "42" call incr @shared/x >/dev/null
    where=$(cb call hop1 str:) || fail "call hop1"
    nodes_seen="$nodes_seen $where"
    grep -q "127.0.0.1" <<<"$nodes_seen" && grep -q "127.0.0.2" <<<"$nodes_seen" && break
done
grep -q "127.0.0.1" <<<"$nodes_seen" && grep -q "127.0.0.2" <<<"$nodes_seen" ||
    fail "one-shot calls never reached both nodes: $nodes_seen"
ok "one-shot calls placed on both nodes"
expect_ok "update" "OK" put shared/x 99
wait_until 10 "both caches see the update" bash -c "for i in 1 2 3 4 5 6 7 8; do [ \"\$(timeout 10 '$CB_BIN' --dir '$CB_RUN' call incr @shared/x 2>/dev/null)\" = 100 ] || exit 1; done"
ok "an update is seen on every node"
faas_alive 0
echo "t_faas_nodes: all passed"
