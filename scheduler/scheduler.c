//  scheduler/scheduler.c: the actor. One loop polls the status socket (reports first: they
//  keep the view of executors fresh and complete registrations) and the request socket,
//  draining a batch from each, and runs a maintenance tick every S_TICK_MS (dead executors,
//  pin deadlines, pin repair, metadata load retries).
//
//  Every message is unpacked into a per-message arena and handled to the end before the
//  next one. This file and the check program are the scheduler's only protobuf users:
//  dag.c, policy.c and table.c are protobuf-free, and messages are turned into their state
//  (names, versions, pins) here, then dropped with the arena.
//
//  The call path (call_function, call_dag) reads only memory: the function or DAG record,
//  its pins, the policy. A DAG keeps, from its registration, its analysis (sources, order),
//  the packed `dag` field of its DagSchedules and scratch arrays for one call, so a DAG call
//  costs one pick per function, one pack of the fields common to every schedule, and per
//  function a pack of its own few fields and a memcpy into the outgoing frame. (Protobuf
//  parsers take fields in any order, so a message may be assembled from packed pieces.)
//  SPDX-License-Identifier: Apache-2.0
#include "scheduler/scheduler.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "anna/arena.h"
#include "anna/pushcache.h"
#include "client/kvs.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/zsock.h"
#include "lattices/lattice.h"
#include "scheduler/dag.h"
#include "scheduler/policy.h"
#include "scheduler/table.h"

//  Messages taken from one socket before looking at the other (reports must not wait
//  behind a flood of calls, nor calls behind reports).
#define S_BATCH 256
//  Maintenance period: bounds how late a pin timeout or a dead executor is noticed.
#define S_TICK_MS 50
//  Under-pinned DAG functions are looked for this often.
#define S_REPAIR_MS 1000
//  A failed metadata load is retried this often.
#define S_LOAD_RETRY_MS 1000
//  A name the KVS did not have (or had deleted) is asked for again only after this, so a
//  client calling a missing function in a loop does not turn every call into a KVS read.
#define S_RECHECK_MS 1000
//  Names remembered as absent; past this the memory is dropped all at once (a client
//  inventing names must not grow it without bound).
#define S_ABSENT_MAX 65536
#define S_MAX_CALL_TIMEOUT_MS 3600000
//  Reply sockets cached for clients' response addresses (least recently used closed).
#define S_REPLY_SOCKETS 1024
//  Messages queued per executor before sends fail: a dead executor's queue is bounded.
#define S_EXEC_HWM 100000
//  Largest request: a registration with its code (clients send at most 64 MiB) must get
//  through to be answered CB_TOO_LARGE rather than cut off by ZeroMQ.
#define S_REQUEST_SLACK (1 << 20)
#define S_MIN_REQUEST_BYTES ((int64_t)64 << 20)
#define S_STATUS_MAXMSG ((int64_t)64 << 20)
//  Tag of ExecMessage field 4 (schedule), wire type 2 (length-delimited).
#define S_TAG_EXEC_SCHEDULE 0x22
//  Tag of DagSchedule field 2 (dag), wire type 2.
#define S_TAG_SCHEDULE_DAG 0x12

typedef enum {
    S_PIN_PENDING,              //  PinFunction sent, no PinAck yet
    S_PIN_ACKED,                //  acknowledged (or reported pinned by the executor)
} s_pin_state_t;

typedef struct {
    uint32_t exec;              //  policy number of the executor
    s_pin_state_t state;
    int64_t deadline;           //  PENDING: when we stop waiting for the PinAck
} s_pin_t;

typedef struct {
    char *name;                 //  owned
    uint64_t version;           //  LWW timestamp of the blob we know of
    uint32_t users;             //  registered DAGs and pending registrations using it
    s_pin_t *pins;              //  owned: where it is pinned or being pinned
    size_t npins;
    size_t pins_cap;
} s_function_t;

typedef struct {
    char *name;                 //  owned
    sched_dag_t *dag;
    s_function_t **fns;         //  per DAG function; borrowed (a used function is never
                                //  deleted, so these stay valid while the DAG exists)
    cb_bytes_t spec;            //  the DagSpec as stored in the KVS
    cb_bytes_t spec_field;      //  DagSchedule field `dag`: tag, length, spec
    //  Scratch of one call, reused by every call of this DAG.
    ArgList **args;             //  per function: the call's fixed arguments, or NULL
    uint32_t *chosen;           //  per function: the executor picked
    DagSchedule__LocationsEntry *locations;     //  key = function name (set once)
    DagSchedule__LocationsEntry **location_ptrs;
} s_dag_t;

typedef struct s_registration_s {
    char *request_id;           //  owned
    char *response_address;     //  owned
    s_dag_t *dag;               //  owned until it is registered
    int64_t deadline;           //  monotonic ms
    CbError error;              //  first executor error for one of its functions
    char message[512];          //  its text
    struct s_registration_s *next;
} s_registration_t;

typedef struct {
    int64_t checked_ms;         //  when the KVS last said: no live value
} s_absent_t;

typedef struct {
    uint8_t *data;              //  owned
    size_t cap;
} s_buf_t;

struct _sched_scheduler_t {
    sched_config_t config;      //  copy
    void *ctx;                  //  ZeroMQ context of our sockets
    void *requests;             //  PULL: client Requests
    void *status;               //  PULL: StatusReports
    anna_pushcache_t *replies;  //  PUSH sockets to response addresses
    cb_kvs_t *kvs;
    char request_address[96];
    char status_address[96];
    sched_policy_t *policy;     //  executors (their `user` is our PUSH socket) and nodes
    sched_table_t *functions;   //  name -> s_function_t: live functions
    sched_table_t *dags;        //  name -> s_dag_t: registered DAGs
    sched_table_t *fn_absent;   //  name -> s_absent_t: missing or deleted in the KVS
    sched_table_t *dag_absent;
    s_registration_t *registrations;    //  pending DAG registrations
    anna_arena_t *arena;        //  scratch of the message being handled
    ProtobufCAllocator pb;      //  protobuf-c unpacks into the arena
    s_buf_t common;             //  packed fields shared by a DAG call's schedules
    s_buf_t part;               //  packed fields of one schedule
    bool loaded;                //  metadata read from the KVS
    char load_error[256];
    size_t loaded_functions, loaded_dags;
    int64_t started_ms;
    int64_t next_tick_ms;
    int64_t next_repair_ms;
    int64_t next_load_ms;
    long long log_last;         //  rate limit of peer-driven logs
    pthread_t tid;
    bool started;
    bool joined;
    sched_stats_t stats;
};

//  ---- small helpers ------------------------------------------------------------------------

static uint8_t *s_buf_reserve(s_buf_t *buf, size_t n)
{
    if (n > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < n)
            cap *= 2;
        buf->data = cb_realloc(buf->data, cap);
        buf->cap = cap;
    }
    return buf->data;
}

static size_t s_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void *s_arena_array(sched_scheduler_t *self, size_t n, size_t size)
{
    return anna_arena_alloc(self->arena, (n ? n : 1) * size);
}

static const char *s_exec_id(sched_scheduler_t *self, uint32_t exec)
{
    return sched_policy_executor(self->policy, exec)->id;
}

//  A CbError from a peer, kept when we know it, else CB_INTERNAL (clients map codes).
static CbError s_known_error(int code)
{
    return code > CB_ERROR__CB_OK && code <= CB_ERROR__CB_INTERNAL ? (CbError)code
                                                                    : CB_ERROR__CB_INTERNAL;
}

//  ---- replies ------------------------------------------------------------------------------

static void s_send_reply(sched_scheduler_t *self, const char *address, const Reply *reply)
{
    size_t len = reply__get_packed_size(reply);
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, len);
    reply__pack(reply, zmq_msg_data(&msg));
    int rc = anna_pushcache_send(self->replies, address, &msg);
    if (rc == 0) {
        self->stats.replies++;
        return;
    }
    self->stats.replies_dropped++;
    if (cb_log_ratelimit(&self->log_last))
        cb_warn("reply to %s dropped: %s", address, zmq_strerror(-rc));
}

static void s_reply_ok(sched_scheduler_t *self, const char *request_id, const char *address)
{
    Reply reply = REPLY__INIT;
    reply.request_id = (char *)request_id;
    s_send_reply(self, address, &reply);
}

static void s_reply_error_to(sched_scheduler_t *self, const char *request_id,
                             const char *address, CbError code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void s_reply_error_to(sched_scheduler_t *self, const char *request_id,
                             const char *address, CbError code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    Reply reply = REPLY__INIT;
    reply.request_id = (char *)request_id;
    reply.error = code;
    reply.error_message = message;
    self->stats.errors++;
    cb_debug("request %s: %s", request_id, message);
    s_send_reply(self, address, &reply);
}

#define s_reply_error(self, req, code, ...)                                                      \
    s_reply_error_to(self, (req)->request_id, (req)->response_address, code, __VA_ARGS__)

//  ---- executors ----------------------------------------------------------------------------

//  (Re)connects our PUSH socket to an executor's current address. A socket to an old
//  address (a previous incarnation) is closed with its queue: those messages were for a
//  process that is gone.
static void s_exec_connect(sched_scheduler_t *self, uint32_t exec)
{
    sched_exec_t *e = sched_policy_executor(self->policy, exec);
    if (e->user) {
        zmq_close(e->user);
        e->user = NULL;
    }
    void *sock = zmq_socket(self->ctx, ZMQ_PUSH);
    if (!sock) {
        cb_error("cannot create a socket for executor %s: %s", e->id, zmq_strerror(errno));
        return;
    }
    int linger = 0, hwm = S_EXEC_HWM, reconnect_max = 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
    if (zmq_connect(sock, e->address) != 0) {
        cb_warn("cannot connect to executor %s at %s: %s", e->id, e->address,
                zmq_strerror(errno));
        zmq_close(sock);
        return;
    }
    e->user = sock;
}

//  Sends *msg to an executor without blocking; always consumes *msg. A dead executor has
//  no socket (s_tick closes it): what is meant for it is dropped quietly.
static int s_exec_send_msg(sched_scheduler_t *self, uint32_t exec, zmq_msg_t *msg)
{
    sched_exec_t *e = sched_policy_executor(self->policy, exec);
    if (e->user && zmq_msg_send(msg, e->user, ZMQ_DONTWAIT) >= 0)
        return 0;
    int rc = e->user ? -errno : -ENOTCONN;
    zmq_msg_close(msg);
    self->stats.exec_dropped++;
    if (e->user && cb_log_ratelimit(&self->log_last))
        cb_warn("message to executor %s dropped: %s", e->id, zmq_strerror(-rc));
    return rc;
}

static int s_exec_send(sched_scheduler_t *self, uint32_t exec, const ExecMessage *m)
{
    size_t len = exec_message__get_packed_size(m);
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, len);
    exec_message__pack(m, zmq_msg_data(&msg));
    return s_exec_send_msg(self, exec, &msg);
}

