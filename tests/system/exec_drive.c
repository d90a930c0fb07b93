//  tests/system/exec_drive.c: drives real cb-executor processes the way the scheduler and a
//  client would, with raw ZeroMQ and cloudburst.pb-c.h, against a real anna-server holding
//  the functions (uploaded here as FunctionBlobs with client/kvs.h). Starts nothing itself:
//  t_exec_basic.sh starts the KVS and three executors (A and B plain, T with trusted keys).
//  Usage:
//    exec_drive pubkey SEED
//        prints the hex Ed25519 public key of the test key with that seed (1..255)
//    exec_drive run KVS_ROUTING SCHEDULER_ADDR EXAMPLES_DIR EXEC_A EXEC_B EXEC_T
//        binds SCHEDULER_ADDR (the executors report there) and runs every check
//  Prints one "ok: ..." line per check; on the first failure "FAIL: ..." and exit 1.
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "client/kvs.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/value.h"

#define S_WAIT_MS 10000

static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "FAIL: ");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            s_fail(__VA_ARGS__);                                                                   \
    } while (0)

static void s_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("ok: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

//  --------------------------------------------------------------------------------------
//  The test's sockets and KVS client

typedef struct {
    char address[128];
    void *sock;
} s_push_t;

static void *s_ctx;
static void *s_replies; //  PULL: our response address
static char s_reply_to[128];
static void *s_status; //  PULL bound at the scheduler's report address
static s_push_t s_pushes[32];
static int s_npushes;
static cb_kvs_t *s_kvs;
static const char *s_examples;
static const char *s_exec_a, *s_exec_b, *s_exec_t;
static unsigned s_next_id;
static Reply *s_stash[64]; //  replies that came before someone waited for them
static int s_nstash;
static uint32_t s_abi = 1; //  abi_version of the blobs uploaded

static void *s_push(const char *address)
{
    for (int i = 0; i < s_npushes; i++)
        if (!strcmp(s_pushes[i].address, address))
            return s_pushes[i].sock;
    CHECK(s_npushes < 32, "too many destinations");
    s_push_t *p = &s_pushes[s_npushes++];
    snprintf(p->address, sizeof p->address, "%s", address);
    p->sock = zmq_socket(s_ctx, ZMQ_PUSH);
    int linger = 1000;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    CHECK(zmq_connect(p->sock, address) == 0, "connect %s: %s", address, zmq_strerror(errno));
    return p->sock;
}

static void s_send_raw(const char *address, const void *data, size_t len)
{
    CHECK(zmq_send(s_push(address), data, len, 0) >= 0, "send: %s", zmq_strerror(errno));
}

static void s_send(const char *address, ExecMessage *msg)
{
    size_t len = exec_message__get_packed_size(msg);
    uint8_t *buf = cb_malloc(len ? len : 1);
    exec_message__pack(msg, buf);
    s_send_raw(address, buf, len);
    cb_free(buf);
}

static char *s_new_id(char *buf, size_t len)
{
    snprintf(buf, len, "req-%u-%d", ++s_next_id, (int)getpid());
    return buf;
}

//  The Reply for request id, waiting up to timeout_ms. NULL on timeout. Caller owns it.
static Reply *s_wait_reply(const char *id, int timeout_ms)
{
    for (int i = 0; i < s_nstash; i++) {
        if (!strcmp(s_stash[i]->request_id, id)) {
            Reply *r = s_stash[i];
            s_stash[i] = s_stash[--s_nstash];
            return r;
        }
    }
    int64_t deadline = cb_clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cb_clock_mono_ms();
        zmq_pollitem_t item = {s_replies, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, (long)left) <= 0)
            return NULL;
        zmq_msg_t m;
        zmq_msg_init(&m);
        CHECK(zmq_msg_recv(&m, s_replies, 0) >= 0, "recv");
        Reply *r = reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        zmq_msg_close(&m);
        CHECK(r, "an undecodable Reply");
        if (!strcmp(r->request_id, id))
            return r;
        CHECK(s_nstash < 64, "too many stray replies");
        s_stash[s_nstash++] = r;
    }
}

//  Fails if any reply arrives within ms.
static void s_expect_no_reply(int ms, const char *what)
{
    zmq_pollitem_t item = {s_replies, 0, ZMQ_POLLIN, 0};
    CHECK(s_nstash == 0 && zmq_poll(&item, 1, ms) == 0, "%s: an unexpected reply", what);
}

//  The next StatusReport, up to timeout_ms. NULL on timeout. Caller owns it.
static StatusReport *s_wait_status(int timeout_ms)
{
    zmq_pollitem_t item = {s_status, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    CHECK(zmq_msg_recv(&m, s_status, 0) >= 0, "recv status");
    StatusReport *r = status_report__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    CHECK(r, "an undecodable StatusReport");
    return r;
}

//  The next ExecutorInfo of the executor at address for which pinned has (or lacks) name.
static ExecutorInfo *s_wait_info(const char *address, const char *name, bool pinned)
{
    int64_t deadline = cb_clock_mono_ms() + S_WAIT_MS;
    while (cb_clock_mono_ms() < deadline) {
        StatusReport *r = s_wait_status(500);
        if (!r)
            continue;
        if (r->body_case == STATUS_REPORT__BODY_EXECUTOR &&
            !strcmp(r->executor->address, address)) {
            bool has = false;
            for (size_t i = 0; i < r->executor->n_pinned; i++)
                has |= !strcmp(r->executor->pinned[i], name);
            if (!name || has == pinned) {
                ExecutorInfo *info = r->executor;
                r->executor = NULL;
                r->body_case = STATUS_REPORT__BODY__NOT_SET;
                status_report__free_unpacked(r, NULL);
                return info;
            }
        }
        status_report__free_unpacked(r, NULL);
    }
    s_fail("no report from %s (with '%s' %s)", address, name ? name : "",
           pinned ? "pinned" : "unpinned");
}

static PinAck *s_wait_pin_ack(const char *function)
{
    int64_t deadline = cb_clock_mono_ms() + S_WAIT_MS;
    while (cb_clock_mono_ms() < deadline) {
        StatusReport *r = s_wait_status(500);
        if (!r)
            continue;
        if (r->body_case == STATUS_REPORT__BODY_PIN_ACK &&
            !strcmp(r->pin_ack->function, function)) {
            PinAck *ack = r->pin_ack;
            r->pin_ack = NULL;
            r->body_case = STATUS_REPORT__BODY__NOT_SET;
            status_report__free_unpacked(r, NULL);
            return ack;
        }
        status_report__free_unpacked(r, NULL);
    }
    s_fail("no PinAck for '%s'", function);
}

//  --------------------------------------------------------------------------------------
//  Values and uploads

static void s_int_value(int64_t v, ProtobufCBinaryData *out)
{
    cb_value_t value;
    cb_value_set_int(&value, v);
    cb_bytes_t bytes = {0};
    cb_value_encode(&value, &bytes);
    out->data = bytes.data;
    out->len = bytes.len;
}

static void s_str_value(const char *s, ProtobufCBinaryData *out)
{
    cb_value_t value;
    cb_value_set_bytes(&value, CB_VALUE_STRING, s, strlen(s));
    cb_bytes_t bytes = {0};
    cb_value_encode(&value, &bytes);
    cb_value_fini(&value);
    out->data = bytes.data;
    out->len = bytes.len;
}

//  Decodes a result; fails unless it is an int.
static int64_t s_as_int(const ProtobufCBinaryData *result, const char *what)
{
    cb_value_t v;
    CHECK(cb_value_decode(result->data, result->len, &v) == 0, "%s: undecodable result", what);
    CHECK(v.type == CB_VALUE_INT64, "%s: result of type %s", what, cb_value_type_name(v.type));
    int64_t x = v.i64;
    cb_value_fini(&v);
    return x;
}

static uint8_t *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f, "open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = cb_malloc(n > 0 ? (size_t)n : 1);
    CHECK(fread(data, 1, (size_t)n, f) == (size_t)n, "read %s", path);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void s_keypair(int seed, uint8_t *pk, uint8_t *sk)
{
    uint8_t s[crypto_sign_SEEDBYTES] = {0};
    s[0] = (uint8_t)seed;
    s[1] = 0xcb;
    crypto_sign_seed_keypair(pk, sk, s);
}

//  Stores code as function name; signed by the key of seed (0: unsigned).
static void s_upload_code(const char *name, const uint8_t *code, size_t len, int seed)
{
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = (char *)name;
    blob.code.data = (uint8_t *)code;
    blob.code.len = len;
    blob.abi_version = s_abi;
    blob.version = (uint64_t)cb_clock_wall_us();
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t sig[crypto_sign_BYTES];
    if (seed) {
        s_keypair(seed, pk, sk);
        size_t n = strlen(name);
        uint8_t *m = cb_malloc(n + 1 + len);
        memcpy(m, name, n + 1);
        memcpy(m + n + 1, code, len);
        crypto_sign_detached(sig, NULL, m, n + 1 + len, sk);
        cb_free(m);
        blob.signature.data = sig;
        blob.signature.len = sizeof sig;
        blob.public_key.data = pk;
        blob.public_key.len = sizeof pk;
    }
    size_t packed = function_blob__get_packed_size(&blob);
    uint8_t *buf = cb_malloc(packed);
    function_blob__pack(&blob, buf);
    char key[256];
    snprintf(key, sizeof key, "funcs/%s", name);
    CHECK(cb_kvs_put_lww(s_kvs, key, buf, packed) == 0, "upload %s: %s", name,
          cb_kvs_last_error(s_kvs));
    cb_free(buf);
}

//  Uploads examples/<file>.so as function name.
static void s_upload(const char *name, const char *file, int seed)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", s_examples, file);
    size_t len;
    uint8_t *code = s_read_file(path, &len);
    s_upload_code(name, code, len, seed);
    cb_free(code);
}

static void s_put_value(const char *key, const ProtobufCBinaryData *v)
{
    CHECK(cb_kvs_put_lww(s_kvs, key, v->data, v->len) == 0, "put %s", key);
}

//  --------------------------------------------------------------------------------------
//  Calls

typedef struct {
    const char *ref;           //  a KVS key, or NULL for a value
    ProtobufCBinaryData value; //  owned by the caller of s_call
} s_arg_t;

//  Sends a one-shot call of function to executor; returns the request id in id.
static void s_call_async(const char *executor, const char *function, const s_arg_t *args, size_t n,
                         const char *output_key, uint32_t timeout_ms, char *id, size_t idlen)
{
    s_new_id(id, idlen);
    Arg *pargs = cb_calloc(n ? n : 1, sizeof *pargs);
    Arg **pp = cb_calloc(n ? n : 1, sizeof *pp);
    for (size_t i = 0; i < n; i++) {
        arg__init(&pargs[i]);
        if (args[i].ref)
            pargs[i].ref = (char *)args[i].ref;
        else
            pargs[i].value = args[i].value;
        pp[i] = &pargs[i];
    }
    FunctionCall call = FUNCTION_CALL__INIT;
    call.function = (char *)function;
    call.args = pp;
    call.n_args = n;
    call.output_key = (char *)(output_key ? output_key : "");
    call.timeout_ms = timeout_ms;
    Invocation inv = INVOCATION__INIT;
    inv.id = id;
    inv.call = &call;
    inv.response_address = s_reply_to;
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_CALL;
    msg.call = &inv;
    s_send(executor, &msg);
    cb_free(pargs);
    cb_free(pp);
}

static Reply *s_call(const char *executor, const char *function, const s_arg_t *args, size_t n,
                     uint32_t timeout_ms)
{
    char id[64];
    s_call_async(executor, function, args, n, NULL, timeout_ms, id, sizeof id);
    Reply *r = s_wait_reply(id, S_WAIT_MS + (int)timeout_ms);
    CHECK(r, "no reply to a call of '%s' within %d ms", function, S_WAIT_MS + (int)timeout_ms);
    return r;
}

static int64_t s_call_int(const char *executor, const char *function, int64_t x)
{
    s_arg_t arg = {NULL, {0, NULL}};
    s_int_value(x, &arg.value);
    Reply *r = s_call(executor, function, &arg, 1, 0);
    cb_free(arg.value.data);
    CHECK(r->error == CB_ERROR__CB_OK, "%s(%" PRId64 "): error %d: %s", function, x, r->error,
          r->error_message);
    int64_t v = s_as_int(&r->result, function);
    reply__free_unpacked(r, NULL);
    return v;
}

