#!/usr/bin/env bash
# tests/system/t_resp.sh: the RESP (Redis protocol) front end, through redis-cli (Debian's
# redis-tools) and raw bytes over bash's /dev/tcp: every command and its error paths, a
# pipelined session answered in order across both worker threads, inline commands,
# malformed input closing only its own connection, AUTH, the output limit of a client that
# does not read, LWW interop with anna-cli both ways, the client limit, and a clean stop.
source "$(dirname "$0")/lib.sh"

command -v redis-cli >/dev/null || fail "redis-cli not installed (Debian package redis-tools)"
PORT=$((6379 + T_OFFSET))
start_anna node --threads 2 --resp-port "$PORT" --resp-max-clients 40

# rc ARGS...: one redis-cli command, replies shown typed ((nil), (integer) 1, (error) ...).
rc() { timeout 10 redis-cli -p "$PORT" --no-raw "$@" 2>&1; }
# is EXPECTED ARGS...: the command's output must be EXPECTED.
is() { local want=$1; shift; expect_eq "$(rc "$@")" "$want" "$*"; }

# ---- strings --------------------------------------------------------------------------------
is PONG PING
is '"hello world"' PING "hello world"
is '"x y"' ECHO "x y"
is OK SET s:a 1
is '"1"' GET s:a
is '(nil)' GET s:missing
is OK SET s:a "two words"
is '"two words"' GET s:a
is OK MSET s:b 2 s:c 3 s:d 4
is $'1) "two words"\n2) "2"\n3) (nil)\n4) "4"' MGET s:a s:b s:none s:d
is '(integer) 3' EXISTS s:a s:b s:none s:a
is '(integer) 9' STRLEN s:a
is '(integer) 0' STRLEN s:missing
is string TYPE s:a
is none TYPE s:missing
big=$(head -c 100000 /dev/zero | tr '\0' 'b')
is OK SET s:big "$big"
expect_eq "$(timeout 10 redis-cli -p "$PORT" GET s:big | wc -c)" 100001 "100 KB value round trip"
is OK SET s:empty ""
is '""' GET s:empty
is '(integer) 1' EXISTS s:empty

# DEL writes a tombstone: GET nil, EXISTS 0, TYPE none, counted once; a later SET wins.
is '(integer) 2' DEL s:b s:c s:none
is '(nil)' GET s:b
is '(integer) 0' EXISTS s:b s:c
is none TYPE s:b
is '(integer) 0' DEL s:b
is OK SET s:b again
is '"again"' GET s:b
is '(integer) 1' UNLINK s:b
is '(nil)' GET s:b

# ---- sets -----------------------------------------------------------------------------------
is '(integer) 3' SADD t:s x y z
is '(integer) 1' SADD t:s x w w
is '(integer) 0' SADD t:s z
is $'1) "w"\n2) "x"\n3) "y"\n4) "z"' SMEMBERS t:s
is '(integer) 4' SCARD t:s
is '(integer) 1' SISMEMBER t:s y
is '(integer) 0' SISMEMBER t:s q
is '(integer) 0' SISMEMBER t:none q
is '(integer) 0' SCARD t:none
is '(empty array)' SMEMBERS t:none
is set TYPE t:s

# ---- wrong kinds, refusals, unknown commands, arity ------------------------------------------
WT='(error) WRONGTYPE Operation against a key holding the wrong kind of value'
is "$WT" GET t:s
is "$WT" SET t:s v
is "$WT" SADD s:a m
is "$WT" SMEMBERS s:a
is "$WT" SCARD s:a
is "$WT" SISMEMBER s:a m
is "$WT" STRLEN t:s
is $'1) "two words"\n2) (nil)' MGET s:a t:s
is '(error) ERR DEL removes string values only: this key holds a lattice that only grows (nothing was deleted)' DEL s:a t:s
is '"two words"' GET s:a
is "(error) ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' " FOO bar baz
is "(error) ERR unknown command 'nope', with args beginning with: " nope
rc INCR s:a | grep -q "^(error) ERR 'INCR' is not supported" || fail "INCR refused"
ok "INCR refused clearly"
rc SREM t:s x | grep -q "^(error) ERR 'SREM' is not supported: SET values are grow-only" || fail "SREM refused"
ok "SREM refused clearly"
rc SET s:a v EX 10 | grep -q "^(error) ERR SET option 'EX' is not supported" || fail "SET EX refused"
ok "SET EX refused clearly"
rc EXPIRE s:a 10 | grep -q "no TTL" || fail "EXPIRE refused"
ok "EXPIRE refused clearly"
is "(error) ERR wrong number of arguments for 'get' command" GET
is "(error) ERR wrong number of arguments for 'get' command" GET a b
is "(error) ERR wrong number of arguments for 'mset' command" MSET a 1 b
is "(error) ERR wrong number of arguments for 'sadd' command" SADD k
is '(error) ERR empty keys are not supported by this store' GET ""
is '(error) ERR keys starting with ANNA_METADATA| are reserved' SET 'ANNA_METADATA|x' 1