static void s_send_pin(sched_scheduler_t *self, const char *function, uint32_t exec)
{
    PinFunction pin = PIN_FUNCTION__INIT;
    pin.function = (char *)function;
    pin.response_address = self->status_address;
    ExecMessage m = EXEC_MESSAGE__INIT;
    m.body_case = EXEC_MESSAGE__BODY_PIN;
    m.pin = &pin;
    if (s_exec_send(self, exec, &m) == 0)
        self->stats.pins++;
}

static void s_send_unpin(sched_scheduler_t *self, const char *function, uint32_t exec)
{
    ExecMessage m = EXEC_MESSAGE__INIT;
    m.body_case = EXEC_MESSAGE__BODY_UNPIN;
    m.unpin = (char *)function;
    if (s_exec_send(self, exec, &m) == 0)
        self->stats.unpins++;
}

//  ---- pins ---------------------------------------------------------------------------------

static s_pin_t *s_pin_find(s_function_t *f, uint32_t exec)
{
    for (size_t p = 0; p < f->npins; p++)
        if (f->pins[p].exec == exec)
            return &f->pins[p];
    return NULL;
}

static s_pin_t *s_pin_add(sched_scheduler_t *self, s_function_t *f, uint32_t exec,
                          s_pin_state_t state, int64_t deadline)
{
    if (f->npins == f->pins_cap) {
        f->pins_cap = f->pins_cap ? f->pins_cap * 2 : 4;
        f->pins = cb_realloc(f->pins, f->pins_cap * sizeof *f->pins);
    }
    s_pin_t *p = &f->pins[f->npins++];
    *p = (s_pin_t){exec, state, deadline};
    sched_policy_pinned_add(self->policy, exec, 1);
    return p;
}

static void s_pin_remove(sched_scheduler_t *self, s_function_t *f, size_t index)
{
    assert(index < f->npins);
    sched_policy_pinned_add(self->policy, f->pins[index].exec, -1);
    f->pins[index] = f->pins[--f->npins];
}

//  Pins f on exec (again): a pending record and a PinFunction.
static void s_pin(sched_scheduler_t *self, s_function_t *f, uint32_t exec, int64_t now)
{
    s_pin_t *p = s_pin_find(f, exec);
    int64_t deadline = now + self->config.pin_timeout_ms;
    if (p) {
        p->state = S_PIN_PENDING;
        p->deadline = deadline;
    } else
        s_pin_add(self, f, exec, S_PIN_PENDING, deadline);
    s_send_pin(self, f->name, exec);
}

static void s_unpin_all(sched_scheduler_t *self, s_function_t *f)
{
    while (f->npins > 0) {
        s_send_unpin(self, f->name, f->pins[f->npins - 1].exec);
        s_pin_remove(self, f, f->npins - 1);
    }
}

//  Writes to out the executors where f is pinned and acknowledged, alive; returns how many.
static size_t s_pins_acked(sched_scheduler_t *self, const s_function_t *f, int64_t now,
                           uint32_t *out)
{
    size_t n = 0;
    for (size_t p = 0; p < f->npins; p++)
        if (f->pins[p].state == S_PIN_ACKED &&
            sched_policy_alive(self->policy, f->pins[p].exec, now))
            out[n++] = f->pins[p].exec;
    return n;
}

//  As above, pending pins included.
static size_t s_pins_alive(sched_scheduler_t *self, const s_function_t *f, int64_t now,
                           uint32_t *out)
{
    size_t n = 0;
    for (size_t p = 0; p < f->npins; p++)
        if (sched_policy_alive(self->policy, f->pins[p].exec, now))
            out[n++] = f->pins[p].exec;
    return n;
}

//  Brings f up to min(pin_replicas, alive executors) live pins. Returns how many it added.
static size_t s_pin_more(sched_scheduler_t *self, s_function_t *f, int64_t now)
{
    size_t alive = sched_policy_alive_count(self->policy, now);
    size_t want = alive < (size_t)self->config.pin_replicas ? alive
                                                             : (size_t)self->config.pin_replicas;
    uint32_t *have = cb_malloc((f->npins ? f->npins : 1) * sizeof *have);
    size_t nhave = s_pins_alive(self, f, now, have);
    size_t added = 0;
    if (nhave < want) {
        uint32_t *targets = cb_malloc((want - nhave) * sizeof *targets);
        added = sched_policy_pin_targets(self->policy, now, want - nhave, have, nhave, targets);
        for (size_t t = 0; t < added; t++)
            s_pin(self, f, targets[t], now);
        cb_free(targets);
    }
    cb_free(have);
    return added;
}

//  ---- KVS ----------------------------------------------------------------------------------

//  The words for the KVS client's last failure (its own, else the error code's).
static const char *s_kvs_error(const sched_scheduler_t *self, int rc)
{
    const char *text = cb_kvs_last_error(self->kvs);
    return text[0] ? text : cb_strerror(rc);
}

static void s_kvs_failed(sched_scheduler_t *self, const char *what, const char *key, int rc)
{
    self->stats.kvs_errors++;
    cb_warn("KVS %s %s failed: %s", what, key, s_kvs_error(self, rc));
}

//  Reads an LWW key. 0 with *out (caller owns) and *ts; -ENOENT; or the KVS's error.
static int s_kvs_get_lww(sched_scheduler_t *self, const char *key, cb_bytes_t *out,
                         uint64_t *ts)
{
    lat_t v;
    int rc = cb_kvs_get(self->kvs, key, &v);
    if (rc) {
        if (rc != -ENOENT)
            s_kvs_failed(self, "GET", key, rc);
        return rc;
    }
    if (v.kind != LAT_LWW) {
        cb_warn("KVS key %s holds a %s value, not LWW: ignored", key, lat_kind_name(v.kind));
        lat_fini(&v);
        return -ENOENT;
    }
    *out = v.u.lww.value;
    *ts = v.u.lww.ts;
    v.u.lww.value = (cb_bytes_t){NULL, 0};
    lat_fini(&v);
    return 0;
}

//  Merges an LWW value stamped ts into key; takes ownership of data (cb_malloc'ed).
static int s_kvs_put_lww(sched_scheduler_t *self, const char *key, uint8_t *data, size_t len,
                         uint64_t ts)
{
    lat_t v;
    lat_init(&v, LAT_LWW);
    v.u.lww.ts = ts;
    v.u.lww.writer = cb_kvs_writer_id(self->kvs);
    v.u.lww.value = (cb_bytes_t){len ? data : NULL, len};
    if (!len)
        cb_free(data);
    int rc = cb_kvs_put(self->kvs, key, &v);
    lat_fini(&v);
    if (rc)
        s_kvs_failed(self, "PUT", key, rc);
    return rc;
}

static int s_kvs_index_add(sched_scheduler_t *self, const char *index, const char *name)
{
    lat_t v;
    lat_init(&v, LAT_SET);
    lat_set_insert(&v.u.set, name, strlen(name));
    int rc = cb_kvs_put(self->kvs, index, &v);
    lat_fini(&v);
    if (rc)
        s_kvs_failed(self, "PUT", index, rc);
    return rc;
}

//  Reads an index SET into *out (caller owns; empty when the key does not exist yet).
static int s_kvs_index_read(sched_scheduler_t *self, const char *index, lat_t *out)
{
    int rc = cb_kvs_get(self->kvs, index, out);
    if (rc == -ENOENT || (rc == 0 && out->kind != LAT_SET)) {
        if (rc == 0) {
            cb_warn("KVS key %s holds a %s value, not a SET: ignored", index,
                    lat_kind_name(out->kind));
            lat_fini(out);
        }
        lat_init(out, LAT_SET);
        return 0;
    }
    if (rc)
        s_kvs_failed(self, "GET", index, rc);
    return rc;
}

//  An index entry as a C string, if it is a valid name (entries are bytes written by
//  anyone with KVS access). Returns NULL for anything else.
static const char *s_index_name(const cb_bytes_t *item, char buf[SCHED_NAME_MAX + 1])
{
    if (item->len == 0 || item->len > SCHED_NAME_MAX || memchr(item->data, 0, item->len))
        return NULL;
    memcpy(buf, item->data, item->len);
    buf[item->len] = '\0';
    return sched_dag_check_name("function", buf, NULL, 0) == 0 ? buf : NULL;
}

//  ---- absent names -------------------------------------------------------------------------

static bool s_absent_recent(const sched_table_t *absent, const char *name, int64_t now)
{
    const s_absent_t *a = sched_table_get(absent, name);
    return a && now - a->checked_ms < S_RECHECK_MS;
}

static void s_absent_note(sched_table_t *absent, const char *name, int64_t now)
{
    s_absent_t *a = sched_table_get(absent, name);
    if (!a) {
        if (sched_table_size(absent) >= S_ABSENT_MAX)
            sched_table_clear(absent);
        a = cb_malloc(sizeof *a);
        sched_table_put(absent, name, a);
    }
    a->checked_ms = now;
}

//  ---- functions ----------------------------------------------------------------------------

static void s_function_free(void *p)
{
    s_function_t *f = p;
    cb_free(f->name);
    cb_free(f->pins);
    cb_free(f);
}

