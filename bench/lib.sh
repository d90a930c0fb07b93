# bench/lib.sh: sourced by the benchmark scripts. Arguments of the script: BUILD_DIR
# [--quick]. Sets BUILD, QUICK (0/1), ROOT (and cds there), BIN, OUT (created), PIDS (the
# processes the script starts: stop_pids, also run on exit, stops exactly those) and
# die MESSAGE (uses BENCH_NAME).
set -u
BUILD=${1:-build}
QUICK=0
[ "${2:-}" = "--quick" ] && QUICK=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN="$BUILD/bin"
OUT="$BUILD/bench"
mkdir -p "$OUT"
PIDS=()

stop_pids() {
    local pid
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 100); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    PIDS=()
}
trap stop_pids EXIT
trap 'exit 130' INT TERM
die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }
