#!/usr/bin/env bash
# tests/system/t_cli.sh: anna-cli behaviour that golden files cannot pin down: timeouts with
# no server, exit statuses, options, STATS, junk and oversized input, a stopped server.
source "$(dirname "$0")/lib.sh"

CLI="$T_BIN/anna-cli"
ROUTING=$(routing_addr)

# run_timed CMD...: runs CMD, sets OUT (its stdout), RC and MS (wall time in milliseconds).
run_timed() {
    local start end
    start=$(date +%s%N)
    OUT=$("$@" 2>"$T_WORK/stderr"); RC=$?
    end=$(date +%s%N)
    MS=$(( (end - start) / 1000000 ))
}

# ---- no server listening: a clear timeout error, non-zero exit, within the timeout --------
run_timed timeout 20 "$CLI" --routing "$ROUTING" --timeout 500 -c "GET k"
expect_eq "$OUT" "ERROR: timed out after 500 ms (is anna-server running at $ROUTING?)" "no server: message"
expect_eq "$RC" 1 "no server: exit status"
# 500 ms of waiting plus process start-up (an ASan build starts slower).
[ "$MS" -ge 500 ] && [ "$MS" -lt 2500 ] || fail "no server: took $MS ms"
ok "no server: returned after $MS ms"

run_timed timeout 20 "$CLI" --routing "$ROUTING" --timeout 300 < <(printf 'GET a\nPUT b c\nHELP\n')
expect_eq "$(grep -c '^ERROR: timed out after 300 ms' <<<"$OUT")" 2 "no server, piped: one error per command"
expect_eq "$RC" 1 "no server, piped: exit status"

# A terminal gets the `anna> ` prompt, and an interactive session exits 0 after an error.
if command -v script >/dev/null; then
    out=$(printf 'HELP\nFOO\n' | timeout 20 script -qec "'$CLI' --routing '$ROUTING' --timeout 300" /dev/null)
    rc=$?
    grep -q "^anna> ERROR: unknown command 'FOO' (try HELP)" <<<"${out//$'\r'/}" || fail "terminal session: $out"
    expect_eq "$rc" 0 "terminal: prompt shown, exit 0 after an error"
fi
out=$(printf 'FOO\n' | "$CLI" --routing "$ROUTING")
expect_eq "$out" "ERROR: unknown command 'FOO' (try HELP)" "a pipe gets no prompt"

# ---- options --------------------------------------------------------------------------------
"$CLI" --help | grep -q '^usage: anna-cli' || fail "--help prints the usage"
expect_eq "$("$CLI" --help >/dev/null; echo $?)" 0 "--help exits 0"
for bad in "--bogus" "--timeout" "--timeout abc" "--timeout 0" "--routing nonsense" \
           "--client-id" "extra-arg" "-c GET --file x"; do
    # shellcheck disable=SC2086
    rc=$("$CLI" $bad </dev/null >/dev/null 2>&1; echo $?)
    expect_eq "$rc" 2 "bad option '$bad' exits 2"
done
expect_eq "$("$CLI" --file /nonexistent/x >/dev/null 2>&1; echo $?)" 2 "unreadable --file exits 2"

# ---- with a node ---------------------------------------------------------------------------
start_anna node --threads 2

expect_eq "$(cli </dev/null; echo "rc=$?")" "rc=0" "empty input: no output, exit 0"
expect_eq "$(printf '\n   \n# only a comment\n\t\n' | cli; echo "rc=$?")" "rc=0" "blank lines and comments"
expect_eq "$(cli -c 'PUT cli:a 1'; echo "rc=$?")" "$(printf 'OK\nrc=0')" "-c success exits 0"
expect_eq "$(cli -c 'GET cli:nope'; echo "rc=$?")" "$(printf "ERROR: key 'cli:nope' does not exist\nrc=1")" "-c failure exits 1"
expect_eq "$(printf 'GET cli:a\nGET cli:nope\nGET cli:a\n' | cli; echo "rc=$?")" \
    "$(printf "1\nERROR: key 'cli:nope' does not exist\n1\nrc=1")" "one failure in a script: the rest runs, exit 1"
