#!/usr/bin/env bash
# Wire compatibility: a client written only against the public Anna protocol (Google's
# protobuf runtime in Python, no extension fields) PUTs and GETs LWW, SET, causal and
# priority values, sees KEY_DNE and LATTICE errors, and reads what our CLI wrote.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import zmq, google.protobuf' 2>/dev/null || ! command -v protoc >/dev/null; then
    echo "SKIP: python3-zmq, python3-protobuf or protoc missing (scripts/deps.sh installs them)"
    exit 0
fi
protoc --python_out="$T_WORK" -I"$T_ROOT/proto" "$T_ROOT/proto/anna.proto" || fail "protoc"
start_anna node --threads 2
cli -c 'PUT compat-from-cli "written by anna-cli"' | grep -qx OK || fail "CLI PUT"
timeout 60 $PY "$T_ROOT/tests/system/anna_py_client.py" "$(routing_addr)" "$T_WORK" compat-from-cli \
    || fail "the Anna-protocol client failed"
# and a value the Python client wrote reads back through our CLI
expect_eq "$(cli -c 'GET compat-lww')" "from an Anna client" "CLI reads the Anna client's LWW value"