static s_function_t *s_function_put(sched_scheduler_t *self, const char *name, uint64_t version)
{
    s_function_t *f = sched_table_get(self->functions, name);
    if (!f) {
        f = cb_calloc(1, sizeof *f);
        f->name = cb_strdup(name);
        sched_table_put(self->functions, name, f);
        sched_table_remove(self->fn_absent, name);
    }
    if (version > f->version)
        f->version = version;
    return f;
}

//  A function blob from the KVS: 1 and *version if live, 0 if deleted or not a blob.
static int s_blob_live(sched_scheduler_t *self, const cb_bytes_t *value, uint64_t ts,
                       uint64_t *version)
{
    FunctionBlob *blob = function_blob__unpack(&self->pb, value->len, value->data);
    if (!blob)
        return 0;
    *version = blob->version ? blob->version : ts;
    return blob->code.len > 0;
}

//  The function called name: from memory, or (ask_kvs) from the KVS when we do not know it
//  and have not asked lately. NULL if there is no such live function.
static s_function_t *s_function_find(sched_scheduler_t *self, const char *name, bool ask_kvs,
                                     int64_t now)
{
    s_function_t *f = sched_table_get(self->functions, name);
    if (f || !ask_kvs || sched_dag_check_name("function", name, NULL, 0) != 0 ||
        s_absent_recent(self->fn_absent, name, now))
        return f;
    char key[SCHED_NAME_MAX + 16];
    snprintf(key, sizeof key, "funcs/%s", name);
    cb_bytes_t value = {NULL, 0};
    uint64_t ts = 0, version = 0;
    int rc = s_kvs_get_lww(self, key, &value, &ts);
    if (rc == 0 && s_blob_live(self, &value, ts, &version)) {
        f = s_function_put(self, name, version);
        cb_info("function '%s' found in the KVS", name);
    } else if (rc == 0 || rc == -ENOENT)
        s_absent_note(self->fn_absent, name, now);
    cb_bytes_fini(&value);
    return f;
}

typedef struct {
    sched_scheduler_t *self;
    int64_t now;
} s_known_arg_t;

static bool s_known(void *arg, const char *function)
{
    s_known_arg_t *k = arg;
    return s_function_find(k->self, function, true, k->now) != NULL;
}

//  ---- DAGs ---------------------------------------------------------------------------------

static void s_dag_free(void *p)
{
    s_dag_t *d = p;
    if (!d)
        return;
    cb_free(d->name);
    sched_dag_destroy(&d->dag);
    cb_free(d->fns);
    cb_bytes_fini(&d->spec);
    cb_bytes_fini(&d->spec_field);
    cb_free(d->args);
    cb_free(d->chosen);
    cb_free(d->locations);
    cb_free(d->location_ptrs);
    cb_free(d);
}

//  Validates a DAG against the registered functions and prepares what its calls need.
//  Everything borrowed and copied. NULL with the reason in err.
static s_dag_t *s_dag_build(sched_scheduler_t *self, const char *name,
                            const char *const *functions, size_t n,
                            const sched_dag_edge_t *edges, size_t nedges, int64_t now,
                            char *err, size_t errlen)
{
    if (sched_dag_check_name("DAG", name, err, errlen) != 0)
        return NULL;
    s_known_arg_t known = {self, now};
    sched_dag_t *dag = sched_dag_new(functions, n, edges, nedges, s_known, &known, err, errlen);
    if (!dag)
        return NULL;
    s_dag_t *d = cb_calloc(1, sizeof *d);
    d->name = cb_strdup(name);
    d->dag = dag;
    d->fns = cb_calloc(n, sizeof *d->fns);
    for (size_t i = 0; i < n; i++) {
        d->fns[i] = sched_table_get(self->functions, functions[i]);
        assert(d->fns[i]);      //  sched_dag_new asked s_known about every one
    }
    //  The stored spec is rebuilt from the validated fields only: whatever else a client
    //  put in its message does not reach the KVS or every schedule.
    DagSpec spec = DAG_SPEC__INIT;
    spec.name = d->name;
    spec.n_functions = n;
    spec.functions = cb_calloc(n, sizeof *spec.functions);
    for (size_t i = 0; i < n; i++)
        spec.functions[i] = (char *)sched_dag_function(dag, i);
    DagEdge *e = cb_calloc(nedges ? nedges : 1, sizeof *e);
    spec.edges = cb_calloc(nedges ? nedges : 1, sizeof *spec.edges);
    spec.n_edges = nedges;
    for (size_t i = 0; i < nedges; i++) {
        dag_edge__init(&e[i]);
        e[i].from = (char *)edges[i].from;
        e[i].to = (char *)edges[i].to;
        spec.edges[i] = &e[i];
    }
    d->spec.len = dag_spec__get_packed_size(&spec);
    d->spec.data = cb_malloc(d->spec.len ? d->spec.len : 1);
    dag_spec__pack(&spec, d->spec.data);
    cb_free(spec.functions);
    cb_free(spec.edges);
    cb_free(e);
    uint8_t head[16];
    head[0] = S_TAG_SCHEDULE_DAG;
    size_t hlen = 1 + s_varint(head + 1, d->spec.len);
    d->spec_field.len = hlen + d->spec.len;
    d->spec_field.data = cb_malloc(d->spec_field.len);
    memcpy(d->spec_field.data, head, hlen);
    memcpy(d->spec_field.data + hlen, d->spec.data, d->spec.len);
    d->args = cb_calloc(n, sizeof *d->args);
    d->chosen = cb_calloc(n, sizeof *d->chosen);
    d->locations = cb_calloc(n, sizeof *d->locations);
    d->location_ptrs = cb_calloc(n, sizeof *d->location_ptrs);
    for (size_t i = 0; i < n; i++) {
        dag_schedule__locations_entry__init(&d->locations[i]);
        d->locations[i].key = (char *)sched_dag_function(dag, i);
        d->location_ptrs[i] = &d->locations[i];
    }
    return d;
}

static void s_dag_use(s_dag_t *d)
{
    for (size_t i = 0; i < sched_dag_size(d->dag); i++)
        d->fns[i]->users++;
}

//  Undoes s_dag_use: functions no DAG needs any more are unpinned everywhere.
static void s_dag_release(sched_scheduler_t *self, s_dag_t *d)
{
    for (size_t i = 0; i < sched_dag_size(d->dag); i++) {
        s_function_t *f = d->fns[i];
        assert(f->users > 0);
        if (--f->users == 0)
            s_unpin_all(self, f);
    }
}

//  Builds a DAG from a stored spec (already unpacked) and adds it as registered.
static s_dag_t *s_dag_adopt(sched_scheduler_t *self, const DagSpec *spec, int64_t now)
{
    sched_dag_edge_t *edges = s_arena_array(self, spec->n_edges, sizeof *edges);
    for (size_t e = 0; e < spec->n_edges; e++)
        edges[e] = (sched_dag_edge_t){spec->edges[e]->from, spec->edges[e]->to};
    char err[512];
    s_dag_t *d = s_dag_build(self, spec->name, (const char *const *)spec->functions,
                             spec->n_functions, edges, spec->n_edges, now, err, sizeof err);
    if (!d) {
        cb_warn("DAG '%s' in the KVS is not valid here: %s", spec->name, err);
        return NULL;
    }
    s_dag_use(d);
    sched_table_put(self->dags, d->name, d);
    sched_table_remove(self->dag_absent, d->name);
    return d;
}

//  Decodes a stored DagSpec: the spec, or NULL when deleted or undecodable.
static DagSpec *s_spec_live(sched_scheduler_t *self, const cb_bytes_t *value, const char *name)
{
    DagSpec *spec = dag_spec__unpack(&self->pb, value->len, value->data);
    if (!spec || spec->n_functions == 0)
        return NULL;
    if (strcmp(spec->name, name) != 0) {
        cb_warn("KVS key dags/%s holds DAG '%s': ignored", name, spec->name);
        return NULL;
    }
    return spec;
}

//  As s_function_find, for DAGs.
static s_dag_t *s_dag_find(sched_scheduler_t *self, const char *name, bool ask_kvs,
                           int64_t now)
{
    s_dag_t *d = sched_table_get(self->dags, name);
    if (d || !ask_kvs || sched_dag_check_name("DAG", name, NULL, 0) != 0 ||
        s_absent_recent(self->dag_absent, name, now))
        return d;
    char key[SCHED_NAME_MAX + 16];
    snprintf(key, sizeof key, "dags/%s", name);
    cb_bytes_t value = {NULL, 0};
    uint64_t ts = 0;
    int rc = s_kvs_get_lww(self, key, &value, &ts);
    if (rc == 0) {
        DagSpec *spec = s_spec_live(self, &value, name);
        if (spec && (d = s_dag_adopt(self, spec, now)) != NULL)
            cb_info("DAG '%s' found in the KVS", name);
    }
    if (!d && (rc == 0 || rc == -ENOENT))
        s_absent_note(self->dag_absent, name, now);
    cb_bytes_fini(&value);
    return d;
}

//  The name of a registered or pending DAG using f, or NULL.
static const char *s_dag_using(sched_scheduler_t *self, const s_function_t *f)
{
    size_t pos = 0;
    void *v;
    while (sched_table_next(self->dags, &pos, NULL, &v)) {
        s_dag_t *d = v;
        for (size_t i = 0; i < sched_dag_size(d->dag); i++)
            if (d->fns[i] == f)
                return d->name;
    }
    for (s_registration_t *r = self->registrations; r; r = r->next)
        for (size_t i = 0; i < sched_dag_size(r->dag->dag); i++)
            if (r->dag->fns[i] == f)
                return r->dag->name;
    return NULL;
}

//  ---- metadata load ------------------------------------------------------------------------

