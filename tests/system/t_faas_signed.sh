#!/usr/bin/env bash
# Signed uploads: with trusted keys configured (cb up --trusted-keys), executors refuse
# unsigned code and code signed by another key with a clear error, and run code signed by a
# trusted key. Without trusted keys, signed code runs too.
source "$(dirname "$0")/faas_lib.sh"

cb keygen "$T_WORK/keys" >/dev/null || fail "cb keygen"
[ -f "$T_WORK/keys/cb.key" ] && [ -f "$T_WORK/keys/cb.pub" ] || fail "keygen wrote no keys"
[ "$(stat -c %a "$T_WORK/keys/cb.key")" = 600 ] || fail "secret key is not mode 600"
[ "$(tr -d '\n' <"$T_WORK/keys/cb.pub" | wc -c)" = 64 ] || fail "public key is not 64 hex digits"
cb keygen "$T_WORK/other" >/dev/null || fail "cb keygen other"
ok "cb keygen"
expect_err "keygen refuses to overwrite" "exists" keygen "$T_WORK/keys"
expect_err "up with a secret key as trusted keys" "not a public key" up --port-offset "$T_OFFSET" \
    --trusted-keys "$T_WORK/keys/cb.key"
expect_err "register with a public key to sign" "not a secret key" register incr \
    "$T_EXAMPLES/incr.so" --sign "$T_WORK/keys/cb.pub"

faas_up --trusted-keys "$T_WORK/keys/cb.pub"

# Unsigned: refused, at registration or at the first call, with CB_UNTRUSTED's words.
if cb register incr "$T_EXAMPLES/incr.so" >/dev/null 2>"$T_WORK/stderr"; then
    expect_err "unsigned function refused" "untrusted|unsigned|signed" call incr 1
else
    grep -Eq "untrusted|unsigned|signed" "$T_WORK/stderr" || fail "unsigned register: $(cat "$T_WORK/stderr")"
    ok "unsigned function refused at registration: $(cat "$T_WORK/stderr")"
fi
# Signed by a key that is not trusted: refused too.
if cb register square "$T_EXAMPLES/square.so" --sign "$T_WORK/other/cb.key" >/dev/null 2>"$T_WORK/stderr"; then
    expect_err "function signed by an untrusted key refused" "untrusted|signed" call square 2
else
    grep -Eq "untrusted|signed" "$T_WORK/stderr" || fail "untrusted register: $(cat "$T_WORK/stderr")"
    ok "untrusted key refused at registration: $(cat "$T_WORK/stderr")"
fi
faas_alive 0

# Signed by the trusted key: runs, alone and in a DAG.
expect_ok "signed register incr" "registered incr (signed)" register incr "$T_EXAMPLES/incr.so" --sign "$T_WORK/keys/cb.key"
expect_ok "signed register square" "registered square (signed)" register square "$T_EXAMPLES/square.so" --sign "$T_WORK/keys/cb.key"
expect_ok "signed incr runs" "2" call incr 1
expect_ok "signed DAG" "created DAG pipeline: incr -> square" dag create pipeline incr square
expect_ok "signed DAG runs" "16" call-dag pipeline --arg incr=3

# The signature covers the name: the same code and signature under another name is not
# trusted (registration signs name || 0 || code, so re-signing is the only way).
expect_ok "signed register as incr2" "registered incr2 (signed)" register incr2 "$T_EXAMPLES/incr.so" --sign "$T_WORK/keys/cb.key"
expect_ok "incr2 runs" "3" call incr2 2
faas_alive 0
faas_down

# Without trusted keys, signed and unsigned code both run.
faas_up
expect_ok "signed, no trusted keys" "registered incr (signed)" register incr "$T_EXAMPLES/incr.so" --sign "$T_WORK/keys/cb.key"
expect_ok "runs" "5" call incr 4
expect_ok "unsigned, no trusted keys" "registered square" register square "$T_EXAMPLES/square.so"
expect_ok "runs" "25" call square 5
faas_alive 0
echo "t_faas_signed: all passed"
