#!/usr/bin/env bash
# `make run`: starts a local cluster with `cb up` (one KVS node, one scheduler, one cache,
# three executors, all on 127.0.0.1, run dir .cb/), registers the example functions incr and
# square, creates the DAG incr -> square, calls it with 3 and prints the result (16). The
# cluster keeps running; `make stop` (cb down) stops it. A second `make run` first stops the
# cluster the previous one left.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CB="$BUILD/bin/cb"
export CB_DIR="$ROOT/.cb"

for f in "$CB" "$BUILD/examples/incr.so" "$BUILD/examples/square.so"; do
    [ -e "$f" ] || { echo "run: $f is missing (make first)"; exit 1; }
done
if [ -f "$CB_DIR/supervisor.pid" ]; then
    echo "run: stopping the cluster a previous 'make run' left"
    timeout 30 "$CB" down
fi
scripts/stop.sh --legacy-only >/dev/null    # a KVS node from an older 'make run'

# Every step is shown as the command a user would type, then run under a time limit.
step() {
    echo "\$ cb $*"
    timeout 60 "$CB" "$@"
}
step up
step register incr "$BUILD/examples/incr.so"
step register square "$BUILD/examples/square.so"
step dag create pipeline incr square
step call-dag pipeline --arg incr=3
step call square 5
step put greeting str:hello
step get greeting

cat <<EOM

The cluster is still running (run dir .cb/, logs in .cb/logs/). Try:
  $CB status
  $CB call incr 41
  $CB call-dag pipeline --arg incr=7 --output-key result && $CB get result
  $CB help
Stop it: make stop   (or: $CB down)
EOM