printf 'PUT cli:f "from a file"\nGET cli:f\n' >"$T_WORK/cmds"
expect_eq "$(cli --file "$T_WORK/cmds" </dev/null)" "$(printf 'OK\nfrom a file')" "--file"
expect_eq "$(cli -c 'exit'; echo "rc=$?")" "rc=0" "EXIT"

out=$(cli -c STATS) || fail "STATS failed: $out"
[[ "$out" == "{"* ]] || fail "STATS prints the JSON document, got: $out"
ok "STATS: ${out:0:60}..."

# A value of 100 KB goes through and comes back intact.
big=$(head -c 100000 /dev/zero | tr '\0' 'v')
expect_eq "$(printf 'PUT cli:big %s\nGET cli:big\n' "$big" | cli | tail -n 1 | wc -c)" 100001 "100 KB value"

# A line over the limit is refused and skipped; the next line still runs.
{ printf 'PUT cli:huge '; head -c 5000000 /dev/zero | tr '\0' 'x'; printf '\nGET cli:a\n'; } >"$T_WORK/huge"
out=$(cli <"$T_WORK/huge"); rc=$?
expect_eq "$out" "$(printf 'ERROR: line longer than 4194304 bytes; skipped\n1')" "oversized line skipped"
expect_eq "$rc" 1 "oversized line: exit 1"
# A last line without a newline still runs.
expect_eq "$(printf 'GET cli:a' | cli)" "1" "last line without newline"

# Junk never crashes it: exit status 0 or 1, never a signal or a sanitizer report.
# Round 1 is the same bytes every run (a seeded generator), rounds 2 and 3 are new each run.
LC_ALL=C awk 'BEGIN { s = 12345; for (i = 0; i < 65536; i++) { s = (s * 1103515245 + 12345) % 2147483648;
     printf "%c", int(s / 65536) % 256 } }' >"$T_WORK/junk"
for round in 1 2 3; do
    case $round in
        1) input="$T_WORK/junk" ;;
        2) head -c 65536 /dev/urandom >"$T_WORK/junk2"; input="$T_WORK/junk2" ;;
        3) head -c 20000 /dev/urandom | tr '\0-\037' 'PUT GET_SET"\\x #\n' >"$T_WORK/junk3"; input="$T_WORK/junk3" ;;
    esac
    cli --timeout 300 <"$input" >"$T_WORK/junk.out" 2>"$T_WORK/junk.err"; rc=$?
    [ "$rc" -le 1 ] || { cat "$T_WORK/junk.err" >&2; fail "junk input $round: exit $rc"; }
    ! grep -q 'Sanitizer' "$T_WORK/junk.err" || { cat "$T_WORK/junk.err" >&2; fail "junk input $round: sanitizer report"; }
    ok "junk input $round: exit $rc, $(wc -l <"$T_WORK/junk.out") lines"
done

# A closed stdout ends the session quietly, with exit status 1 (no SIGPIPE death).
yes HELP | head -n 5000 | cli | head -n 1 >/dev/null
expect_eq "${PIPESTATUS[2]}" 1 "closed stdout: exit 1"

# ---- a stopped server: the command times out, the session continues ----------------------
kill -STOP "$ANNA_PID"
out=$(printf 'GET cli:a\n' | cli --timeout 400); rc=$?
kill -CONT "$ANNA_PID"
expect_eq "$out" "ERROR: timed out after 400 ms (is anna-server running at $ROUTING?)" "stopped server: message"
expect_eq "$rc" 1 "stopped server: exit 1"
expect_eq "$(cli -c 'GET cli:a')" "1" "after SIGCONT"
kill -0 "$ANNA_PID" || fail "anna-server died"
