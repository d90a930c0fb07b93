#!/usr/bin/env bash
# `make run`: starts a one-node KVS on 127.0.0.1 in the background (the local-mode ports of
# the original Anna: key requests on 6200+thread, routing on 6450) and runs a short CLI
# session against it. The node keeps running; `make stop` stops it.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/.run"
mkdir -p "$RUN"
cd "$ROOT"

if [ -f "$RUN/anna.pid" ] && kill -0 "$(cat "$RUN/anna.pid")" 2>/dev/null; then
    echo "run: stopping the node a previous 'make run' left (pid $(cat "$RUN/anna.pid"))"
    scripts/stop.sh
fi

"$BUILD/bin/anna-server" >"$RUN/anna.log" 2>&1 &
echo $! >"$RUN/anna.pid"
for _ in $(seq 100); do
    grep -q ready "$RUN/anna.log" && break
    if ! kill -0 "$(cat "$RUN/anna.pid")" 2>/dev/null; then
        cat "$RUN/anna.log"; echo "run: anna-server failed to start (log above)"; exit 1
    fi
    sleep 0.1
done
grep -q ready "$RUN/anna.log" || { cat "$RUN/anna.log"; echo "run: anna-server not ready after 10 s"; exit 1; }
grep ready "$RUN/anna.log"

echo
echo "== a short anna-cli session =="
session='PUT greeting "hello, lattice"
GET greeting
PUT_SET fruits apple banana
PUT_SET fruits cherry apple
GET_SET fruits
PUT_CAUSAL doc "first draft"
GET_CAUSAL doc
PUT_MAX visits 3
PUT_MAX visits 7
PUT_MAX visits 5
GET visits
PUT_SET greeting not-a-set
GET missing-key'
while IFS= read -r line; do
    echo "anna> $line"
    timeout 10 "$BUILD/bin/anna-cli" -c "$line" || true
done <<<"$session"

cat <<EOM

The node is still running (pid $(cat "$RUN/anna.pid"), log .run/anna.log).
Try:   $BUILD/bin/anna-cli          (type HELP)
Stop:  make stop
EOM