# ---- connection and server commands --------------------------------------------------------
is OK SELECT 0
is '(error) ERR DB index is out of range' SELECT 1
is '(error) ERR value is not an integer or out of range' SELECT x
is '(error) NOPROTO sorry, this protocol version is not supported.' HELLO 3
rc HELLO 2 | head -4 | sed 's/^ *//' | paste -sd' ' | grep -q '1) "server" 2) "anna" 3) "version"' || fail "HELLO 2"
ok "HELLO 2"
is '(empty array)' COMMAND DOCS
rc COMMAND COUNT | grep -q '^(integer) [1-9]' || fail "COMMAND COUNT"
ok "COMMAND COUNT"
is $'1) "save"\n2) ""' CONFIG GET save
is $'1) "appendonly"\n2) "no"' CONFIG GET appendonly
expect_eq "$(printf 'CLIENT SETNAME tester\nCLIENT GETNAME\n' | rc)" $'OK\n"tester"' "CLIENT SETNAME/GETNAME"
rc CLIENT ID | grep -q '^(integer) [1-9]' || fail "CLIENT ID"
is OK QUIT
info=$(timeout 10 redis-cli -p "$PORT" INFO)
for field in redis_version anna_version connected_clients total_commands_processed \
             db0:keys= resp_thread0 resp_thread1 worker_thread0:requests= worker_thread1:; do
    grep -q "$field" <<<"$info" || fail "INFO lacks $field: $info"
done
ok "INFO: server, clients, stats, keyspace, per-thread counters"
rc DBSIZE | grep -q '^(integer) [1-9]' || fail "DBSIZE"
ok "DBSIZE"
# ---- raw protocol ---------------------------------------------------------------------------
# raw BYTES (printf format) -> the replies, read until the server closes or 3 s pass.
raw() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf '$1' >&3; timeout 3 cat <&3"; }

# Inline commands, quoting, and an empty line.
expect_eq "$(raw 'PING\r\n\r\nSET in:a "x y"\r\nGET in:a\r\nQUIT\r\n')" \
    "$(printf '+PONG\r\n+OK\r\n$3\r\nx y\r\n+OK\r\n')" "inline commands"
# A key with a NUL byte is refused (it would be cut at the NUL on the way to the worker).
expect_eq "$(raw '*2\r\n$3\r\nGET\r\n$3\r\na\x00b\r\nQUIT\r\n')" \
    "$(printf -- '-ERR keys must not contain NUL bytes\r\n+OK\r\n')" "NUL in a key"

# Pipelining: 600 commands in one write, keys on both worker threads, each key written,
# read, deleted, read and written again: replies in order, every read sees the write
# before it.
cmds="" want=""
for i in $(seq 0 99); do
    k="p:$i"
    cmds+="SET $k v$i\r\nGET $k\r\nDEL $k\r\nGET $k\r\nSADD ps:$i m\r\nSET $k w$i\r\n"
    want+="+OK\r\n\$$(( ${#i} + 1 ))\r\nv$i\r\n:1\r\n\$-1\r\n:1\r\n+OK\r\n"
done
cmds+="MGET p:0 p:1 p:2 p:3\r\nQUIT\r\n"
want+="*4\r\n\$2\r\nw0\r\n\$2\r\nw1\r\n\$2\r\nw2\r\n\$2\r\nw3\r\n+OK\r\n"
got=$(raw "$cmds")
[ "$got" == "$(printf "$want")" ] || { diff <(printf '%s' "$got" | tr '\r' ' ') <(printf "$want" | tr '\r' ' ') | head; fail "pipelined session"; }
ok "600 pipelined commands answered in order across both threads"
# The same through redis-cli --pipe (its own framing and end marker).
for i in $(seq 1 2000); do printf 'SET pipe:%d %d\r\n' "$i" "$i"; done >"$T_WORK/pipe.txt"
out=$(timeout 30 redis-cli -p "$PORT" --pipe <"$T_WORK/pipe.txt")
grep -q "errors: 0, replies: 2000" <<<"$out" || fail "redis-cli --pipe: $out"
is '"1234"' GET pipe:1234
ok "redis-cli --pipe: 2000 commands"