//  Reads every function and DAG named in the indexes. Idempotent: what is known already is
//  kept, so a partial load can simply be retried. Decodes into the arena, which it does not
//  reset: it may run inside a request's handler.
static int s_load(sched_scheduler_t *self, int64_t now)
{
    lat_t index[2];
    const char *index_keys[2] = {"funcs/index", "dags/index"};
    const char *prefixes[2] = {"funcs/", "dags/"};
    int rc = 0;
    for (int kind = 0; kind < 2 && rc == 0; kind++) {
        rc = s_kvs_index_read(self, index_keys[kind], &index[kind]);
        if (rc) {
            snprintf(self->load_error, sizeof self->load_error, "%s", s_kvs_error(self, rc));
            break;
        }
        const lat_set_t *set = &index[kind].u.set;
        char **keys = cb_calloc(set->len ? set->len : 1, sizeof *keys);
        char **names = cb_calloc(set->len ? set->len : 1, sizeof *names);
        size_t n = 0;
        for (size_t i = 0; i < set->len; i++) {
            char buf[SCHED_NAME_MAX + 1];
            const char *name = s_index_name(&set->items[i], buf);
            sched_table_t *known = kind == 0 ? self->functions : self->dags;
            if (!name || sched_table_contains(known, name))
                continue;
            names[n] = cb_strdup(name);
            keys[n] = cb_malloc(strlen(prefixes[kind]) + strlen(name) + 1);
            sprintf(keys[n], "%s%s", prefixes[kind], name);
            n++;
        }
        cb_kvs_result_t *results = cb_calloc(n ? n : 1, sizeof *results);
        if (n)
            rc = cb_kvs_get_many(self->kvs, (const char *const *)keys, n, results);
        for (size_t i = 0; i < n; i++) {
            lat_t *v = &results[i].value;
            if (results[i].error == -ENOENT || (results[i].error == 0 && v->kind != LAT_LWW)) {
                s_absent_note(kind == 0 ? self->fn_absent : self->dag_absent, names[i], now);
            } else if (results[i].error == 0) {
                if (kind == 0) {
                    uint64_t version = 0;
                    if (s_blob_live(self, &v->u.lww.value, v->u.lww.ts, &version))
                        s_function_put(self, names[i], version);
                    else
                        s_absent_note(self->fn_absent, names[i], now);
                } else {
                    DagSpec *spec = s_spec_live(self, &v->u.lww.value, names[i]);
                    if (!spec || !s_dag_adopt(self, spec, now))
                        s_absent_note(self->dag_absent, names[i], now);
                }
            } else if (rc == 0)
                rc = results[i].error;
            lat_fini(v);
            cb_free(keys[i]);
            cb_free(names[i]);
        }
        if (rc) {
            self->stats.kvs_errors++;
            snprintf(self->load_error, sizeof self->load_error, "%s", s_kvs_error(self, rc));
        }
        cb_free(results);
        cb_free(keys);
        cb_free(names);
        lat_fini(&index[kind]);
    }
    if (rc == 0) {
        self->loaded = true;
        self->load_error[0] = '\0';
        self->loaded_functions = sched_table_size(self->functions);
        self->loaded_dags = sched_table_size(self->dags);
    }
    return rc;
}

//  Before a request that needs metadata: loads it if it never was (at most once per
//  S_LOAD_RETRY_MS, so requests do not queue behind a KVS that is down).
static bool s_ready(sched_scheduler_t *self, const Request *req, int64_t now)
{
    if (self->loaded)
        return true;
    if (now >= self->next_load_ms) {
        self->next_load_ms = now + S_LOAD_RETRY_MS;
        if (s_load(self, now) == 0) {
            cb_info("loaded %zu functions and %zu DAGs from the KVS", self->loaded_functions,
                    self->loaded_dags);
            return true;
        }
    }
    s_reply_error(self, req, CB_ERROR__CB_KVS,
                  "the scheduler cannot read functions and DAGs from the KVS yet: %s",
                  self->load_error);
    return false;
}

//  Reads an index and looks up the names we have never heard of (registered through
//  another scheduler). Names known to be deleted are not read again here.
static void s_refresh(sched_scheduler_t *self, bool functions, int64_t now)
{
    lat_t index;
    if (s_kvs_index_read(self, functions ? "funcs/index" : "dags/index", &index) != 0)
        return;
    for (size_t i = 0; i < index.u.set.len; i++) {
        char buf[SCHED_NAME_MAX + 1];
        const char *name = s_index_name(&index.u.set.items[i], buf);
        if (!name)
            continue;
        if (functions && !sched_table_contains(self->functions, name) &&
            !sched_table_contains(self->fn_absent, name))
            s_function_find(self, name, true, now);
        if (!functions && !sched_table_contains(self->dags, name) &&
            !sched_table_contains(self->dag_absent, name))
            s_dag_find(self, name, true, now);
    }
    lat_fini(&index);
}

//  ---- DAG registrations --------------------------------------------------------------------

static void s_registration_unlink(sched_scheduler_t *self, s_registration_t *reg)
{
    for (s_registration_t **link = &self->registrations; *link; link = &(*link)->next)
        if (*link == reg) {
            *link = reg->next;
            break;
        }
    cb_free(reg->request_id);
    cb_free(reg->response_address);
    cb_free(reg);
}

static void s_registration_finish(sched_scheduler_t *self, s_registration_t *reg,
                                  CbError code, const char *message)
{
    s_dag_t *d = reg->dag;
    char err[512];
    if (code == CB_ERROR__CB_OK) {
        char key[SCHED_NAME_MAX + 16];
        snprintf(key, sizeof key, "dags/%s", d->name);
        uint8_t *copy = cb_memdup(d->spec.data, d->spec.len ? d->spec.len : 1);
        int rc = s_kvs_put_lww(self, key, copy, d->spec.len, cb_clock_lww_now());
        if (rc == 0)
            rc = s_kvs_index_add(self, "dags/index", d->name);
        if (rc) {
            code = CB_ERROR__CB_KVS;
            snprintf(err, sizeof err, "cannot store DAG '%s': %s", d->name, s_kvs_error(self, rc));
            message = err;
        }
    }
    if (code == CB_ERROR__CB_OK) {
        sched_table_put(self->dags, d->name, d);
        sched_table_remove(self->dag_absent, d->name);
        cb_info("registered DAG '%s' (%zu functions)", d->name, sched_dag_size(d->dag));
        s_reply_ok(self, reg->request_id, reg->response_address);
    } else {
        cb_info("DAG '%s' not registered: %s", d->name, message);
        s_dag_release(self, d);
        s_dag_free(d);
        s_reply_error_to(self, reg->request_id, reg->response_address, code, "%s", message);
    }
    s_registration_unlink(self, reg);
}

//  Finishes reg if it can be: an executor refused a pin (its error), a function lost every
//  executor, every pin answered (success), or the deadline passed (success if every function
//  is pinned somewhere, else CB_TIMEOUT). Returns true if it finished (reg is freed).
static bool s_registration_check(sched_scheduler_t *self, s_registration_t *reg, int64_t now)
{
    if (reg->error != CB_ERROR__CB_OK) {
        s_registration_finish(self, reg, reg->error, reg->message);
        return true;
    }
    s_dag_t *d = reg->dag;
    bool settled = true;
    const s_function_t *unpinned = NULL;
    uint32_t waiting = UINT32_MAX;
    for (size_t i = 0; i < sched_dag_size(d->dag); i++) {
        s_function_t *f = d->fns[i];
        size_t acked = 0, pending = 0;
        for (size_t p = 0; p < f->npins; p++) {
            if (!sched_policy_alive(self->policy, f->pins[p].exec, now))
                continue;
            if (f->pins[p].state == S_PIN_ACKED)
                acked++;
            else {
                pending++;
                waiting = f->pins[p].exec;
            }
        }
        //  Every executor it was being pinned on died: try others before giving up.
        if (acked + pending == 0 && (pending = s_pin_more(self, f, now)) > 0)
            waiting = f->pins[f->npins - 1].exec;
        if (acked + pending == 0) {
            char message[512];
            snprintf(message, sizeof message,
                     "function '%s' of DAG '%s' lost every executor it was being pinned on, "
                     "and no other is alive",
                     f->name, d->name);
            s_registration_finish(self, reg, CB_ERROR__CB_NO_RESOURCES, message);
            return true;
        }
        settled = settled && pending == 0;
        if (acked == 0 && !unpinned)
            unpinned = f;
    }
    if (settled) {
        s_registration_finish(self, reg, CB_ERROR__CB_OK, NULL);
        return true;
    }
    if (now < reg->deadline)
        return false;
    if (!unpinned) {
        //  Every function runs somewhere; the slow executors may still answer (or be
        //  replaced by the repair). Better a DAG on fewer replicas than a failed request.
        cb_warn("DAG '%s': executor %s did not acknowledge its pin within %d ms; registered "
                "with the pins acknowledged",
                d->name, s_exec_id(self, waiting), self->config.pin_timeout_ms);
        s_registration_finish(self, reg, CB_ERROR__CB_OK, NULL);
        return true;
    }
    char message[512];
    snprintf(message, sizeof message,
             "no executor acknowledged pinning function '%s' within %d ms", unpinned->name,
             self->config.pin_timeout_ms);
    s_registration_finish(self, reg, CB_ERROR__CB_TIMEOUT, message);
    return true;
}

static void s_registrations_check(sched_scheduler_t *self, int64_t now)
{
    s_registration_t *reg = self->registrations;
    while (reg) {
        s_registration_t *next = reg->next;
        s_registration_check(self, reg, now);
        reg = next;
    }
}

static s_registration_t *s_registration_find(sched_scheduler_t *self, const char *name)
{
    for (s_registration_t *r = self->registrations; r; r = r->next)
        if (strcmp(r->dag->name, name) == 0)
            return r;
    return NULL;
}

//  ---- requests: functions ------------------------------------------------------------------

//  Makes executors drop their copy of a replaced function: unpin + pin where it is pinned
//  (the executor reloads the new version from the KVS when it pins), unpin elsewhere (a
//  copy loaded on demand for a one-shot call).
static void s_reload_everywhere(sched_scheduler_t *self, s_function_t *f, int64_t now)
{
    for (size_t i = 0; i < sched_policy_count(self->policy); i++) {
        bool pinned = s_pin_find(f, (uint32_t)i) != NULL;
        if (!pinned && !sched_policy_alive(self->policy, (uint32_t)i, now))
            continue;
        s_send_unpin(self, f->name, (uint32_t)i);
        if (pinned)
            s_pin(self, f, (uint32_t)i, now);
    }
}