//  Expects a call to fail with code and a message containing text.
static void s_expect_error(const char *executor, const char *function, const s_arg_t *args,
                           size_t n, uint32_t timeout_ms, int code, const char *text,
                           const char *what)
{
    int64_t start = cb_clock_mono_ms();
    Reply *r = s_call(executor, function, args, n, timeout_ms);
    CHECK(r->error == (CbError)code && strstr(r->error_message, text),
          "%s: want error %d with '%s', got %d '%s'", what, code, text, r->error, r->error_message);
    s_ok("%s: %s (%" PRId64 " ms)", what, r->error_message, cb_clock_mono_ms() - start);
    reply__free_unpacked(r, NULL);
}

//  --------------------------------------------------------------------------------------
//  DAGs

typedef struct {
    const char *from, *to;
} s_edge_t;

typedef struct {
    const char *function;
    const char *where; //  executor address
    int64_t arg;       //  one fixed int argument, when has_arg
    bool has_arg;
} s_place_t;

//  Sends the DagSchedule of target (one of places) to its executor.
static void s_schedule(const char *id, const s_place_t *places, size_t n, const s_edge_t *edges,
                       size_t n_edges, const char *target, const char *output_key,
                       uint32_t timeout_ms)
{
    DagSpec spec = DAG_SPEC__INIT;
    spec.name = "testdag";
    char *fns[8];
    DagEdge e[8], *ep[8];
    for (size_t i = 0; i < n; i++)
        fns[i] = (char *)places[i].function;
    spec.functions = fns;
    spec.n_functions = n;
    for (size_t i = 0; i < n_edges; i++) {
        dag_edge__init(&e[i]);
        e[i].from = (char *)edges[i].from;
        e[i].to = (char *)edges[i].to;
        ep[i] = &e[i];
    }
    spec.edges = ep;
    spec.n_edges = n_edges;
    DagSchedule__LocationsEntry loc[8], *locp[8];
    DagSchedule__ArgsEntry args[8], *argsp[8];
    ArgList lists[8];
    Arg arg[8], *argp[8];
    size_t n_args = 0;
    const char *where = NULL;
    bool begin = true;
    for (size_t i = 0; i < n_edges; i++)
        if (!strcmp(edges[i].to, target))
            begin = false;
    for (size_t i = 0; i < n; i++) {
        dag_schedule__locations_entry__init(&loc[i]);
        loc[i].key = (char *)places[i].function;
        loc[i].value = (char *)places[i].where;
        locp[i] = &loc[i];
        if (!strcmp(places[i].function, target))
            where = places[i].where;
        if (places[i].has_arg) {
            arg__init(&arg[n_args]);
            s_int_value(places[i].arg, &arg[n_args].value);
            argp[n_args] = &arg[n_args];
            arg_list__init(&lists[n_args]);
            lists[n_args].args = &argp[n_args];
            lists[n_args].n_args = 1;
            dag_schedule__args_entry__init(&args[n_args]);
            args[n_args].key = (char *)places[i].function;
            args[n_args].value = &lists[n_args];
            argsp[n_args] = &args[n_args];
            n_args++;
        }
    }
    CHECK(where, "no place for %s", target);
    DagSchedule s = DAG_SCHEDULE__INIT;
    s.id = (char *)id;
    s.dag = &spec;
    s.locations = locp;
    s.n_locations = n;
    s.args = argsp;
    s.n_args = n_args;
    s.target_function = (char *)target;
    s.response_address = s_reply_to;
    s.output_key = (char *)(output_key ? output_key : "");
    s.timeout_ms = timeout_ms;
    s.begin = begin;
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_SCHEDULE;
    msg.schedule = &s;
    s_send(where, &msg);
    for (size_t i = 0; i < n_args; i++)
        cb_free(arg[i].value.data);
}

static void s_schedule_all(const char *id, const s_place_t *places, size_t n, const s_edge_t *edges,
                           size_t n_edges, const char *output_key, uint32_t timeout_ms)
{
    for (size_t i = n; i-- > 0;) //  sinks first: their triggers must wait for nothing
        s_schedule(id, places, n, edges, n_edges, places[i].function, output_key, timeout_ms);
}

//  Plays an upstream executor: sends target a trigger from source.
static void s_trigger(const char *executor, const char *id, const char *source, const char *target,
                      const ProtobufCBinaryData *result, const char *log)
{
    DagTrigger t = DAG_TRIGGER__INIT;
    t.id = (char *)id;
    t.source = (char *)source;
    t.target_function = (char *)target;
    t.result = *result;
    char *logs[1] = {(char *)log};
    if (log) {
        t.logs = logs;
        t.n_logs = 1;
    }
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_TRIGGER;
    msg.trigger = &t;
    s_send(executor, &msg);
}

static Reply *s_dag_reply(const char *id, const char *what)
{
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    CHECK(r, "%s: no reply", what);
    return r;
}

static int64_t s_dag_int(const char *id, const char *what)
{
    Reply *r = s_dag_reply(id, what);
    CHECK(r->error == CB_ERROR__CB_OK, "%s: error %d: %s", what, r->error, r->error_message);
    int64_t v = s_as_int(&r->result, what);
    reply__free_unpacked(r, NULL);
    return v;
}

//  --------------------------------------------------------------------------------------
//  The checks

static void s_pin(const char *executor, const char *function, int want)
{
    PinFunction pin = PIN_FUNCTION__INIT;
    pin.function = (char *)function;
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_PIN;
    msg.pin = &pin;
    s_send(executor, &msg);
    PinAck *ack = s_wait_pin_ack(function);
    CHECK(ack->error == (CbError)want, "pin %s: error %d (%s), want %d", function, ack->error,
          ack->error_message, want);
    CHECK(!strcmp(ack->executor, executor), "pin ack from %s", ack->executor);
    pin_ack__free_unpacked(ack, NULL);
}

static void t_reports(void)
{
    const char *all[] = {s_exec_a, s_exec_b, s_exec_t};
    for (int i = 0; i < 3; i++) {
        ExecutorInfo *info = s_wait_info(all[i], NULL, false);
        CHECK(info->incarnation != 0 && *info->id && *info->node, "executor info fields");
        s_ok("report from %s: id %s, node %s, incarnation %u", info->address, info->id, info->node,
             info->incarnation);
        executor_info__free_unpacked(info, NULL);
    }
}

