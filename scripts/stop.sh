#!/usr/bin/env bash
# `make stop`: stops what `make run` started (cb down on the run dir .cb/), and a KVS node
# an older `make run` may have left in .run/. Stops only those.
#   scripts/stop.sh [--legacy-only]
ROOT=$(cd "$(dirname "$0")/.." && pwd)
stopped=0
if [ "${1:-}" != --legacy-only ] && [ -f "$ROOT/.cb/supervisor.pid" ]; then
    cb=
    for b in "$ROOT/build/bin/cb" "$ROOT/build/san/bin/cb"; do
        [ -x "$b" ] && { cb=$b; break; }
    done
    if [ -n "$cb" ]; then
        timeout 30 "$cb" --dir "$ROOT/.cb" down && stopped=1
    else
        # No cb binary (make clean): the supervisor stops its children on SIGTERM.
        pid=$(cat "$ROOT/.cb/supervisor.pid")
        kill -TERM "$pid" 2>/dev/null && stopped=1
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "stop: supervisor (pid $pid) stopped"
    fi
fi
pidfile="$ROOT/.run/anna.pid"
if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "stop: anna-server (pid $pid) stopped"
        stopped=1
    fi
    rm -f "$pidfile"
fi
[ $stopped = 1 ] || [ "${1:-}" = --legacy-only ] || echo "stop: nothing started by 'make run'"
exit 0