# Malformed input: an error reply, then that connection (only) is closed.
exec 4<>/dev/tcp/127.0.0.1/"$PORT"
for bad in '*1\r\n$x\r\n' '*2\r\n$3\r\nGET\r\n+k\r\n' '*abc\r\n' '*1\r\n$2\r\nabc\r\n' \
           'SET "unbalanced\r\n'; do
    t0=$(date +%s%N)
    out=$(raw "$bad")
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [[ "$out" == "-ERR Protocol error: "* ]] || fail "malformed '$bad' got [$out]"
    # raw reads until the server closes or 3 s pass: closing is what makes it return early.
    [ "$ms" -lt 2500 ] || fail "malformed '$bad': connection not closed (${ms} ms)"
    ok "malformed '$bad' -> ${out%$'\r'*}, connection closed"
done
printf 'PING\r\n' >&4
expect_eq "$(timeout 5 head -c 7 <&4)" "$(printf '+PONG\r\n')" "another connection still served"
exec 4<&-
# Junk never crashes the node (ASan build): a seeded round, the same every run, then random
# bytes, then random bytes shaped like RESP. Each connection ends with an error or EOF.
LC_ALL=C awk 'BEGIN { s = 4242; for (i = 0; i < 65536; i++) { s = (s * 1103515245 + 12345) % 2147483648;
     printf "%c", int(s / 65536) % 256 } }' >"$T_WORK/junk1"
head -c 65536 /dev/urandom >"$T_WORK/junk2"
head -c 65536 /dev/urandom | tr '\0-\077' '*$\r\n0123456789 GETSETMGETDEL"' >"$T_WORK/junk3"
for j in 1 2 3; do
    timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat '$T_WORK/junk$j' >&3 2>/dev/null; timeout 3 cat <&3 >/dev/null"
    is PONG PING
done
ok "junk input: node alive and answering"
# A huge declared bulk is refused before any of it is buffered.
out=$(raw '*2\r\n$3\r\nGET\r\n$999999999999\r\n')
expect_eq "${out%$'\r'*}" "-ERR Protocol error: invalid bulk length" "oversized bulk refused"

# A client that never reads its replies stops being read: the node does not grow without
# bound (unbounded, these 4000 GETs of 256 KB would hold 1 GB of replies).
# (-x: the value comes from stdin; 256 KB is over the kernel's limit for one argument.)
expect_eq "$(head -c 262144 /dev/zero | tr '\0' g | timeout 10 redis-cli -p "$PORT" -x SET s:huge)" OK "SET of 256 KB"
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$ANNA_PID/status")
python3 - "$PORT" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(0.5)
try:
    s.sendall(b"*2\r\n$3\r\nGET\r\n$6\r\ns:huge\r\n" * 4000)
except Exception:
    pass
time.sleep(4)
EOF
slow=$!
sleep 3
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$ANNA_PID/status")
is '"two words"' GET s:a
grow=$(( (rss_after - rss_before) / 1024 ))
[ "$grow" -lt 256 ] || fail "a non-reading client grew the node by $grow MB"
ok "a non-reading client: node grew $grow MB (bounded), others still served"
wait "$slow" 2>/dev/null

# ---- interop with the Anna protocol (LWW both ways) ----------------------------------------
if [ -x "$T_BIN/anna-cli" ]; then
    is OK SET x:from-resp "written by redis-cli"
    expect_eq "$(cli -c 'GET x:from-resp')" "written by redis-cli" "anna-cli reads a RESP write"
    expect_eq "$(cli -c 'PUT x:from-anna "written by anna-cli"')" "OK" "anna-cli PUT"
    is '"written by anna-cli"' GET x:from-anna
    is OK SET x:from-anna "overwritten by redis-cli"
    expect_eq "$(cli -c 'GET x:from-anna')" "overwritten by redis-cli" "RESP SET wins over the older anna-cli write"
    expect_eq "$(cli -c 'PUT_SET x:set a b')" "OK" "anna-cli PUT_SET"
    is $'1) "a"\n2) "b"' SMEMBERS x:set
    is '(integer) 1' SADD x:set c
    cli -c 'GET_SET x:set' | grep -q 'c' || fail "anna-cli sees SADD"
    ok "anna-cli sees the RESP SADD"
    is "$WT" GET x:set
