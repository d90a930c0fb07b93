"""A stand-in for an existing Anna client, written against the public protocol only.

It talks to the server the way the public Anna Python client does: a KeyAddressRequest to
the routing port, then one single-frame KeyRequest per key over ZeroMQ PUSH to an address
the routing tier returned, the answer arriving on the client's own PULL socket. Its messages
are built by Google's protobuf runtime (not protobuf-c) from the public field numbers, and
it never sets our extension fields, so it checks that an unmodified Anna client works.

Usage: anna_py_client.py ROUTING_ADDR GEN_DIR   (GEN_DIR holds anna_pb2.py)
Exits non-zero with a message on the first check that fails.
"""
import sys
import time

import zmq

sys.path.insert(0, sys.argv[2])
import anna_pb2 as pb  # noqa: E402

ROUTING = sys.argv[1]
TIMEOUT_MS = 5000

ctx = zmq.Context(1)
pull = ctx.socket(zmq.PULL)
port = pull.bind_to_random_port("tcp://127.0.0.1")
reply_addr = "tcp://127.0.0.1:%d" % port
pushers = {}
rid = 0


def push(addr, msg):
    if addr not in pushers:
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(addr)
        pushers[addr] = s
    pushers[addr].send(msg.SerializeToString())


def recv(kind, want_id):
    deadline = time.time() + TIMEOUT_MS / 1000.0
    while time.time() < deadline:
        if pull.poll(int((deadline - time.time()) * 1000) + 1):
            m = kind()
            m.ParseFromString(pull.recv())
            if m.response_id == want_id:
                return m
    sys.exit("FAIL: no answer to request %s within %d ms" % (want_id, TIMEOUT_MS))


def next_id():
    global rid
    rid += 1
    return "py:%d" % rid


def worker_for(key):
    req = pb.KeyAddressRequest(response_address=reply_addr, keys=[key], request_id=next_id())
    push(ROUTING, req)
    resp = recv(pb.KeyAddressResponse, req.request_id)
    if resp.error != pb.NO_ERROR:
        sys.exit("FAIL: routing error %d" % resp.error)
    ips = [a for t in resp.addresses if t.key == key for a in t.ips]
    if not ips or not ips[0].startswith("tcp://"):
        sys.exit("FAIL: routing gave no worker address for %r: %r" % (key, resp))
    return ips[0]


def request(rtype, key, lattice_type=pb.NONE, payload=b""):
    req = pb.KeyRequest(type=rtype, response_address=reply_addr, request_id=next_id())
    t = req.tuples.add()
    t.key = key
    if rtype == pb.PUT:
        t.lattice_type = lattice_type
        t.payload = payload
    push(worker_for(key), req)
    resp = recv(pb.KeyResponse, req.request_id)
    if len(resp.tuples) != 1 or resp.tuples[0].key != key:
        sys.exit("FAIL: reply tuples do not match the request: %r" % resp)
    return resp.tuples[0]


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok: " + what)


# The public client's LWW timestamps are small (seconds-based); our writers stamp
# microseconds, so a later write from our CLI wins over it, as it should.
ts = int(time.time()) * 10
lww = pb.LWWValue(timestamp=ts, value=b"from an Anna client")
t = request(pb.PUT, "compat-lww", pb.LWW, lww.SerializeToString())
check(t.error == pb.NO_ERROR, "LWW PUT from an Anna client is acknowledged")
t = request(pb.GET, "compat-lww")
check(t.error == pb.NO_ERROR and t.lattice_type == pb.LWW, "LWW GET answers with type LWW")
got = pb.LWWValue()
got.ParseFromString(t.payload)
check(got.value == b"from an Anna client" and got.timestamp == ts, "LWW value and timestamp read back")

s = pb.SetValue(values=[b"b", b"a"])
check(request(pb.PUT, "compat-set", pb.SET, s.SerializeToString()).error == pb.NO_ERROR,
      "SET PUT acknowledged")
s = pb.SetValue(values=[b"c", b"a"])
request(pb.PUT, "compat-set", pb.SET, s.SerializeToString())
t = request(pb.GET, "compat-set")
got = pb.SetValue()
got.ParseFromString(t.payload)
check(t.lattice_type == pb.SET and sorted(got.values) == [b"a", b"b", b"c"], "SET PUTs merge to the union")

v = pb.SingleKeyCausalValue(values=[b"v1"])
v.vector_clock["py"] = 1
check(request(pb.PUT, "compat-causal", pb.SINGLE_CAUSAL, v.SerializeToString()).error == pb.NO_ERROR,
      "SINGLE_CAUSAL PUT acknowledged")
t = request(pb.GET, "compat-causal")
got = pb.SingleKeyCausalValue()
got.ParseFromString(t.payload)
check(list(got.values) == [b"v1"] and dict(got.vector_clock) == {"py": 1}, "SINGLE_CAUSAL read back")

p = pb.PriorityValue(priority=2.5, value=b"p")
request(pb.PUT, "compat-prio", pb.PRIORITY, p.SerializeToString())
p = pb.PriorityValue(priority=1.0, value=b"q")
request(pb.PUT, "compat-prio", pb.PRIORITY, p.SerializeToString())
got = pb.PriorityValue()
got.ParseFromString(request(pb.GET, "compat-prio").payload)
check(got.priority == 1.0 and got.value == b"q", "PRIORITY: lowest priority wins")

t = request(pb.GET, "compat-no-such-key")
check(t.error == pb.KEY_DNE, "GET of a missing key answers KEY_DNE")
t = request(pb.PUT, "compat-set", pb.LWW, lww.SerializeToString())
check(t.error == pb.LATTICE, "PUT of LWW onto a SET key answers LATTICE")

# A value written by our own CLI (with our extension field) is readable here.
if len(sys.argv) > 3:
    got = pb.LWWValue()
    t = request(pb.GET, sys.argv[3])
    got.ParseFromString(t.payload)
    check(t.error == pb.NO_ERROR and got.value == b"written by anna-cli",
          "value written by anna-cli decodes in the Anna client")
print("all compatibility checks passed")