static void s_handle_register_function(sched_scheduler_t *self, const Request *req, int64_t now)
{
    const FunctionBlob *blob = req->register_function;
    char err[256], q[SCHED_QUOTE_BYTES];
    if (sched_dag_check_name("function", blob->name, err, sizeof err) != 0) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "%s", err);
        return;
    }
    const char *name = blob->name;
    if (blob->code.len == 0) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "function '%s' has no code", name);
        return;
    }
    if ((int64_t)blob->code.len > self->config.max_code_bytes) {
        s_reply_error(self, req, CB_ERROR__CB_TOO_LARGE,
                      "function '%s' has %zu bytes of code, more than the limit of %" PRId64,
                      name, blob->code.len, self->config.max_code_bytes);
        return;
    }
    if ((blob->signature.len != 0 && blob->signature.len != 64) ||
        (blob->public_key.len != 0 && blob->public_key.len != 32) ||
        (blob->signature.len == 0) != (blob->public_key.len == 0)) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID,
                      "function '%s': a signature is 64 bytes and comes with its 32-byte "
                      "public key (Ed25519); got %zu and %zu bytes",
                      name, blob->signature.len, blob->public_key.len);
        return;
    }
    //  The stored blob is rebuilt from the known fields (nothing else reaches the KVS),
    //  stamped with the LWW timestamp it is stored under: that is its version.
    uint64_t version = cb_clock_lww_now();
    FunctionBlob stored = FUNCTION_BLOB__INIT;
    stored.name = (char *)name;
    stored.code = blob->code;
    stored.signature = blob->signature;
    stored.public_key = blob->public_key;
    stored.abi_version = blob->abi_version;
    stored.version = version;
    size_t len = function_blob__get_packed_size(&stored);
    uint8_t *data = cb_malloc(len);
    function_blob__pack(&stored, data);
    char key[SCHED_NAME_MAX + 16];
    snprintf(key, sizeof key, "funcs/%s", name);
    int rc = s_kvs_put_lww(self, key, data, len, version);
    if (rc == 0)
        rc = s_kvs_index_add(self, "funcs/index", name);
    if (rc) {
        s_reply_error(self, req, CB_ERROR__CB_KVS, "cannot store function '%s': %s", name,
                      s_kvs_error(self, rc));
        return;
    }
    bool replaced = sched_table_contains(self->functions, name);
    s_function_t *f = s_function_put(self, name, version);
    f->version = version;
    if (replaced)
        s_reload_everywhere(self, f, now);
    cb_info("%s function '%s' (%zu bytes, %s)", replaced ? "replaced" : "registered",
            sched_dag_quote(name, q), blob->code.len, blob->signature.len ? "signed" : "unsigned");
    s_reply_ok(self, req->request_id, req->response_address);
}

static void s_handle_delete_function(sched_scheduler_t *self, const Request *req, int64_t now)
{
    const char *name = req->delete_function;
    char q[SCHED_QUOTE_BYTES];
    s_function_t *f = s_function_find(self, name, true, now);
    if (!f) {
        s_reply_error(self, req, CB_ERROR__CB_NO_SUCH_FUNCTION,
                      "function '%s' is not registered", sched_dag_quote(name, q));
        return;
    }
    const char *user = s_dag_using(self, f);
    if (user) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "function '%s' is used by DAG '%s'",
                      name, user);
        return;
    }
    FunctionBlob deleted = FUNCTION_BLOB__INIT;
    deleted.name = (char *)name;
    deleted.version = cb_clock_lww_now();
    size_t len = function_blob__get_packed_size(&deleted);
    uint8_t *data = cb_malloc(len);
    function_blob__pack(&deleted, data);
    char key[SCHED_NAME_MAX + 16];
    snprintf(key, sizeof key, "funcs/%s", name);
    int rc = s_kvs_put_lww(self, key, data, len, deleted.version);
    if (rc) {
        s_reply_error(self, req, CB_ERROR__CB_KVS, "cannot delete function '%s': %s", name,
                      s_kvs_error(self, rc));
        return;
    }
    //  No DAG uses it, so it is pinned nowhere; executors may still hold a copy loaded for
    //  a one-shot call.
    for (size_t i = 0; i < sched_policy_count(self->policy); i++)
        if (sched_policy_alive(self->policy, (uint32_t)i, now))
            s_send_unpin(self, name, (uint32_t)i);
    cb_info("deleted function '%s'", name);
    s_absent_note(self->fn_absent, name, now);
    sched_table_remove(self->functions, name);     //  frees f; name is the request's
    s_reply_ok(self, req->request_id, req->response_address);
}

static void s_reply_names(sched_scheduler_t *self, const Request *req, const sched_table_t *t)
{
    size_t n = 0;
    const char **names = sched_table_keys_sorted(t, &n);
    Reply reply = REPLY__INIT;
    reply.request_id = req->request_id;
    reply.n_names = n;
    reply.names = (char **)names;
    s_send_reply(self, req->response_address, &reply);
    cb_free(names);
}

//  ---- requests: DAGs -----------------------------------------------------------------------

static void s_handle_register_dag(sched_scheduler_t *self, const Request *req, int64_t now)
{
    const DagSpec *spec = req->register_dag;
    char err[512];
    if (sched_dag_check_name("DAG", spec->name, err, sizeof err) != 0) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "%s", err);
        return;
    }
    if (s_registration_find(self, spec->name) || s_dag_find(self, spec->name, true, now)) {
        s_reply_error(self, req, CB_ERROR__CB_ALREADY_EXISTS, "DAG '%s' already exists",
                      spec->name);
        return;
    }
    sched_dag_edge_t *edges = s_arena_array(self, spec->n_edges, sizeof *edges);
    for (size_t e = 0; e < spec->n_edges; e++)
        edges[e] = (sched_dag_edge_t){spec->edges[e]->from, spec->edges[e]->to};
    s_dag_t *d = s_dag_build(self, spec->name, (const char *const *)spec->functions,
                             spec->n_functions, edges, spec->n_edges, now, err, sizeof err);
    if (!d) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "%s", err);
        return;
    }
    if (sched_policy_alive_count(self->policy, now) == 0) {
        s_reply_error(self, req, CB_ERROR__CB_NO_RESOURCES,
                      "no executor is alive to pin the functions of DAG '%s' on", d->name);
        s_dag_free(d);
        return;
    }
    s_dag_use(d);
    for (size_t i = 0; i < sched_dag_size(d->dag); i++)
        s_pin_more(self, d->fns[i], now);
    s_registration_t *reg = cb_calloc(1, sizeof *reg);
    reg->request_id = cb_strdup(req->request_id);
    reg->response_address = cb_strdup(req->response_address);
    reg->dag = d;
    reg->deadline = now + self->config.pin_timeout_ms;
    reg->next = self->registrations;
    self->registrations = reg;
    //  Functions pinned already (used by another DAG) need no acknowledgement.
    s_registration_check(self, reg, now);
}

static void s_handle_delete_dag(sched_scheduler_t *self, const Request *req, int64_t now)
{
    const char *name = req->delete_dag;
    char q[SCHED_QUOTE_BYTES];
    s_dag_t *d = s_dag_find(self, name, true, now);
    if (!d) {
        s_reply_error(self, req, CB_ERROR__CB_NO_SUCH_DAG, "DAG '%s' is not registered",
                      sched_dag_quote(name, q));
        return;
    }
    DagSpec deleted = DAG_SPEC__INIT;
    deleted.name = (char *)name;
    size_t len = dag_spec__get_packed_size(&deleted);
    uint8_t *data = cb_malloc(len);
    dag_spec__pack(&deleted, data);
    char key[SCHED_NAME_MAX + 16];
    snprintf(key, sizeof key, "dags/%s", name);
    int rc = s_kvs_put_lww(self, key, data, len, cb_clock_lww_now());
    if (rc) {
        s_reply_error(self, req, CB_ERROR__CB_KVS, "cannot delete DAG '%s': %s", name,
                      s_kvs_error(self, rc));
        return;
    }
    cb_info("deleted DAG '%s'", name);
    s_dag_release(self, d);
    s_absent_note(self->dag_absent, name, now);
    sched_table_remove(self->dags, name);
    s_reply_ok(self, req->request_id, req->response_address);
}

//  ---- requests: calls ----------------------------------------------------------------------

//  Checks what both kinds of call carry; replies and returns false if invalid.
static bool s_call_ok(sched_scheduler_t *self, const Request *req, const char *output_key,
                      uint32_t timeout_ms)
{
    char q[SCHED_QUOTE_BYTES];
    if (strncmp(output_key, "funcs/", 6) == 0 || strncmp(output_key, "dags/", 5) == 0) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID,
                      "output key '%s' is reserved: funcs/ and dags/ hold the cluster's "
                      "functions and DAGs",
                      sched_dag_quote(output_key, q));
        return false;
    }
    if (timeout_ms > S_MAX_CALL_TIMEOUT_MS) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID,
                      "timeout of %" PRIu32 " ms is more than one hour", timeout_ms);
        return false;
    }
    return true;
}

//  The keys of the ref arguments among args (borrowed), into the arena.
static const char **s_refs(sched_scheduler_t *self, Arg *const *args, size_t n, size_t *nrefs)
{
    *nrefs = 0;
    if (n == 0)
        return NULL;
    const char **refs = s_arena_array(self, n, sizeof *refs);
    for (size_t a = 0; a < n; a++)
        if (args[a] && args[a]->ref && args[a]->ref[0])
            refs[(*nrefs)++] = args[a]->ref;
    return refs;
}

//  Where a call of f runs: an alive executor where f is pinned, else any alive executor
//  (it loads f on demand); locality and load decide among them. -1 if none is alive.
static int s_place(sched_scheduler_t *self, const s_function_t *f, const char *const *refs,
                   size_t nrefs, int64_t now)
{
    int exec = -1;
    if (f->npins) {
        uint32_t *pinned = s_arena_array(self, f->npins, sizeof *pinned);
        size_t n = s_pins_acked(self, f, now, pinned);
        if (n)
            exec = sched_policy_pick(self->policy, now, pinned, n, refs, nrefs);
    }
    if (exec < 0)
        exec = sched_policy_pick(self->policy, now, NULL, 0, refs, nrefs);
    return exec;
}

