#!/usr/bin/env bash
# `make stop`: stops what `make run` started (and only that).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pidfile="$ROOT/.run/anna.pid"
[ -f "$pidfile" ] || { echo "stop: nothing started by 'make run'"; exit 0; }
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stop: anna-server (pid $pid) stopped"
fi
rm -f "$pidfile"