static void t_pin(void)
{
    s_pin(s_exec_a, "incr", CB_ERROR__CB_OK);
    ExecutorInfo *info = s_wait_info(s_exec_a, "incr", true);
    executor_info__free_unpacked(info, NULL);
    s_ok("pin incr on A: acked, reported as pinned");
    s_pin(s_exec_a, "nosuch", CB_ERROR__CB_NO_SUCH_FUNCTION);
    s_ok("pin of a missing function: CB_NO_SUCH_FUNCTION");
}

static void t_oneshot(void)
{
    CHECK(s_call_int(s_exec_a, "incr", 3) == 4, "incr(3)");
    s_ok("one-shot incr(3) = 4");
    CHECK(s_call_int(s_exec_b, "square", 7) == 49, "square(7)");
    s_ok("one-shot square(7) = 49 (loaded on demand)");
}

static void t_dag_two_executors(void)
{
    char id[64];
    s_place_t places[] = {{"incr", s_exec_a, 3, true}, {"square", s_exec_b, 0, false}};
    s_edge_t edges[] = {{"incr", "square"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 2, edges, 1, NULL, 0);
    CHECK(s_dag_int(id, "incr->square") == 16, "incr->square(3) != 16");
    s_ok("DAG incr -> square across two executors: 16 for 3");
    //  The trigger reaches B before B's schedule: it waits for it.
    s_schedule(s_new_id(id, sizeof id), places, 2, edges, 1, "incr", NULL, 0);
    usleep(300 * 1000);
    s_schedule(id, places, 2, edges, 1, "square", NULL, 0);
    CHECK(s_dag_int(id, "trigger first") == 16, "trigger before schedule");
    s_ok("DAG: a trigger that arrives before its schedule waits for it");
}

static void t_dag_order(void)
{
    //  sub(incr(10), square(3)) = 11 - 9, and with the edges the other way round, 9 - 11.
    char id[64];
    s_place_t places[] = {
        {"incr", s_exec_a, 10, true}, {"square", s_exec_b, 3, true}, {"sub", s_exec_a, 0, false}};
    s_edge_t edges[] = {{"incr", "sub"}, {"square", "sub"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 3, edges, 2, NULL, 0);
    CHECK(s_dag_int(id, "sub order") == 2, "sub(incr, square) != 2");
    s_edge_t swapped[] = {{"square", "sub"}, {"incr", "sub"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 3, swapped, 2, NULL, 0);
    CHECK(s_dag_int(id, "sub order swapped") == -2, "sub(square, incr) != -2");
    s_ok("DAG: two upstreams reach sub in edge order (2, then -2 with the edges swapped)");

    //  Deterministic arrival order: we play both upstream executors and send the second
    //  edge's trigger first.
    s_place_t fake[] = {
        {"x", s_exec_a, 0, false}, {"y", s_exec_a, 0, false}, {"sub", s_exec_b, 0, false}};
    s_edge_t xy[] = {{"x", "sub"}, {"y", "sub"}};
    s_schedule(s_new_id(id, sizeof id), fake, 3, xy, 2, "sub", NULL, 0);
    ProtobufCBinaryData v100, v1;
    s_int_value(100, &v100);
    s_int_value(1, &v1);
    s_trigger(s_exec_b, id, "y", "sub", &v1, "y ran");
    usleep(100 * 1000);
    //  A duplicate of y's trigger, and one from a function with no edge to sub: ignored.
    s_trigger(s_exec_b, id, "y", "sub", &v100, NULL);
    s_trigger(s_exec_b, id, "z", "sub", &v100, NULL);
    s_trigger(s_exec_b, id, "x", "sub", &v100, "x ran");
    Reply *r = s_dag_reply(id, "arrival order");
    CHECK(r->error == CB_ERROR__CB_OK && s_as_int(&r->result, "sub") == 99,
          "sub(x=100, y=1) with y first: error %d (%s)", r->error, r->error_message);
    CHECK(r->n_logs == 2 && !strcmp(r->logs[0], "x ran") && !strcmp(r->logs[1], "y ran"),
          "upstream logs in edge order");
    reply__free_unpacked(r, NULL);
    //  A late duplicate after the call finished does not run anything.
    s_trigger(s_exec_b, id, "x", "sub", &v100, NULL);
    s_expect_no_reply(300, "a trigger for a finished call");
    cb_free(v100.data);
    cb_free(v1.data);
    s_ok("DAG: inputs in edge order whatever the arrival order; duplicate and stray triggers "
         "ignored");
}

static void t_dag_failures(void)
{
    char id[64];
    //  A failing source: the client hears CB_FUNCTION_FAILED once; square never answers.
    s_place_t places[] = {{"fail", s_exec_a, 0, false}, {"square", s_exec_b, 0, false}};
    s_edge_t edges[] = {{"fail", "square"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 2, edges, 1, NULL, 0);
    Reply *r = s_dag_reply(id, "fail->square");
    CHECK(r->error == CB_ERROR__CB_FUNCTION_FAILED, "fail->square: error %d (%s)", r->error,
          r->error_message);
    reply__free_unpacked(r, NULL);
    s_expect_no_reply(500, "no second answer after a failure upstream");
    s_ok("DAG: a failing function answers CB_FUNCTION_FAILED once; downstream is cancelled");

    //  An upstream that never answers: the sink's schedule expires with CB_TIMEOUT.
    s_place_t lost[] = {{"ghost", "tcp://127.0.0.1:1", 0, false}, {"square", s_exec_b, 0, false}};
    s_edge_t ghost[] = {{"ghost", "square"}};
    int64_t start = cb_clock_mono_ms();
    s_schedule(s_new_id(id, sizeof id), lost, 2, ghost, 1, "square", NULL, 200);
    r = s_dag_reply(id, "lost upstream");
    CHECK(r->error == CB_ERROR__CB_TIMEOUT, "lost upstream: error %d (%s)", r->error,
          r->error_message);
    s_ok("DAG: inputs that never come end in CB_TIMEOUT after %" PRId64 " ms: %s",
         cb_clock_mono_ms() - start, r->error_message);
    reply__free_unpacked(r, NULL);

    //  A DAG of one function.
    s_place_t odd[] = {{"incr", s_exec_a, 1, true}};
    s_schedule(s_new_id(id, sizeof id), odd, 1, NULL, 0, "incr", NULL, 0);
    CHECK(s_dag_int(id, "one-function dag") == 2, "a DAG of one function");
    s_ok("DAG of one function (source and sink)");
}

static void t_dag_logs(void)
{
    char id[64];
    s_place_t places[] = {{"echo_log", s_exec_b, 5, true}, {"incr", s_exec_a, 0, false}};
    s_edge_t edges[] = {{"echo_log", "incr"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 2, edges, 1, NULL, 0);
    Reply *r = s_dag_reply(id, "echo_log->incr");
    CHECK(r->error == CB_ERROR__CB_OK && s_as_int(&r->result, "incr") == 6, "echo_log->incr");
    CHECK(r->n_logs == 2 && strstr(r->logs[0], "echo_log got 1 arguments") &&
              strstr(r->logs[1], "arg 1: int 5"),
          "the source's logs reach the client with the sink's reply (%zu lines)", r->n_logs);
    reply__free_unpacked(r, NULL);
    s_ok("DAG: log lines travel with the triggers to the sink's reply");
}

static void t_failures(void)
{
    s_expect_error(s_exec_a, "crash", NULL, 0, 0, CB_ERROR__CB_FUNCTION_CRASHED,
                   "function 'crash' crashed: Segmentation fault (SIGSEGV)", "crash");
    CHECK(s_call_int(s_exec_a, "incr", 41) == 42, "incr after a crash");
    s_ok("the executor answers the next call after a crash");
    ExecutorInfo *info = s_wait_info(s_exec_a, "incr", true);
    executor_info__free_unpacked(info, NULL);
    s_ok("a pinned function stays pinned (reloaded) in the new runner");

    int64_t start = cb_clock_mono_ms();
    s_expect_error(s_exec_a, "spin", NULL, 0, 300, CB_ERROR__CB_TIMEOUT,
                   "function 'spin' ran past its 300 ms timeout", "spin with a 300 ms timeout");
    int64_t took = cb_clock_mono_ms() - start;
    CHECK(took < 3000, "the timeout took %" PRId64 " ms", took);
    CHECK(s_call_int(s_exec_a, "incr", 1) == 2, "incr after a timeout");
    s_ok("the executor answers the next call after a timeout");

    //  While a function runs, calls queue up (and get answered after it).
    char spin_id[64], incr_id[64];
    s_arg_t arg = {NULL, {0, NULL}};
    s_int_value(5, &arg.value);
    s_call_async(s_exec_a, "spin", NULL, 0, NULL, 500, spin_id, sizeof spin_id);
    s_call_async(s_exec_a, "incr", &arg, 1, NULL, 0, incr_id, sizeof incr_id);
    Reply *r = s_wait_reply(incr_id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_OK && s_as_int(&r->result, "incr") == 6,
          "a call queued behind a spinning one");
    reply__free_unpacked(r, NULL);
    r = s_wait_reply(spin_id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_TIMEOUT, "spin behind");
    reply__free_unpacked(r, NULL);
    cb_free(arg.value.data);
    s_ok("a call queued behind a spinning function runs after the spinner is killed");

    //  A DAG whose second function lands on a busy executor: its schedule and trigger are
    //  taken while the runner spins, and it runs right after.
    char id[64];
    s_call_async(s_exec_b, "spin", NULL, 0, NULL, 800, spin_id, sizeof spin_id);
    s_place_t places[] = {{"incr", s_exec_a, 3, true}, {"square", s_exec_b, 0, false}};
    s_edge_t edges[] = {{"incr", "square"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 2, edges, 1, NULL, 0);
    CHECK(s_dag_int(id, "dag behind spin") == 16, "DAG on a busy executor");
    r = s_wait_reply(spin_id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_TIMEOUT, "spin on B");
    reply__free_unpacked(r, NULL);
    s_ok("schedules and triggers reach a busy executor; the DAG completes after the spinner");

    s_expect_error(s_exec_b, "fail", NULL, 0, 0, CB_ERROR__CB_FUNCTION_FAILED,
                   "function 'fail' failed: this function always fails", "fail");
    s_arg_t why = {NULL, {0, NULL}};
    s_str_value("custom words", &why.value);
    s_expect_error(s_exec_b, "fail", &why, 1, 0, CB_ERROR__CB_FUNCTION_FAILED, "custom words",
                   "fail with the function's own message");
    cb_free(why.value.data);
    s_expect_error(s_exec_b, "nosuch", NULL, 0, 0, CB_ERROR__CB_NO_SUCH_FUNCTION,
                   "function 'nosuch' does not exist", "missing function");
    s_expect_error(s_exec_b, "garbage", NULL, 0, 0, CB_ERROR__CB_LOAD_FAILED,
                   "function 'garbage' could not be loaded", "garbage .so");
    s_expect_error(s_exec_b, "noabi", NULL, 0, 0, CB_ERROR__CB_LOAD_FAILED, "cb_fn_abi_version",
                   "a .so without cb_fn_abi_version");
    s_expect_error(s_exec_b, "incr_abi2", NULL, 0, 0, CB_ERROR__CB_LOAD_FAILED, "ABI version 2",
                   "a blob for another ABI version");
    s_arg_t bad = {NULL, {0, NULL}};
    s_str_value("three", &bad.value);
    s_expect_error(s_exec_b, "incr", &bad, 1, 0, CB_ERROR__CB_FUNCTION_FAILED, "incr takes one int",
                   "incr of a string");
    cb_free(bad.value.data);
}

static void t_trust(void)
{
    s_arg_t arg = {NULL, {0, NULL}};
    s_int_value(3, &arg.value);
    s_expect_error(s_exec_t, "incr", &arg, 1, 0, CB_ERROR__CB_UNTRUSTED, "is not signed",
                   "unsigned code with trusted keys");
    s_expect_error(s_exec_t, "incr_other", &arg, 1, 0, CB_ERROR__CB_UNTRUSTED, "does not trust",
                   "code signed by an untrusted key");
    s_expect_error(s_exec_t, "incr_forged", &arg, 1, 0, CB_ERROR__CB_UNTRUSTED, "does not verify",
                   "code whose signature is for another name");
    CHECK(s_call_int(s_exec_t, "incr_signed", 3) == 4, "signed incr");
    s_ok("code signed with the trusted key runs");
    s_pin(s_exec_t, "incr", CB_ERROR__CB_UNTRUSTED);
    s_ok("pin of unsigned code with trusted keys: CB_UNTRUSTED");
    cb_free(arg.value.data);
}

static void t_refs_and_outputs(void)
{
    ProtobufCBinaryData v;
    s_int_value(41, &v);
    s_put_value("exec/x41", &v);
    cb_free(v.data);
    s_arg_t ref = {"exec/x41", {0, NULL}};
    Reply *r = s_call(s_exec_b, "incr", &ref, 1, 0);
    CHECK(r->error == CB_ERROR__CB_OK && s_as_int(&r->result, "incr") == 42,
          "incr(ref) error %d (%s)", r->error, r->error_message);
    reply__free_unpacked(r, NULL);
    s_ok("a ref argument is read from the KVS: incr(ref exec/x41) = 42");
    //  Raw bytes in the KVS read as BYTES.
    CHECK(cb_kvs_put_lww(s_kvs, "exec/raw", "abc", 3) == 0, "put raw");
    s_arg_t raw = {"exec/raw", {0, NULL}};
    r = s_call(s_exec_b, "echo_log", &raw, 1, 0);
    cb_value_t rv;
    CHECK(r->error == CB_ERROR__CB_OK, "raw bytes ref: %s", r->error_message);
    CHECK(cb_value_decode(r->result.data, r->result.len, &rv) == 0 && rv.type == CB_VALUE_BYTES &&
              rv.bytes.len == 3 && !memcmp(rv.bytes.data, "abc", 3),
          "raw bytes ref: echoed as BYTES");
    CHECK(r->n_logs == 2 && !strcmp(r->logs[1], "arg 1: type 0, 3 bytes"), "raw bytes log");
    cb_value_fini(&rv);
    reply__free_unpacked(r, NULL);
    s_ok("a ref to raw bytes (not a cb value) reads as BYTES");

    s_arg_t two[2] = {{NULL, {0, NULL}}, {"exec/nokey", {0, NULL}}};
    s_int_value(1, &two[0].value);
    s_expect_error(s_exec_b, "add", two, 2, 0, CB_ERROR__CB_INVALID,
                   "argument 2: key 'exec/nokey' does not exist", "missing ref");
    cb_free(two[0].value.data);

    //  Output keys: the result is written there, no reply comes.
    char id[64];
    s_arg_t five = {NULL, {0, NULL}};
    s_int_value(5, &five.value);
    s_call_async(s_exec_a, "incr", &five, 1, "exec/out1", 0, id, sizeof id);
    s_call_async(s_exec_a, "fail", NULL, 0, "exec/out2", 0, id, sizeof id);
    s_call_async(s_exec_a, "crash", NULL, 0, "exec/out3", 0, id, sizeof id);
    cb_free(five.value.data);
    const char *keys[] = {"exec/out1", "exec/out2", "exec/out3"};
    for (int k = 0; k < 3; k++) {
        int64_t deadline = cb_clock_mono_ms() + S_WAIT_MS;
        lat_t got;
        int rc;
        while ((rc = cb_kvs_get(s_kvs, keys[k], &got)) == -ENOENT && cb_clock_mono_ms() < deadline)
            usleep(20 * 1000);
        CHECK(rc == 0, "%s never written", keys[k]);
        cb_value_t v2;
        CHECK(cb_value_decode(got.u.lww.value.data, got.u.lww.value.len, &v2) == 0, "decode");
        if (k == 0)
            CHECK(v2.type == CB_VALUE_INT64 && v2.i64 == 6, "exec/out1 holds %s",
                  cb_value_format(&v2));
        else
            CHECK(v2.type == CB_VALUE_ERROR &&
                      strstr((char *)v2.bytes.data, k == 1 ? "always fails" : "crashed"),
                  "%s holds an error value", keys[k]);
        char *text = cb_value_format(&v2);
        s_ok("output key %s: %s", keys[k], text);
        cb_free(text);
        cb_value_fini(&v2);
        lat_fini(&got);
    }
    s_expect_no_reply(300, "no reply for calls with an output key");

    //  A DAG with an output key.
    s_place_t places[] = {{"incr", s_exec_a, 3, true}, {"square", s_exec_b, 0, false}};
    s_edge_t edges[] = {{"incr", "square"}};
    s_schedule_all(s_new_id(id, sizeof id), places, 2, edges, 1, "exec/out4", 0);
    int64_t deadline = cb_clock_mono_ms() + S_WAIT_MS;
    lat_t got;
    int rc;
    while ((rc = cb_kvs_get(s_kvs, "exec/out4", &got)) == -ENOENT && cb_clock_mono_ms() < deadline)
        usleep(20 * 1000);
    CHECK(rc == 0, "exec/out4 never written");
    ProtobufCBinaryData res = {got.u.lww.value.len, got.u.lww.value.data};
    CHECK(s_as_int(&res, "out4") == 16, "DAG output key");
    lat_fini(&got);
    s_ok("DAG with an output key: 16 stored at exec/out4");
}

static void t_library(void)
{
    //  cb_fn_get / cb_fn_put through kvs_rw.
    ProtobufCBinaryData v;
    s_str_value("copied value", &v);
    s_put_value("exec/src", &v);
    cb_free(v.data);
    s_arg_t args[2] = {{NULL, {0, NULL}}, {NULL, {0, NULL}}};
    s_str_value("exec/src", &args[0].value);
    s_str_value("exec/dst", &args[1].value);
    Reply *r = s_call(s_exec_a, "kvs_rw", args, 2, 0);
    CHECK(r->error == CB_ERROR__CB_OK, "kvs_rw: %s", r->error_message);
    CHECK(r->n_logs == 1 && strstr(r->logs[0], "copied"), "kvs_rw log");
    reply__free_unpacked(r, NULL);
    lat_t got;
    CHECK(cb_kvs_get(s_kvs, "exec/dst", &got) == 0, "exec/dst");
    cb_value_t dv;
    CHECK(cb_value_decode(got.u.lww.value.data, got.u.lww.value.len, &dv) == 0 &&
              dv.type == CB_VALUE_STRING && dv.bytes.len == 12,
          "exec/dst holds the string");
    cb_value_fini(&dv);
    lat_fini(&got);
    cb_free(args[0].value.data);
    cb_free(args[1].value.data);
    s_ok("cb_fn_get / cb_fn_put: kvs_rw copied exec/src to exec/dst");

    //  Logs come back with the result.
    s_arg_t two[2] = {{NULL, {0, NULL}}, {NULL, {0, NULL}}};
    s_str_value("hi", &two[0].value);
    s_int_value(5, &two[1].value);
    r = s_call(s_exec_b, "echo_log", two, 2, 0);
    CHECK(r->error == CB_ERROR__CB_OK && r->n_logs == 3, "echo_log: %zu logs", r->n_logs);
    CHECK(!strcmp(r->logs[1], "arg 1: string \"hi\"") && !strcmp(r->logs[2], "arg 2: int 5"),
          "echo_log lines");
    cb_value_t ev;
    CHECK(cb_value_decode(r->result.data, r->result.len, &ev) == 0 && ev.type == CB_VALUE_STRING &&
              ev.bytes.len == 2,
          "echo_log echoes");
    cb_value_fini(&ev);
    reply__free_unpacked(r, NULL);
    cb_free(two[0].value.data);
    cb_free(two[1].value.data);
    s_ok("cb_fn_log lines come back in Reply.logs");

    //  Messages: send to itself, receive.
    s_arg_t text = {NULL, {0, NULL}};
    s_str_value("ping", &text.value);
    r = s_call(s_exec_b, "sendrecv", &text, 1, 0);
    cb_value_t sv;
    CHECK(r->error == CB_ERROR__CB_OK, "sendrecv: %s", r->error_message);
    CHECK(cb_value_decode(r->result.data, r->result.len, &sv) == 0, "sendrecv result");
    char want[256];
    snprintf(want, sizeof want, "%s said ping", s_exec_b);
    CHECK(sv.bytes.len == strlen(want) && !memcmp(sv.bytes.data, want, sv.bytes.len),
          "sendrecv returned '%.*s'", (int)sv.bytes.len, (char *)sv.bytes.data);
    cb_value_fini(&sv);
    reply__free_unpacked(r, NULL);
    cb_free(text.value.data);
    s_ok("cb_fn_getid / cb_fn_send / cb_fn_recv: '%s'", want);

    //  Large results.
    int64_t sizes[] = {1 << 20, 8 << 20};
    for (int i = 0; i < 2; i++) {
        s_arg_t n = {NULL, {0, NULL}};
        s_int_value(sizes[i], &n.value);
        r = s_call(s_exec_a, "big", &n, 1, 0);
        cb_free(n.value.data);
        CHECK(r->error == CB_ERROR__CB_OK, "big: %s", r->error_message);
        cb_value_t bv;
        CHECK(cb_value_decode(r->result.data, r->result.len, &bv) == 0, "big decodes");
        CHECK(bv.type == CB_VALUE_BYTES && bv.bytes.len == (size_t)sizes[i], "big size %zu",
              bv.bytes.len);
        for (size_t k = 0; k < bv.bytes.len; k += 4099)
            CHECK(bv.bytes.data[k] == k % 251, "big content at %zu", k);
        cb_value_fini(&bv);
        reply__free_unpacked(r, NULL);
        s_ok("a %" PRId64 "-byte result", sizes[i]);
    }
}

static void t_malformed(void)
{
    s_send_raw(s_exec_a, "\xff\xff\xff garbage", 12);
    s_send_raw(s_exec_a, "", 0);
    ExecMessage empty = EXEC_MESSAGE__INIT;
    s_send(s_exec_a, &empty);
    //  A call without a function, and a schedule whose target is not in its DAG.
    Invocation inv = INVOCATION__INIT;
    char id[64];
    inv.id = s_new_id(id, sizeof id);
    inv.response_address = s_reply_to;
    ExecMessage call = EXEC_MESSAGE__INIT;
    call.body_case = EXEC_MESSAGE__BODY_CALL;
    call.call = &inv;
    s_send(s_exec_a, &call);
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_INVALID, "a call without a function: CB_INVALID");
    reply__free_unpacked(r, NULL);
    s_place_t places[] = {{"incr", s_exec_a, 1, true}};
    s_schedule(s_new_id(id, sizeof id), places, 1, NULL, 0, "incr", NULL, 0);
    CHECK(s_dag_int(id, "after garbage") == 2, "still serving");
    CHECK(s_call_int(s_exec_a, "incr", 99) == 100, "incr after garbage");
    s_ok("malformed ExecMessages are dropped; the executor keeps serving");
}

static void t_unpin(void)
{
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_UNPIN;
    msg.unpin = "incr";
    s_send(s_exec_a, &msg);
    ExecutorInfo *info = s_wait_info(s_exec_a, "incr", false);
    executor_info__free_unpacked(info, NULL);
    CHECK(s_call_int(s_exec_a, "incr", 0) == 1, "incr after unpin");
    s_ok("unpin: reported, and the function still runs on demand");
}

//  New code under a registered name: a pin loads it where the function is pinned, an unpin
//  flushes it where it ran unpinned; deleted code unpins.
static void t_new_code(void)
{
    s_upload("swap", "incr", 0);
    s_pin(s_exec_b, "swap", CB_ERROR__CB_OK);
    CHECK(s_call_int(s_exec_b, "swap", 3) == 4, "swap is incr");
    s_upload("swap", "square", 0);
    CHECK(s_call_int(s_exec_b, "swap", 3) == 4, "a loaded function keeps its code");
    s_pin(s_exec_b, "swap", CB_ERROR__CB_OK);
    CHECK(s_call_int(s_exec_b, "swap", 3) == 9, "swap is square after a new pin");
    s_ok("pinning again loads the function's new code");

    s_upload("swap2", "incr", 0);
    CHECK(s_call_int(s_exec_a, "swap2", 3) == 4, "swap2 is incr");
    s_upload("swap2", "square", 0);
    ExecMessage msg = EXEC_MESSAGE__INIT;
    msg.body_case = EXEC_MESSAGE__BODY_UNPIN;
    msg.unpin = "swap2";
    s_send(s_exec_a, &msg);
    CHECK(s_call_int(s_exec_a, "swap2", 3) == 9, "swap2 is square after an unpin");
    s_ok("an unpin flushes the code of a function that ran unpinned");

    s_upload_code("swap", (const uint8_t *)"", 0, 0); //  deleted: empty code
    s_pin(s_exec_b, "swap", CB_ERROR__CB_NO_SUCH_FUNCTION);
    ExecutorInfo *info = s_wait_info(s_exec_b, "swap", false);
    executor_info__free_unpacked(info, NULL);
    s_expect_error(s_exec_b, "swap", NULL, 0, 0, CB_ERROR__CB_NO_SUCH_FUNCTION, "deleted",
                   "a deleted function");
}

static int s_cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

//  Round trips of N sequential calls: with function "incr" through the runner; with
//  function "" the executor answers CB_INVALID itself, which is the same path minus the
//  runner (the baseline that shows what the runner adds).
static void s_round_trips(const char *function, const char *what)
{
    enum { N = 2000 };
    int64_t *rtt = cb_malloc(N * sizeof *rtt);
    s_arg_t arg = {NULL, {0, NULL}};
    s_int_value(1, &arg.value);
    for (int i = -100; i < N; i++) { //  100 warm-up calls
        char id[64];
        int64_t start = cb_clock_mono_us();
        s_call_async(s_exec_a, function, &arg, 1, NULL, 0, id, sizeof id);
        Reply *r = s_wait_reply(id, S_WAIT_MS);
        CHECK(r && r->error == (*function ? CB_ERROR__CB_OK : CB_ERROR__CB_INVALID),
              "latency call");
        reply__free_unpacked(r, NULL);
        if (i >= 0)
            rtt[i] = cb_clock_mono_us() - start;
    }
    cb_free(arg.value.data);
    qsort(rtt, N, sizeof *rtt, s_cmp64);
    int64_t sum = 0;
    for (int i = 0; i < N; i++)
        sum += rtt[i];
    s_ok("%s, %d calls: median %" PRId64 " us, mean %" PRId64 " us, p99 %" PRId64 " us", what, N,
         rtt[N / 2], sum / N, rtt[N * 99 / 100]);
    cb_free(rtt);
}

static void t_latency(void)
{
    s_round_trips("", "round trip client -> executor -> client (no runner; baseline)");
    s_round_trips("incr", "warm call round trip client -> executor -> runner -> client");
}

static void s_setup(const char *routing, const char *scheduler)
{
    s_ctx = zmq_ctx_new();
    s_replies = zmq_socket(s_ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(s_replies, ZMQ_LINGER, &linger, sizeof linger);
    CHECK(zmq_bind(s_replies, "tcp://127.0.0.1:*") == 0, "bind replies");
    size_t len = sizeof s_reply_to;
    zmq_getsockopt(s_replies, ZMQ_LAST_ENDPOINT, s_reply_to, &len);
    s_status = zmq_socket(s_ctx, ZMQ_PULL);
    zmq_setsockopt(s_status, ZMQ_LINGER, &linger, sizeof linger);
    CHECK(zmq_bind(s_status, scheduler) == 0, "bind %s: %s", scheduler, zmq_strerror(errno));
    cb_kvs_config_t config = {.routing = routing, .timeout_ms = 3000};
    s_kvs = cb_kvs_new(&config);
    CHECK(s_kvs, "KVS client for %s", routing);

    const char *plain[] = {"incr", "square", "sub",      "add",      "crash", "spin",
                           "fail", "kvs_rw", "echo_log", "sendrecv", "big"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        s_upload(plain[i], plain[i], 0);
    s_upload("incr_signed", "incr", 1);
    s_upload("incr_other", "incr", 2);
    //  Signed by the trusted key, but for another name: stored under this one.
    {
        char path[1024];
        snprintf(path, sizeof path, "%s/incr.so", s_examples);
        size_t n;
        uint8_t *code = s_read_file(path, &n);
        FunctionBlob blob = FUNCTION_BLOB__INIT;
        uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
        uint8_t sig[crypto_sign_BYTES];
        s_keypair(1, pk, sk);
        uint8_t *m = cb_malloc(n + 12);
        memcpy(m, "incr_signed", 12);
        memcpy(m + 12, code, n);
        crypto_sign_detached(sig, NULL, m, n + 12, sk);
        cb_free(m);
        blob.name = "incr_forged";
        blob.code.data = code;
        blob.code.len = n;
        blob.signature.data = sig;
        blob.signature.len = sizeof sig;
        blob.public_key.data = pk;
        blob.public_key.len = sizeof pk;
        size_t packed = function_blob__get_packed_size(&blob);
        uint8_t *buf = cb_malloc(packed);
        function_blob__pack(&blob, buf);
        CHECK(cb_kvs_put_lww(s_kvs, "funcs/incr_forged", buf, packed) == 0, "upload forged");
        cb_free(buf);
        cb_free(code);
    }
    s_upload_code("garbage", (const uint8_t *)"this is not an ELF object", 25, 0);
    s_upload("noabi", "noabi", 0);
    s_abi = 2;
    s_upload("incr_abi2", "incr", 0);
    s_abi = 1;
    s_ok("uploaded the example functions as FunctionBlobs");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(sodium_init() >= 0, "sodium_init");
    if (argc == 3 && !strcmp(argv[1], "pubkey")) {
        uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
        s_keypair(atoi(argv[2]), pk, sk);
        char hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
        sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
        printf("%s\n", hex);
        return 0;
    }
    if (argc != 8 || strcmp(argv[1], "run")) {
        fprintf(stderr, "usage: exec_drive pubkey SEED\n"
                        "       exec_drive run KVS_ROUTING SCHEDULER EXAMPLES EXEC_A EXEC_B "
                        "EXEC_T\n");
        return 2;
    }
    s_examples = argv[4];
    s_exec_a = argv[5];
    s_exec_b = argv[6];
    s_exec_t = argv[7];
    s_setup(argv[2], argv[3]);
    t_reports();
    t_pin();
    t_oneshot();
    t_dag_two_executors();
    t_dag_order();
    t_dag_logs();
    t_dag_failures();
    t_failures();
    t_trust();
    t_refs_and_outputs();
    t_library();
    t_malformed();
    t_unpin();
    t_new_code();
    t_latency();
    for (int i = 0; i < s_npushes; i++)
        zmq_close(s_pushes[i].sock);
    zmq_close(s_replies);
    zmq_close(s_status);
    zmq_ctx_term(s_ctx);
    cb_kvs_destroy(&s_kvs);
    printf("all executor checks passed\n");
    return 0;
}