else
    echo "note: $T_BIN/anna-cli not built: interop with anna-cli not checked"
fi

# ---- the client limit ------------------------------------------------------------------------
exec 5<>/dev/tcp/127.0.0.1/"$PORT"
python3 - "$PORT" <<'EOF' || fail "max clients"
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
time.sleep(0.5)
refused = 0
for s in held:
    s.settimeout(0.2)
    try:
        if s.recv(100).startswith(b"-ERR max number of clients reached"):
            refused += 1
    except socket.timeout:
        pass
print("refused", refused)
sys.exit(0 if refused >= 20 else 1)
EOF
printf 'PING\r\n' >&5
expect_eq "$(timeout 5 head -c 7 <&5)" "$(printf '+PONG\r\n')" "a held connection works past the limit"
exec 5<&-
ok "connections over --resp-max-clients refused with an error"

# ---- AUTH ------------------------------------------------------------------------------------
# Its ports (offset + 30, RESP on 6479 + offset) stay inside this test's slot of 300 ports.
APORT=$((PORT + 100))
# (This node also keeps two replicas of every key: RESP reads its own writes through gossip.)
"$T_BIN/anna-server" --port-offset $((T_OFFSET + 30)) --threads 2 --replication 2 \
    --resp-port "$APORT" --resp-password 's3cret' >"$T_WORK/auth.log" 2>&1 &
T_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$T_WORK/auth.log" && break; sleep 0.1; done
ra() { timeout 10 redis-cli -p "$APORT" --no-raw "$@" 2>&1 | grep -v '^Warning: Using a password'; }
expect_eq "$(ra GET a)" '(error) NOAUTH Authentication required.' "NOAUTH before AUTH"
expect_eq "$(ra PING)" '(error) NOAUTH Authentication required.' "PING needs AUTH too"
expect_eq "$(printf 'AUTH wrong\nGET a\n' | ra)" \
    $'(error) WRONGPASS invalid username-password pair or user is disabled.\n(error) NOAUTH Authentication required.' "wrong password"
expect_eq "$(printf 'AUTH s3cret\nSET a 1\nGET a\n' | ra)" $'OK\nOK\n"1"' "AUTH then commands"
expect_eq "$(printf 'AUTH default s3cret\nGET a\n' | ra)" $'OK\n"1"' "AUTH default <password>"
expect_eq "$(printf 'AUTH s3cret\nDEL a\nGET a\nSADD r x\nSMEMBERS r\n' | ra)" \
    $'OK\n(integer) 1\n(nil)\n(integer) 1\n1) "x"' "replication 2: DEL, GET, SADD, SMEMBERS"
expect_eq "$(ra -a s3cret SISMEMBER r x)" '(integer) 1' "redis-cli -a"
ra HELLO 2 AUTH default s3cret | head -2 | sed 's/^ *//' | paste -sd' ' | grep -q '"server" 2) "anna"' || fail "HELLO AUTH"
ok "HELLO 2 AUTH default <password>"
expect_eq "$(ra AUTH x)" '(error) WRONGPASS invalid username-password pair or user is disabled.' "AUTH with a wrong password"
expect_eq "$(rc AUTH x)" '(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?' "AUTH without a password configured"

# ---- the node is healthy, stops cleanly under load, and reports RESP counters --------------
kill -0 "$ANNA_PID" || fail "anna-server died"
if command -v redis-benchmark >/dev/null; then
    timeout 30 redis-benchmark -p "$PORT" -c 20 -P 16 -t set,get -n 100000000 -q >/dev/null 2>&1 &
    load=$!
    sleep 1.5
fi
kill -TERM "$ANNA_PID"
for _ in $(seq 100); do kill -0 "$ANNA_PID" 2>/dev/null || break; sleep 0.1; done
wait "$ANNA_PID"; rc=$?
expect_eq "$rc" 0 "exit status after SIGTERM (under load)"
[ -n "${load:-}" ] && { kill "$load" 2>/dev/null; wait "$load" 2>/dev/null; }
grep -q 'anna-server resp 1: accepted=[1-9]' "$T_WORK/node.log" || fail "no RESP counters at exit"
! grep -q 'Sanitizer\|runtime error' "$T_WORK/node.log" "$T_WORK/auth.log" || { cat "$T_WORK/node.log" >&2; fail "sanitizer report"; }
ok "RESP counters printed at exit; no sanitizer report"
echo PASS