static void s_reply_output_key(sched_scheduler_t *self, const Request *req, const char *key)
{
    Reply reply = REPLY__INIT;
    reply.request_id = req->request_id;
    reply.output_key = (char *)key;
    s_send_reply(self, req->response_address, &reply);
}

static void s_handle_call_function(sched_scheduler_t *self, const Request *req, int64_t now)
{
    FunctionCall *call = req->call_function;
    char q[SCHED_QUOTE_BYTES];
    s_function_t *f = s_function_find(self, call->function, true, now);
    if (!f) {
        s_reply_error(self, req, CB_ERROR__CB_NO_SUCH_FUNCTION,
                      "function '%s' is not registered", sched_dag_quote(call->function, q));
        return;
    }
    if (!s_call_ok(self, req, call->output_key, call->timeout_ms))
        return;
    size_t nrefs;
    const char **refs = s_refs(self, call->args, call->n_args, &nrefs);
    int exec = s_place(self, f, refs, nrefs, now);
    if (exec < 0) {
        s_reply_error(self, req, CB_ERROR__CB_NO_RESOURCES,
                      "no executor is alive to run function '%s'", f->name);
        return;
    }
    if (call->timeout_ms == 0)
        call->timeout_ms = (uint32_t)self->config.default_timeout_ms;
    //  The response address goes along even with an output key: the executor PUTs the
    //  result there, and its address lets it answer what can only be answered directly.
    Invocation inv = INVOCATION__INIT;
    inv.id = req->request_id;
    inv.call = call;
    inv.response_address = req->response_address;
    ExecMessage m = EXEC_MESSAGE__INIT;
    m.body_case = EXEC_MESSAGE__BODY_CALL;
    m.call = &inv;
    if (s_exec_send(self, (uint32_t)exec, &m) != 0) {
        s_reply_error(self, req, CB_ERROR__CB_NO_RESOURCES,
                      "executor %s is not taking work (its queue is full)",
                      s_exec_id(self, (uint32_t)exec));
        return;
    }
    self->stats.calls++;
    if (call->output_key[0])
        s_reply_output_key(self, req, call->output_key);
}

static void s_handle_call_dag(sched_scheduler_t *self, const Request *req, int64_t now)
{
    const DagCall *call = req->call_dag;
    char q[SCHED_QUOTE_BYTES];
    s_dag_t *d = s_dag_find(self, call->dag, true, now);
    if (!d) {
        s_reply_error(self, req, CB_ERROR__CB_NO_SUCH_DAG, "DAG '%s' is not registered",
                      sched_dag_quote(call->dag, q));
        return;
    }
    if (!s_call_ok(self, req, call->output_key, call->timeout_ms))
        return;
    size_t n = sched_dag_size(d->dag);
    memset(d->args, 0, n * sizeof *d->args);
    for (size_t a = 0; a < call->n_args; a++) {
        const DagCall__ArgsEntry *entry = call->args[a];
        int i = sched_dag_find(d->dag, entry->key);
        if (i < 0) {
            s_reply_error(self, req, CB_ERROR__CB_INVALID,
                          "arguments for function '%s', which is not in DAG '%s'",
                          sched_dag_quote(entry->key, q), d->name);
            return;
        }
        d->args[i] = entry->value;      //  a repeated key: the last one wins, as in a map
    }
    for (size_t i = 0; i < n; i++) {
        size_t nrefs = 0;
        const char **refs =
            d->args[i] ? s_refs(self, d->args[i]->args, d->args[i]->n_args, &nrefs) : NULL;
        int exec = s_place(self, d->fns[i], refs, nrefs, now);
        if (exec < 0) {
            s_reply_error(self, req, CB_ERROR__CB_NO_RESOURCES,
                          "no executor is alive to run function '%s' of DAG '%s'",
                          d->fns[i]->name, d->name);
            return;
        }
        d->chosen[i] = (uint32_t)exec;
        d->locations[i].value = sched_policy_executor(self->policy, (uint32_t)exec)->address;
    }
    //  Fields every schedule of this call shares, packed once.
    DagSchedule common = DAG_SCHEDULE__INIT;
    common.id = req->request_id;
    common.n_locations = n;
    common.locations = d->location_ptrs;
    common.response_address = req->response_address;
    common.output_key = call->output_key;
    common.consistency = call->consistency;
    if (call->consistency == CONSISTENCY__CONSISTENCY_REPEATABLE_READ && n > 0) {
        //  The request's home cache: that of the node of its first function (a source).
        const sched_exec_t *first =
            sched_policy_executor(self->policy, d->chosen[sched_dag_order(d->dag)[0]]);
        const sched_node_t *node = first ? sched_policy_node(self->policy, first->node) : NULL;
        if (node && node->cache_address)
            common.session_cache = node->cache_address;
    }
    common.timeout_ms = call->timeout_ms ? call->timeout_ms
                                         : (uint32_t)self->config.default_timeout_ms;
    size_t common_len = dag_schedule__get_packed_size(&common);
    dag_schedule__pack(&common, s_buf_reserve(&self->common, common_len));
    //  The sink's schedule goes first and the sources' last: a source starts its call at
    //  once, and its triggers then find their schedules in place more often. (Triggers that
    //  overtake their schedule wait for it at the executor, so this is speed, not safety.)
    //  A send that fails stops here, before any source has started.
    const uint32_t *order = sched_dag_order(d->dag);
    for (size_t k = n; k-- > 0;) {
        uint32_t i = order[k];
        DagSchedule part = DAG_SCHEDULE__INIT;
        part.target_function = (char *)sched_dag_function(d->dag, i);
        part.begin = sched_dag_is_source(d->dag, i);
        //  Each executor gets the fixed arguments of its own function only: the map holds
        //  one entry, or none.
        DagSchedule__ArgsEntry entry = DAG_SCHEDULE__ARGS_ENTRY__INIT;
        DagSchedule__ArgsEntry *entry_ptr = &entry;
        if (d->args[i]) {
            entry.key = part.target_function;
            entry.value = d->args[i];
            part.n_args = 1;
            part.args = &entry_ptr;
        }
        size_t part_len = dag_schedule__get_packed_size(&part);
        dag_schedule__pack(&part, s_buf_reserve(&self->part, part_len));
        size_t body = common_len + d->spec_field.len + part_len;
        uint8_t head[16];
        head[0] = S_TAG_EXEC_SCHEDULE;
        size_t hlen = 1 + s_varint(head + 1, body);
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, hlen + body);
        uint8_t *out = zmq_msg_data(&msg);
        memcpy(out, head, hlen);
        memcpy(out + hlen, self->common.data, common_len);
        memcpy(out + hlen + common_len, d->spec_field.data, d->spec_field.len);
        memcpy(out + hlen + common_len + d->spec_field.len, self->part.data, part_len);
        if (s_exec_send_msg(self, d->chosen[i], &msg) != 0) {
            s_reply_error(self, req, CB_ERROR__CB_NO_RESOURCES,
                          "executor %s is not taking work (its queue is full)",
                          s_exec_id(self, d->chosen[i]));
            return;
        }
        self->stats.schedules++;
    }
    self->stats.dag_calls++;
    if (call->output_key[0])
        s_reply_output_key(self, req, call->output_key);
}

//  ---- requests: status ---------------------------------------------------------------------

static void s_handle_status(sched_scheduler_t *self, const Request *req, int64_t now)
{
    size_t nexecs = sched_policy_count(self->policy);
    //  Each executor's acknowledged pins, gathered in one pass over the functions.
    size_t *npinned = s_arena_array(self, nexecs, sizeof *npinned);
    memset(npinned, 0, (nexecs ? nexecs : 1) * sizeof *npinned);
    size_t pos = 0;
    void *v;
    while (sched_table_next(self->functions, &pos, NULL, &v)) {
        const s_function_t *f = v;
        for (size_t p = 0; p < f->npins; p++)
            npinned[f->pins[p].exec] += f->pins[p].state == S_PIN_ACKED;
    }
    ExecutorInfo *infos = s_arena_array(self, nexecs, sizeof *infos);
    ExecutorInfo **info_ptrs = s_arena_array(self, nexecs, sizeof *info_ptrs);
    size_t ninfos = 0;
    for (size_t i = 0; i < nexecs; i++) {
        if (!sched_policy_alive(self->policy, (uint32_t)i, now))
            continue;
        const sched_exec_t *e = sched_policy_executor(self->policy, (uint32_t)i);
        ExecutorInfo *info = &infos[ninfos];
        executor_info__init(info);
        info->id = e->id;
        info->address = e->address;
        info->node = sched_policy_node(self->policy, e->node)->name;
        info->utilization = e->utilization;
        info->queued = e->queued;
        info->calls = e->calls;
        info->incarnation = e->incarnation;
        info->pinned = s_arena_array(self, npinned[i], sizeof *info->pinned);
        info_ptrs[ninfos++] = info;
        npinned[i] = ninfos;        //  from here on: 1 + the index of its info
    }
    pos = 0;
    while (sched_table_next(self->functions, &pos, NULL, &v)) {
        const s_function_t *f = v;
        for (size_t p = 0; p < f->npins; p++) {
            uint32_t x = f->pins[p].exec;
            if (f->pins[p].state != S_PIN_ACKED || !sched_policy_alive(self->policy, x, now))
                continue;
            ExecutorInfo *info = info_ptrs[npinned[x] - 1];
            info->pinned[info->n_pinned++] = f->name;
        }
    }
    size_t nnodes = sched_policy_node_count(self->policy);
    NodeInfo *nodes = s_arena_array(self, nnodes, sizeof *nodes);
    NodeInfo **node_ptrs = s_arena_array(self, nnodes, sizeof *node_ptrs);
    for (size_t i = 0; i < nnodes; i++) {
        const sched_node_t *node = sched_policy_node(self->policy, (uint32_t)i);
        node_info__init(&nodes[i]);
        nodes[i].node = node->name;
        nodes[i].cache_address = node->cache_address;
        nodes[i].cached_keys = node->cached_keys;
        nodes[i].cached_bytes = node->cached_bytes;
        node_ptrs[i] = &nodes[i];
    }
    ClusterStatus status = CLUSTER_STATUS__INIT;
    status.n_executors = ninfos;
    status.executors = info_ptrs;
    status.n_nodes = nnodes;
    status.nodes = node_ptrs;
    const char **functions = sched_table_keys_sorted(self->functions, &status.n_functions);
    const char **dags = sched_table_keys_sorted(self->dags, &status.n_dags);
    status.functions = (char **)functions;
    status.dags = (char **)dags;
    status.kvs_routing = self->config.kvs;
    Reply reply = REPLY__INIT;
    reply.request_id = req->request_id;
    reply.status = &status;
    s_send_reply(self, req->response_address, &reply);
    cb_free(functions);
    cb_free(dags);
}

