# tests/system/faas_lib.sh: sourced by the FaaS system tests (t_faas_*.sh), after lib.sh.
# Starts a whole local cluster with `cb up` in this test's scratch dir and port offset, and
# always stops it with `cb down` on exit (then lib.sh's cleanup kills anything the test
# started itself). Every command runs under `timeout`: a hang is a failure, never a stall.
# Environment: as lib.sh; the example functions are in $T_EXAMPLES (default: beside T_BIN).
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${T_EXAMPLES:=$(dirname "$T_BIN")/examples}"
CB_RUN="$T_WORK/cb"
CB_BIN="$T_BIN/cb"

faas_cleanup() {
    # cb down is bounded itself (TERM, then KILL after a grace period); the outer timeout
    # only guards against a bug in it.
    if [ -f "$CB_RUN/supervisor.pid" ]; then
        timeout 30 "$CB_BIN" --dir "$CB_RUN" down >/dev/null 2>&1 || true
    fi
    t_cleanup
}
trap faas_cleanup EXIT

# cb ARGS...: the CLI against this test's cluster, bounded in time.
cb() { timeout 60 "$CB_BIN" --dir "$CB_RUN" "$@"; }

# faas_up [cb up args]: starts the cluster; fails the test (with the logs) if it does not
# come up.
faas_up() {
    local out
    if ! out=$(timeout 90 "$CB_BIN" up --dir "$CB_RUN" --port-offset "$T_OFFSET" "$@" 2>&1); then
        echo "$out" >&2
        faas_dump_logs
        fail "cb up $* failed"
    fi
    echo "$out"
    SUP_PID=$(cat "$CB_RUN/supervisor.pid")
}

faas_down() {
    timeout 30 "$CB_BIN" --dir "$CB_RUN" down || fail "cb down failed"
    [ -f "$CB_RUN/supervisor.pid" ] && fail "supervisor.pid left behind by cb down"
    return 0
}

faas_dump_logs() {
    local f
    for f in "$CB_RUN"/logs/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 15 lines)" >&2
        tail -n 15 "$f" >&2
    done
}

# expect_ok WHAT EXPECTED_STDOUT cb-args...: the command succeeds and prints EXPECTED.
expect_ok() {
    local what=$1 want=$2 out rc
    shift 2
    out=$(cb "$@" 2>"$T_WORK/stderr"); rc=$?
    [ $rc = 0 ] || { cat "$T_WORK/stderr" >&2; fail "$what: exit $rc"; }
    [ "$out" == "$want" ] || { cat "$T_WORK/stderr" >&2; fail "$what: expected [$want], got [$out]"; }
    ok "$what"
}

# expect_err WHAT PATTERN cb-args...: the command fails with exit 1, nothing on stdout, and
# exactly one `cb: ...` line on stderr that matches the (grep -E) PATTERN.
expect_err() {
    local what=$1 pattern=$2 out rc err
    shift 2
    out=$(cb "$@" 2>"$T_WORK/stderr"); rc=$?
    err=$(grep -v '^log: ' "$T_WORK/stderr")
    [ $rc = 1 ] || fail "$what: expected exit 1, got $rc (stdout [$out], stderr [$err])"
    [ -z "$out" ] || fail "$what: expected no stdout, got [$out]"
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$what: expected one error line, got [$err]"
    [[ "$err" == "cb: "* ]] || fail "$what: error line does not start with 'cb: ': [$err]"
    printf '%s\n' "$err" | grep -Eq -- "$pattern" || fail "$what: [$err] does not match /$pattern/"
    ok "$what: $err"
}

# faas_alive: the supervisor and every child it runs are alive, none was restarted since
# the given restart total (default 0). Catches a daemon that a failure took down.
faas_alive() {
    local want=${1:-0} total=0 line name pid restarts up
    kill -0 "$SUP_PID" 2>/dev/null || fail "the supervisor (pid $SUP_PID) died"
    while read -r line name pid restarts up; do
        [ "$line" = child ] || continue
        [ "$up" = up ] || fail "$name is down"
        kill -0 "$pid" 2>/dev/null || fail "$name (pid $pid) is not running"
        total=$((total + restarts))
    done <"$CB_RUN/state"
    [ "$total" -le "$want" ] || { faas_dump_logs; fail "daemons restarted $total times (expected <= $want)"; }
    ok "all daemons alive ($total restarts)"
}

# pid_of NAME: pid of the supervisor's child NAME (kvs, scheduler, cache-n0, executor-n0-1).
pid_of() { awk -v n="$1" '$1 == "child" && $2 == n { print $3 }' "$CB_RUN/state"; }
restarts_of() { awk -v n="$1" '$1 == "child" && $2 == n { print $4 }' "$CB_RUN/state"; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for i in $(seq $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "$what: not within $secs s"
}

# build_fn NAME: compiles C source from stdin into $T_WORK/fn/NAME.so, the way a user
# builds a function (docs/faas.md); prints the path.
build_fn() {
    mkdir -p "$T_WORK/fn"
    cc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -Werror -shared -fPIC -I"$T_ROOT" -x c - \
        -o "$T_WORK/fn/$1.so" || fail "cannot build function $1"
    echo "$T_WORK/fn/$1.so"
}

[ -x "$CB_BIN" ] || fail "$CB_BIN not built"
for f in incr square; do
    [ -f "$T_EXAMPLES/$f.so" ] || fail "$T_EXAMPLES/$f.so not built (make build-all)"
done
