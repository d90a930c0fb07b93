#!/usr/bin/env bash
# tests/system/t_anna_malformed.sh: hostile input (tests/system/anna_malformed.c) against a
# node with --max-value-bytes 1024: every bad message is answered with the right error or
# counted and dropped, and the node stays correct. Then configuration errors: bad flags and
# config files exit non-zero with a clear message; --help and --version exit 0.
source "$(dirname "$0")/lib.sh"

start_anna node --threads 2 --max-value-bytes 1024
timeout 120 "$T_TESTS/anna_malformed" "$T_OFFSET" || fail "anna_malformed failed"
kill -0 "$ANNA_PID" || fail "anna-server died during the test"
grep -q 'dropped' "$T_WORK/node.log" || fail "no (rate-limited) log of dropped messages"
lines=$(grep -c 'dropped' "$T_WORK/node.log")
[ "$lines" -lt 20 ] || fail "peer-driven logs are not rate limited ($lines lines)"
ok "dropped messages logged, rate limited ($lines lines)"
kill -TERM "$ANNA_PID"
wait "$ANNA_PID"; rc=$?
expect_eq "$rc" 0 "exit status after the hostile input"

# expect_refused EXPECTED_TEXT ARGS...: anna-server exits 2 at once, saying EXPECTED_TEXT.
expect_refused() {
    local want=$1; shift
    local out rc
    out=$(timeout 10 "$T_BIN/anna-server" --port-offset "$T_OFFSET" "$@" 2>&1)
    rc=$?
    [ "$rc" -eq 2 ] || fail "anna-server $* exited $rc, want 2: $out"
    grep -qF -- "$want" <<<"$out" || fail "anna-server $*: message [$out] lacks [$want]"
    ok "anna-server $* -> $out"
}
expect_refused "unknown option --foo" --foo
expect_refused "threads must be 1..50" --threads 0
expect_refused "threads must be 1..50" --threads 51
expect_refused "threads: not an integer: lots" --threads lots
expect_refused "option --threads needs a value" --threads
expect_refused "replication must be 1..threads" --threads 2 --replication 3
expect_refused "gossip-ms must be" --gossip-ms 0
expect_refused "max-value-bytes must be" --max-value-bytes 0
expect_refused "bind: not an IPv4 address: nowhere" --bind nowhere
expect_refused "public-ip is required" --bind 0.0.0.0
expect_refused "port-offset must be" --port-offset 70000
expect_refused "unexpected argument 'stray'" stray
expect_refused "cannot open config file" --config "$T_WORK/does-not-exist.conf"
printf 'threads = 2\n# comment\nbogus = 1\n' >"$T_WORK/bad.conf"
expect_refused "bad.conf:3: unknown option bogus" --config "$T_WORK/bad.conf"
printf 'threads 2\n' >"$T_WORK/bad2.conf"
expect_refused "bad2.conf:1: expected \`name = value\`" --config "$T_WORK/bad2.conf"

out=$(timeout 10 "$T_BIN/anna-server" --help 2>&1); rc=$?
expect_eq "$rc" 0 "--help exit status"
for opt in --config --bind --public-ip --threads --replication --port-offset --gossip-ms \
           --max-value-bytes --vnodes --help --version; do
    grep -q -- "$opt" <<<"$out" || fail "--help does not list $opt"
done
grep -q '\[127.0.0.1\]' <<<"$out" && grep -q '\[100\]' <<<"$out" || fail "--help lacks defaults"
ok "--help lists every option with defaults"
out=$(timeout 10 "$T_BIN/anna-server" --version 2>&1); rc=$?
expect_eq "$rc" 0 "--version exit status"
grep -q '^anna-server [0-9]' <<<"$out" || fail "--version prints [$out]"
ok "--version: $out"

# A good config file is applied (and flags override it).
printf 'threads = 3\nreplication = 2 # inline comment\n' >"$T_WORK/good.conf"
start_anna conf --config "$T_WORK/good.conf" --replication 3
grep -q 'ready: 3 threads, .*replication 3' "$T_WORK/conf.log" || fail "config file not applied: $(cat "$T_WORK/conf.log")"
ok "config file applied, flags override it"
echo PASS