static void s_handle_request(sched_scheduler_t *self, const uint8_t *data, size_t len)
{
    Request *req = request__unpack(&self->pb, len, data);
    if (!req) {
        self->stats.malformed++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("malformed request of %zu bytes dropped", len);
        return;
    }
    if (!anna_pushcache_address_ok(req->response_address)) {
        self->stats.bad_address++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("request with response address '%.64s' dropped", req->response_address);
        return;
    }
    self->stats.requests++;
    int64_t now = cb_clock_mono_ms();
    if (req->op_case == REQUEST__OP_STATUS) {
        s_handle_status(self, req, now);
        return;
    }
    if (req->op_case == REQUEST__OP__NOT_SET) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "request has no operation");
        return;
    }
    if (!s_ready(self, req, now))
        return;
    //  Issue 4: every level is implemented (by the executors' runners and, for repeatable
    //  read, the request's home cache); an unknown one is refused rather than served as
    //  something weaker.
    Consistency level = CONSISTENCY__CONSISTENCY_LWW;
    if (req->op_case == REQUEST__OP_CALL_FUNCTION && req->call_function)
        level = req->call_function->consistency;
    else if (req->op_case == REQUEST__OP_CALL_DAG && req->call_dag)
        level = req->call_dag->consistency;
    if (level != CONSISTENCY__CONSISTENCY_LWW && level != CONSISTENCY__CONSISTENCY_REPEATABLE_READ &&
        level != CONSISTENCY__CONSISTENCY_SINGLE_CAUSAL &&
        level != CONSISTENCY__CONSISTENCY_MULTI_CAUSAL) {
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "unknown consistency level %d", (int)level);
        return;
    }
    switch (req->op_case) {
    case REQUEST__OP_CALL_FUNCTION:
        s_handle_call_function(self, req, now);
        break;
    case REQUEST__OP_CALL_DAG:
        s_handle_call_dag(self, req, now);
        break;
    case REQUEST__OP_REGISTER_FUNCTION:
        s_handle_register_function(self, req, now);
        break;
    case REQUEST__OP_DELETE_FUNCTION:
        s_handle_delete_function(self, req, now);
        break;
    case REQUEST__OP_LIST_FUNCTIONS:
        s_refresh(self, true, now);
        s_reply_names(self, req, self->functions);
        break;
    case REQUEST__OP_REGISTER_DAG:
        s_handle_register_dag(self, req, now);
        break;
    case REQUEST__OP_DELETE_DAG:
        s_handle_delete_dag(self, req, now);
        break;
    case REQUEST__OP_LIST_DAGS:
        s_refresh(self, false, now);
        s_reply_names(self, req, self->dags);
        break;
    default:
        s_reply_error(self, req, CB_ERROR__CB_INVALID, "unknown operation %d",
                      (int)req->op_case);
        break;
    }
}

//  ---- reports ------------------------------------------------------------------------------

static void s_handle_executor(sched_scheduler_t *self, const ExecutorInfo *info, int64_t now)
{
    if (!info->id[0] || !info->node[0] || !anna_pushcache_address_ok(info->address)) {
        self->stats.bad_reports++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("executor report with id '%.64s', node '%.64s', address '%.64s' dropped",
                    info->id, info->node, info->address);
        return;
    }
    int known = sched_policy_find(self->policy, info->id);
    bool was_dead = known >= 0 &&
                    sched_policy_executor(self->policy, (uint32_t)known)->declared_dead;
    uint32_t old_incarnation =
        known >= 0 ? sched_policy_executor(self->policy, (uint32_t)known)->incarnation : 0;
    sched_exec_report_t r = {info->id,     info->address, info->node, info->utilization,
                             info->queued, info->calls,   info->incarnation};
    uint32_t i;
    bool moved = false;
    sched_exec_event_t event = sched_policy_report(self->policy, &r, now, &i, &moved);
    sched_exec_t *e = sched_policy_executor(self->policy, i);
    if (event == SCHED_EXEC_NEW || moved || !e->user)
        s_exec_connect(self, i);
    if (event == SCHED_EXEC_NEW)
        cb_info("executor %s joined: %s on node %s", e->id, e->address, info->node);
    else if (was_dead && event == SCHED_EXEC_SAME)
        cb_info("executor %s is back", e->id);
    if (event == SCHED_EXEC_RESTARTED) {
        //  A new process: it holds none of the pins of the old one. Pin them again.
        size_t repinned = 0, pos = 0;
        void *v;
        while (sched_table_next(self->functions, &pos, NULL, &v))
            if (s_pin_find(v, i)) {
                s_pin(self, v, i, now);
                repinned++;
            }
        cb_info("executor %s restarted (incarnation %" PRIu32 " -> %" PRIu32
                "): pinning its %zu functions again",
                e->id, old_incarnation, info->incarnation, repinned);
    }
    //  What it says it holds pinned counts as pinned: after a scheduler restart this is how
    //  the pins are found again, without pinning everything anew.
    for (size_t p = 0; p < info->n_pinned; p++) {
        s_function_t *f = sched_table_get(self->functions, info->pinned[p]);
        if (f && f->users > 0 && !s_pin_find(f, i))
            s_pin_add(self, f, i, S_PIN_ACKED, 0);
    }
}

//  The executor a PinAck names: by id (ExecutorInfo.id), or by its address, which is how
//  executors name each other elsewhere (cb_fn_send). -1 if we know neither.
static int s_ack_executor(sched_scheduler_t *self, const char *name)
{
    int exec = sched_policy_find(self->policy, name);
    for (size_t i = 0; exec < 0 && i < sched_policy_count(self->policy); i++)
        if (strcmp(sched_policy_executor(self->policy, (uint32_t)i)->address, name) == 0)
            exec = (int)i;
    return exec;
}

static void s_handle_pin_ack(sched_scheduler_t *self, const PinAck *ack, int64_t now)
{
    self->stats.pin_acks++;
    int exec = s_ack_executor(self, ack->executor);
    if (exec < 0) {
        self->stats.bad_reports++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("PinAck from unknown executor '%.64s' dropped", ack->executor);
        return;
    }
    const char *id = s_exec_id(self, (uint32_t)exec);
    s_function_t *f = sched_table_get(self->functions, ack->function);
    if (!f || f->users == 0) {
        //  Nothing wants it pinned any more (the registration failed or the DAG went).
        if (ack->error == CB_ERROR__CB_OK)
            s_send_unpin(self, ack->function, (uint32_t)exec);
        return;
    }
    s_pin_t *p = s_pin_find(f, (uint32_t)exec);
    if (ack->error != CB_ERROR__CB_OK) {
        self->stats.pin_failures++;
        //  Rate-limited: a function whose code no executor can load fails again at every
        //  repair round.
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("executor %s could not pin function '%s': %s", id, f->name,
                    ack->error_message);
        if (p)
            s_pin_remove(self, f, (size_t)(p - f->pins));
        for (s_registration_t *r = self->registrations; r; r = r->next)
            for (size_t i = 0; i < sched_dag_size(r->dag->dag); i++)
                if (r->dag->fns[i] == f && r->error == CB_ERROR__CB_OK) {
                    r->error = s_known_error(ack->error);
                    snprintf(r->message, sizeof r->message,
                             "executor %s could not pin function '%s': %s", id, f->name,
                             ack->error_message);
                }
    } else if (p)
        p->state = S_PIN_ACKED;
    else
        s_pin_add(self, f, (uint32_t)exec, S_PIN_ACKED, 0);      //  a late ack: welcome
    s_registrations_check(self, now);
}

static void s_handle_report(sched_scheduler_t *self, const uint8_t *data, size_t len)
{
    StatusReport *report = status_report__unpack(&self->pb, len, data);
    if (!report) {
        self->stats.bad_reports++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("malformed status report of %zu bytes dropped", len);
        return;
    }
    self->stats.reports++;
    int64_t now = cb_clock_mono_ms();
    switch (report->body_case) {
    case STATUS_REPORT__BODY_EXECUTOR:
        s_handle_executor(self, report->executor, now);
        break;
    case STATUS_REPORT__BODY_NODE:
        if (!report->node->node[0]) {
            self->stats.bad_reports++;
            break;
        }
        sched_policy_report_node(self->policy, report->node->node, report->node->cache_address,
                                 report->node->cached_keys, report->node->cached_bytes,
                                 (const char *const *)report->cached_keys,
                                 report->n_cached_keys, now);
        break;
    case STATUS_REPORT__BODY_PIN_ACK:
        s_handle_pin_ack(self, report->pin_ack, now);
        break;
    default:
        self->stats.bad_reports++;
        break;
    }
}

//  ---- maintenance --------------------------------------------------------------------------

