# tests/system/lib.sh: sourced by every system test. Starts real servers on loopback under
# the port offset the runner gave this test, and kills exactly the processes it started.
# Environment from tests/run.sh: T_BIN (binaries under test), T_TESTS (C test programs),
# T_REL (release binaries), T_OFFSET (port offset), T_WORK (scratch dir), T_ROOT.
set -u
: "${T_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${T_BIN:=$T_ROOT/build/san/bin}"
: "${T_TESTS:=$T_ROOT/build/san/tests}"
: "${T_REL:=$T_ROOT/build/bin}"
: "${T_OFFSET:=10000}"
: "${T_WORK:=$(mktemp -d)}"
mkdir -p "$T_WORK"
T_PIDS=()

t_cleanup() {
    local pid
    for pid in "${T_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${T_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${T_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
}
trap t_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() { [ "$1" == "$2" ] || fail "$3: expected [$2], got [$1]"; ok "$3"; }

# Routing address of a node started by start_anna with the given IP (default 127.0.0.1).
routing_addr() { echo "tcp://${1:-127.0.0.1}:$((6450 + T_OFFSET))"; }

# start_anna NAME [anna-server args...]: starts a node with this test's port offset, waits
# until it says it is ready (10 s at most). Sets ANNA_PID.
start_anna() {
    local name=$1; shift
    local log="$T_WORK/$name.log"
    "$T_BIN/anna-server" --port-offset "$T_OFFSET" "$@" >"$log" 2>&1 &
    ANNA_PID=$!
    T_PIDS+=("$ANNA_PID")
    for _ in $(seq 100); do
        grep -q "anna-server ready" "$log" 2>/dev/null && return 0
        kill -0 "$ANNA_PID" 2>/dev/null || { cat "$log" >&2; fail "anna-server $name exited at start"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "anna-server $name not ready within 10 s"
}

# cli [args] < commands: the CLI against this test's node, bounded in time.
cli() { timeout 30 "$T_BIN/anna-cli" --routing "$(routing_addr)" "$@"; }