static void s_tick(sched_scheduler_t *self, int64_t now)
{
    uint32_t dead[64];
    size_t n;
    do {
        n = sched_policy_sweep(self->policy, now, dead, 64);
        for (size_t d = 0; d < n; d++) {
            //  Its socket goes: messages queued for a dead process would only hold memory
            //  (up to S_EXEC_HWM). Its next report, if any, connects a new one.
            sched_exec_t *e = sched_policy_executor(self->policy, dead[d]);
            if (e->user)
                zmq_close(e->user);
            e->user = NULL;
            cb_warn("executor %s is dead: no report for %d ms", e->id, self->config.dead_ms);
        }
    } while (n == 64);
    //  Registrations first: a registration past its deadline names the executor it waited
    //  for, which the expiry below forgets.
    s_registrations_check(self, now);
    size_t pos = 0;
    void *v;
    while (sched_table_next(self->functions, &pos, NULL, &v)) {
        s_function_t *f = v;
        for (size_t p = f->npins; p-- > 0;)
            if (f->pins[p].state == S_PIN_PENDING && f->pins[p].deadline <= now) {
                cb_warn("executor %s did not acknowledge pinning function '%s' within %d ms",
                        s_exec_id(self, f->pins[p].exec), f->name,
                        self->config.pin_timeout_ms);
                self->stats.pin_failures++;
                s_pin_remove(self, f, p);
            }
    }
    if (!self->loaded && now >= self->next_load_ms) {
        self->next_load_ms = now + S_LOAD_RETRY_MS;
        if (s_load(self, now) == 0)
            cb_info("loaded %zu functions and %zu DAGs from the KVS", self->loaded_functions,
                    self->loaded_dags);
    }
    //  Repair: DAG functions with fewer live pins than wanted (an executor died, or this
    //  scheduler just started and knows only the pins executors reported) get more. Not
    //  before every live executor has had the time to report (dead_ms after start).
    if (self->loaded && now >= self->next_repair_ms &&
        now >= self->started_ms + self->config.dead_ms) {
        self->next_repair_ms = now + S_REPAIR_MS;
        pos = 0;
        while (sched_table_next(self->functions, &pos, NULL, &v)) {
            s_function_t *f = v;
            if (f->users == 0)
                continue;
            size_t added = s_pin_more(self, f, now);
            if (added)
                cb_info("function '%s' had too few live pins: pinning it on %zu more executor%s",
                        f->name, added, added == 1 ? "" : "s");
        }
    }
    anna_arena_reset(self->arena);
}

//  ---- the loop -----------------------------------------------------------------------------

//  Handles up to S_BATCH messages waiting on sock. False when the context is shut down.
static bool s_drain(sched_scheduler_t *self, void *sock,
                    void (*handle)(sched_scheduler_t *, const uint8_t *, size_t))
{
    for (int n = 0; n < S_BATCH; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            int err = errno;
            zmq_msg_close(&msg);
            return err == EAGAIN || err == EINTR;
        }
        handle(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        anna_arena_reset(self->arena);
    }
    return true;
}

static void *s_run(void *arg)
{
    sched_scheduler_t *self = arg;
    while (true) {
        int64_t now = cb_clock_mono_ms();
        if (now >= self->next_tick_ms) {
            s_tick(self, now);
            self->next_tick_ms = now + S_TICK_MS;
        }
        zmq_pollitem_t items[] = {{self->status, 0, ZMQ_POLLIN, 0},
                                  {self->requests, 0, ZMQ_POLLIN, 0}};
        long timeout = (long)(self->next_tick_ms - now);
        if (zmq_poll(items, 2, timeout < 0 ? 0 : timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;                  //  ETERM: the context is shut down
        }
        if ((items[0].revents & ZMQ_POLLIN) && !s_drain(self, self->status, s_handle_report))
            break;
        if ((items[1].revents & ZMQ_POLLIN) &&
            !s_drain(self, self->requests, s_handle_request))
            break;
    }
    return NULL;
}

//  ---- set-up -------------------------------------------------------------------------------

static void *s_bind_pull(void *ctx, const char *ip, int port, int64_t maxmsg, char *err,
                         size_t errlen)
{
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:%d", ip, port);
    return cb_zsock_bind_pull(ctx, endpoint, maxmsg, err, errlen);
}

sched_scheduler_t *sched_scheduler_new(const sched_config_t *config, char *err, size_t errlen)
{
    assert(config && err);
    sched_scheduler_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        snprintf(err, errlen, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        cb_free(self);
        return NULL;
    }
    zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(self->ctx, ZMQ_MAX_SOCKETS, 8192);
    self->policy = sched_policy_new(&(sched_policy_config_t){
        .dead_ms = config->dead_ms,
        .random_pct = config->random_pct,
        .seed = config->seed ? config->seed
                             : (uint64_t)cb_clock_wall_us() ^ ((uint64_t)getpid() << 32),
    });
    self->functions = sched_table_new(s_function_free);
    self->dags = sched_table_new(s_dag_free);
    self->fn_absent = sched_table_new(cb_free);
    self->dag_absent = sched_table_new(cb_free);
    self->arena = anna_arena_new(64 * 1024);
    self->pb = anna_arena_protobuf(self->arena);
    int64_t maxreq = config->max_code_bytes > S_MIN_REQUEST_BYTES ? config->max_code_bytes
                                                                  : S_MIN_REQUEST_BYTES;
    self->requests = s_bind_pull(self->ctx, config->bind,
                                 SCHED_PORT_REQUESTS + config->port_offset,
                                 maxreq + S_REQUEST_SLACK, err, errlen);
    if (self->requests)
        self->status = s_bind_pull(self->ctx, config->bind,
                                   SCHED_PORT_STATUS + config->port_offset, S_STATUS_MAXMSG,
                                   err, errlen);
    if (!self->status) {
        sched_scheduler_destroy(&self);
        return NULL;
    }
    sched_config_address(config, SCHED_PORT_REQUESTS, self->request_address,
                         sizeof self->request_address);
    sched_config_address(config, SCHED_PORT_STATUS, self->status_address,
                         sizeof self->status_address);
    //  A small linger: a reply just queued to a live client still leaves when its socket is
    //  evicted, and a dead client's queue does not hold shutdown for long.
    self->replies = anna_pushcache_new(self->ctx, S_REPLY_SOCKETS, 1000, 100);
    const char *kvs_ip = strcmp(config->bind, "0.0.0.0") == 0 ? NULL : config->bind;
    cb_kvs_config_t kc = {config->kvs, kvs_ip, config->kvs_timeout_ms, 0};
    self->kvs = cb_kvs_new(&kc);
    if (!self->kvs) {
        snprintf(err, errlen, "cannot create the KVS client for %s: %s", config->kvs,
                 strerror(errno));
        sched_scheduler_destroy(&self);
        return NULL;
    }
    int64_t now = cb_clock_mono_ms();
    self->started_ms = now;
    self->next_load_ms = now + S_LOAD_RETRY_MS;
    if (s_load(self, now) != 0)
        cb_warn("cannot load functions and DAGs from the KVS at %s yet: %s", config->kvs,
                self->load_error);
    anna_arena_reset(self->arena);
    return self;
}

int sched_scheduler_start(sched_scheduler_t *self)
{
    assert(self && !self->started);
    int rc = pthread_create(&self->tid, NULL, s_run, self);
    if (rc)
        return -rc;
    self->started = true;
    return 0;
}

void sched_scheduler_stop(sched_scheduler_t *self)
{
    assert(self);
    if (self->joined)
        return;
    zmq_ctx_shutdown(self->ctx);
    if (self->started)
        pthread_join(self->tid, NULL);
    self->joined = true;
}

void sched_scheduler_destroy(sched_scheduler_t **self_p)
{
    assert(self_p);
    sched_scheduler_t *self = *self_p;
    if (!self)
        return;
    sched_scheduler_stop(self);
    while (self->registrations) {
        s_registration_t *reg = self->registrations;
        s_dag_free(reg->dag);
        s_registration_unlink(self, reg);
    }
    if (self->policy)
        for (size_t i = 0; i < sched_policy_count(self->policy); i++) {
            sched_exec_t *e = sched_policy_executor(self->policy, (uint32_t)i);
            if (e->user)
                zmq_close(e->user);
            e->user = NULL;
        }
    if (self->requests)
        zmq_close(self->requests);
    if (self->status)
        zmq_close(self->status);
    anna_pushcache_destroy(&self->replies);
    cb_kvs_destroy(&self->kvs);
    sched_table_destroy(&self->dags);
    sched_table_destroy(&self->functions);
    sched_table_destroy(&self->fn_absent);
    sched_table_destroy(&self->dag_absent);
    sched_policy_destroy(&self->policy);
    anna_arena_destroy(&self->arena);
    cb_free(self->common.data);
    cb_free(self->part.data);
    zmq_ctx_term(self->ctx);
    cb_free(self);
    *self_p = NULL;
}

const char *sched_scheduler_request_address(const sched_scheduler_t *self)
{
    assert(self);
    return self->request_address;
}

const char *sched_scheduler_status_address(const sched_scheduler_t *self)
{
    assert(self);
    return self->status_address;
}

bool sched_scheduler_loaded(const sched_scheduler_t *self, size_t *functions, size_t *dags,
                            char *err, size_t errlen)
{
    assert(self && functions && dags);
    *functions = self->loaded_functions;
    *dags = self->loaded_dags;
    if (err && errlen)
        snprintf(err, errlen, "%s", self->load_error);
    return self->loaded;
}

void sched_scheduler_stats(const sched_scheduler_t *self, sched_stats_t *out)
{
    assert(self && out && (self->joined || !self->started));
    *out = self->stats;
}

void sched_scheduler_report(const sched_scheduler_t *self, FILE *out)
{
    sched_stats_t s;
    sched_scheduler_stats(self, &s);
    fprintf(out,
            "cb-scheduler: requests=%" PRIu64 " malformed=%" PRIu64 " bad_address=%" PRIu64
            " replies=%" PRIu64 " replies_dropped=%" PRIu64 " errors=%" PRIu64
            " calls=%" PRIu64 " dag_calls=%" PRIu64 " schedules=%" PRIu64 " reports=%" PRIu64
            " bad_reports=%" PRIu64 " pins=%" PRIu64 " pin_acks=%" PRIu64
            " pin_failures=%" PRIu64 " unpins=%" PRIu64 " exec_dropped=%" PRIu64
            " kvs_errors=%" PRIu64 "\n",
            s.requests, s.malformed, s.bad_address, s.replies, s.replies_dropped, s.errors,
            s.calls, s.dag_calls, s.schedules, s.reports, s.bad_reports, s.pins, s.pin_acks,
            s.pin_failures, s.unpins, s.exec_dropped, s.kvs_errors);
    fflush(out);
}
