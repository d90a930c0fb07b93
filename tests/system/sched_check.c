//  tests/system/sched_check.c: the scheduler against a real KVS, seen from both of its
//  sides. This program is the client (Requests, Replies) and plays executors as an honest
//  protocol peer: each has its own PULL socket, sends StatusReport{executor} with that address,
//  answers PinFunction with PinAck (or an error, or nothing, as a check asks), forgets what it
//  is told to unpin, and keeps every ExecMessage it gets so that checks can look at what the
//  scheduler sent: Invocations, DagSchedules, pins. No executor code runs here.
//
//  Modes (tests/system/t_sched_basic.sh runs them in this order):
//    main REQUESTS STATUS DEAD_MS PIN_TIMEOUT_MS   everything, on a fresh KVS
//    list REQUESTS STATUS FUNCTIONS DAGS           lists equal "a,b" and "d" (another scheduler)
//    restart REQUESTS STATUS DEAD_MS               after a scheduler restart: metadata from the
//                                                  KVS, pins found from reports and repaired
//    nokvs REQUESTS STATUS                         a scheduler whose KVS does not answer
//    e2e REQUESTS STATUS KVS INCR_SO SQUARE_SO     with two real cb-executors (no fakes): a call,
//                                                  a DAG, an output key read back from the KVS
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "client/kvs.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/value.h"
#include "lattices/lattice.h"

#define S_WAIT_MS 5000          //  bound on every wait for something that must come
#define S_REPORT_MS 200         //  fake executors report this often
#define S_MAX_FX 8
#define S_INBOX 4096

static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond))                                                                              \
            s_fail(__VA_ARGS__);                                                                  \
        printf("ok: ");                                                                           \
        printf(__VA_ARGS__);                                                                      \
        printf("\n");                                                                             \
        fflush(stdout);                                                                           \
    } while (0)
//  Quiet on success, for checks in loops.
#define ASSERT(cond, ...)                                                                         \
    do {                                                                                          \
        if (!(cond))                                                                              \
            s_fail(__VA_ARGS__);                                                                  \
    } while (0)

//  ---- the fake executors -------------------------------------------------------------------

typedef enum { ACK_OK, ACK_ERROR, ACK_SILENT } ack_mode_t;

typedef struct {
    char id[32];
    char node[16];
    void *pull;
    char address[64];
    uint32_t incarnation;
    bool reporting;
    ack_mode_t ack;
    CbError ack_error;
    char ack_message[128];
    char *pinned[64];           //  what it holds pinned (reported)
    size_t npinned;
    ExecMessage *inbox[S_INBOX];
    size_t ninbox;
    size_t got[8];              //  ExecMessages received, per body case
    int64_t next_report_ms;
} fx_t;

static void *s_ctx;
static void *s_requests;        //  PUSH to the scheduler's requests
static void *s_status;          //  PUSH to the scheduler's status port
static void *s_client;          //  PULL: our replies
static char s_client_address[64];
static char s_status_address[128];
static fx_t s_fx[S_MAX_FX];
static size_t s_nfx;
static bool s_keep = true;      //  false: calls and schedules are counted, not kept
static Reply *s_replies[1024];
static size_t s_nreplies;
static unsigned s_next_id;

static void *s_bind_ephemeral(char *address, size_t len)
{
    void *sock = zmq_socket(s_ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(sock, "tcp://127.0.0.1:*") != 0)
        s_fail("cannot bind: %s", zmq_strerror(errno));
    size_t n = len;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, address, &n);
    return sock;
}

static void *s_connect_push(const char *address)
{
    void *sock = zmq_socket(s_ctx, ZMQ_PUSH);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sock, address) != 0)
        s_fail("cannot connect to %s: %s", address, zmq_strerror(errno));
    return sock;
}

static void s_send(void *sock, const void *data, size_t len)
{
    if (zmq_send(sock, data, len, 0) < 0)
        s_fail("send: %s", zmq_strerror(errno));
}

static void s_send_report(const StatusReport *r)
{
    size_t len = status_report__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    status_report__pack(r, buf);
    s_send(s_status, buf, len);
    free(buf);
}

static void s_fx_report(fx_t *fx)
{
    ExecutorInfo info = EXECUTOR_INFO__INIT;
    info.id = fx->id;
    info.address = fx->address;
    info.node = fx->node;
    info.n_pinned = fx->npinned;
    info.pinned = fx->pinned;
    info.incarnation = fx->incarnation;
    StatusReport r = STATUS_REPORT__INIT;
    r.body_case = STATUS_REPORT__BODY_EXECUTOR;
    r.executor = &info;
    s_send_report(&r);
    fx->next_report_ms = cb_clock_mono_ms() + S_REPORT_MS;
}

static fx_t *s_fx_start(const char *id, const char *node, const char *const *pinned, size_t n)
{
    if (s_nfx == S_MAX_FX)
        s_fail("too many fake executors");
    fx_t *fx = &s_fx[s_nfx++];
    memset(fx, 0, sizeof *fx);
    snprintf(fx->id, sizeof fx->id, "%s", id);
    snprintf(fx->node, sizeof fx->node, "%s", node);
    fx->pull = s_bind_ephemeral(fx->address, sizeof fx->address);
    fx->incarnation = 1;
    fx->reporting = true;
    for (size_t i = 0; i < n; i++)
        fx->pinned[fx->npinned++] = strdup(pinned[i]);
    s_fx_report(fx);
    return fx;
}

//  A new incarnation: a new socket (new address), nothing pinned, nothing received.
static void s_fx_restart(fx_t *fx)
{
    zmq_close(fx->pull);
    fx->pull = s_bind_ephemeral(fx->address, sizeof fx->address);
    fx->incarnation++;
    for (size_t i = 0; i < fx->npinned; i++)
        free(fx->pinned[i]);
    fx->npinned = 0;
    for (size_t i = 0; i < fx->ninbox; i++)
        exec_message__free_unpacked(fx->inbox[i], NULL);
    fx->ninbox = 0;
    s_fx_report(fx);
}

static bool s_fx_has_pin(const fx_t *fx, const char *function)
{
    for (size_t i = 0; i < fx->npinned; i++)
        if (strcmp(fx->pinned[i], function) == 0)
            return true;
    return false;
}

static void s_fx_receive(fx_t *fx, const uint8_t *data, size_t len)
{
    ExecMessage *m = exec_message__unpack(NULL, len, data);
    ASSERT(m, "%s got an ExecMessage that does not decode (%zu bytes)", fx->id, len);
    fx->got[m->body_case & 7]++;
    if (!s_keep && (m->body_case == EXEC_MESSAGE__BODY_CALL ||
                    m->body_case == EXEC_MESSAGE__BODY_SCHEDULE)) {
        exec_message__free_unpacked(m, NULL);
        return;
    }
    if (m->body_case == EXEC_MESSAGE__BODY_PIN) {
        ASSERT(strcmp(m->pin->response_address, s_status_address) == 0,
               "PinFunction asks for acks at %s, not the status address %s",
               m->pin->response_address, s_status_address);
        if (fx->ack != ACK_SILENT) {
            PinAck ack = PIN_ACK__INIT;
            ack.executor = fx->id;
            ack.function = m->pin->function;
            if (fx->ack == ACK_ERROR) {
                ack.error = fx->ack_error;
                ack.error_message = fx->ack_message;
            } else if (!s_fx_has_pin(fx, m->pin->function))
                fx->pinned[fx->npinned++] = strdup(m->pin->function);
            StatusReport r = STATUS_REPORT__INIT;
            r.body_case = STATUS_REPORT__BODY_PIN_ACK;
            r.pin_ack = &ack;
            s_send_report(&r);
        }
    } else if (m->body_case == EXEC_MESSAGE__BODY_UNPIN) {
        for (size_t i = 0; i < fx->npinned; i++)
            if (strcmp(fx->pinned[i], m->unpin) == 0) {
                free(fx->pinned[i]);
                fx->pinned[i] = fx->pinned[--fx->npinned];
                break;
            }
    }
    ASSERT(fx->ninbox < S_INBOX, "inbox of %s full", fx->id);
    fx->inbox[fx->ninbox++] = m;
}

//  Runs the fakes and collects replies for ms milliseconds.
static void s_pump(int ms)
{
    int64_t end = cb_clock_mono_ms() + ms;
    for (;;) {
        int64_t now = cb_clock_mono_ms();
        for (size_t i = 0; i < s_nfx; i++)
            if (s_fx[i].reporting && now >= s_fx[i].next_report_ms)
                s_fx_report(&s_fx[i]);
        if (now >= end)
            break;
        zmq_pollitem_t items[S_MAX_FX + 1];
        items[0] = (zmq_pollitem_t){s_client, 0, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < s_nfx; i++)
            items[i + 1] = (zmq_pollitem_t){s_fx[i].pull, 0, ZMQ_POLLIN, 0};
        long wait = (long)(end - now);
        if (wait > 20)
            wait = 20;
        if (zmq_poll(items, (int)s_nfx + 1, wait) < 0)
            s_fail("poll: %s", zmq_strerror(errno));
        zmq_msg_t msg;
        for (size_t i = 0; i <= s_nfx; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_init(&msg);
            while (zmq_msg_recv(&msg, items[i].socket, ZMQ_DONTWAIT) >= 0) {
                if (i == 0) {
                    Reply *r = reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
                    ASSERT(r, "a Reply that does not decode");
                    ASSERT(s_nreplies < 1024, "too many replies");
                    s_replies[s_nreplies++] = r;
                } else
                    s_fx_receive(&s_fx[i - 1], zmq_msg_data(&msg), zmq_msg_size(&msg));
                zmq_msg_close(&msg);
                zmq_msg_init(&msg);
            }
            zmq_msg_close(&msg);
        }
    }
}

//  ---- the client ---------------------------------------------------------------------------

static Reply *s_take_reply(const char *id)
{
    for (size_t i = 0; i < s_nreplies; i++)
        if (strcmp(s_replies[i]->request_id, id) == 0) {
            Reply *r = s_replies[i];
            memmove(&s_replies[i], &s_replies[i + 1], (s_nreplies - i - 1) * sizeof *s_replies);
            s_nreplies--;
            return r;
        }
    return NULL;
}

static Reply *s_wait_reply(const char *id, int timeout_ms)
{
    int64_t end = cb_clock_mono_ms() + timeout_ms;
    Reply *r;
    while (!(r = s_take_reply(id)) && cb_clock_mono_ms() < end)
        s_pump(1);
    return r;
}

//  Sends req with a fresh id (written to id_out, 32 bytes) and our response address.
static void s_send_request(Request *req, char *id_out)
{
    snprintf(id_out, 32, "req-%u", ++s_next_id);
    req->request_id = id_out;
    req->response_address = s_client_address;
    size_t len = request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    request__pack(req, buf);
    s_send(s_requests, buf, len);
    free(buf);
}

//  Sends req and waits for its Reply. Caller frees (reply__free_unpacked).
static Reply *s_request(Request *req)
{
    char id[32];
    s_send_request(req, id);
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    ASSERT(r, "no reply to request %s (op %d) within %d ms", id, (int)req->op_case, S_WAIT_MS);
    return r;
}

static const char *s_code(CbError e)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&cb_error__descriptor, e);
    return v ? v->name : "?";
}

//  Checks a reply's error code and that its message contains text; frees it.
static void s_expect(Reply *r, CbError code, const char *text, const char *what)
{
    ASSERT(r->error == code, "%s: expected %s, got %s (%s)", what, s_code(code),
           s_code(r->error), r->error_message);
    ASSERT(!text || strstr(r->error_message, text), "%s: message [%s] lacks [%s]", what,
           r->error_message, text);
    printf("ok: %s: %s%s%s\n", what, s_code(code), r->error_message[0] ? ": " : "",
           r->error_message);
    fflush(stdout);
    reply__free_unpacked(r, NULL);
}

static Reply *s_register_function(const char *name, size_t code_len)
{
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = (char *)name;
    uint8_t *code = malloc(code_len ? code_len : 1);
    memset(code, 0x7f, code_len);
    blob.code.data = code;
    blob.code.len = code_len;
    blob.abi_version = 1;
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_FUNCTION;
    req.register_function = &blob;
    Reply *r = s_request(&req);
    free(code);
    return r;
}

//  "a,b" from a list reply; frees it.
static void s_names(Reply *r, char *buf, size_t len)
{
    ASSERT(r->error == CB_ERROR__CB_OK, "list failed: %s", r->error_message);
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_names; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "", r->names[i]);
    reply__free_unpacked(r, NULL);
}

static void s_list(bool functions, char *buf, size_t len)
{
    Request req = REQUEST__INIT;
    req.op_case = functions ? REQUEST__OP_LIST_FUNCTIONS : REQUEST__OP_LIST_DAGS;
    if (functions)
        req.list_functions = true;
    else
        req.list_dags = true;
    s_names(s_request(&req), buf, len);
}

static Reply *s_status_request(void)
{
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_STATUS;
    req.status = true;
    Reply *r = s_request(&req);
    ASSERT(r->error == CB_ERROR__CB_OK && r->status, "status failed: %s", r->error_message);
    return r;
}

static const ExecutorInfo *s_status_executor(const Reply *r, const char *id)
{
    for (size_t i = 0; i < r->status->n_executors; i++)
        if (strcmp(r->status->executors[i]->id, id) == 0)
            return r->status->executors[i];
    return NULL;
}

//  Registers a DAG given as "a,b,c|a>c,b>c" (fixed-size buffers: test helper).
static Reply *s_register_dag(const char *name, const char *text)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    char *bar = strchr(buf, '|');
    if (bar)
        *bar++ = '\0';
    char *functions[32];
    DagEdge edges[32], *edge_ptrs[32];
    size_t nf = 0, ne = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        functions[nf++] = t;
    if (bar)
        for (char *t = strtok_r(bar, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *gt = strchr(t, '>');
            *gt = '\0';
            dag_edge__init(&edges[ne]);
            edges[ne].from = t;
            edges[ne].to = gt + 1;
            edge_ptrs[ne] = &edges[ne];
            ne++;
        }
    DagSpec spec = DAG_SPEC__INIT;
    spec.name = (char *)name;
    spec.n_functions = nf;
    spec.functions = functions;
    spec.n_edges = ne;
    spec.edges = edge_ptrs;
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_DAG;
    req.register_dag = &spec;
    return s_request(&req);
}

static Reply *s_delete(bool function, const char *name)
{
    Request req = REQUEST__INIT;
    req.op_case = function ? REQUEST__OP_DELETE_FUNCTION : REQUEST__OP_DELETE_DAG;
    if (function)
        req.delete_function = (char *)name;
    else
        req.delete_dag = (char *)name;
    return s_request(&req);
}

//  An int literal and a ref: the arguments most checks send.
typedef struct {
    Arg literal, ref;
    Arg *ptrs[2];
    cb_bytes_t value;
} s_args_t;

static void s_args_init(s_args_t *a, int64_t v, const char *ref)
{
    cb_value_t val;
    cb_value_set_int(&val, v);
    a->value = (cb_bytes_t){NULL, 0};
    cb_value_encode(&val, &a->value);
    cb_value_fini(&val);
    arg__init(&a->literal);
    a->literal.value.data = a->value.data;
    a->literal.value.len = a->value.len;
    arg__init(&a->ref);
    a->ref.ref = (char *)ref;
    a->ptrs[0] = &a->literal;
    a->ptrs[1] = &a->ref;
}

//  Sends a call_function (no wait). id_out gets its request id (32 bytes).
static void s_call_function(const char *function, s_args_t *args, size_t nargs,
                            const char *output_key, char *id_out)
{
    FunctionCall call = FUNCTION_CALL__INIT;
    call.function = (char *)function;
    call.n_args = nargs;
    call.args = args ? args->ptrs : NULL;
    call.output_key = (char *)(output_key ? output_key : "");
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_CALL_FUNCTION;
    req.call_function = &call;
    s_send_request(&req, id_out);
}

typedef struct {
    const char *function;
    s_args_t *args;
    size_t nargs;
} s_dag_args_t;

static void s_call_dag(const char *dag, const s_dag_args_t *args, size_t n,
                       const char *output_key, char *id_out)
{
    DagCall call = DAG_CALL__INIT;
    call.dag = (char *)dag;
    DagCall__ArgsEntry entries[8], *entry_ptrs[8];
    ArgList lists[8];
    for (size_t i = 0; i < n; i++) {
        dag_call__args_entry__init(&entries[i]);
        arg_list__init(&lists[i]);
        lists[i].n_args = args[i].nargs;
        lists[i].args = args[i].args->ptrs;
        entries[i].key = (char *)args[i].function;
        entries[i].value = &lists[i];
        entry_ptrs[i] = &entries[i];
    }
    call.n_args = n;
    call.args = entry_ptrs;
    call.output_key = (char *)(output_key ? output_key : "");
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_CALL_DAG;
    req.call_dag = &call;
    s_send_request(&req, id_out);
}

//  ---- looking at what the executors got ----------------------------------------------------

static void s_clear_inboxes(void)
{
    for (size_t f = 0; f < s_nfx; f++) {
        for (size_t i = 0; i < s_fx[f].ninbox; i++)
            exec_message__free_unpacked(s_fx[f].inbox[i], NULL);
        s_fx[f].ninbox = 0;
    }
}

static size_t s_count(const fx_t *fx, ExecMessage__BodyCase kind, const char *function)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->ninbox; i++) {
        const ExecMessage *m = fx->inbox[i];
        if (m->body_case != kind)
            continue;
        const char *name = kind == EXEC_MESSAGE__BODY_PIN     ? m->pin->function
                           : kind == EXEC_MESSAGE__BODY_UNPIN ? m->unpin
                                                              : NULL;
        n += !function || (name && strcmp(name, function) == 0);
    }
    return n;
}

static size_t s_count_all(ExecMessage__BodyCase kind, const char *function)
{
    size_t n = 0;
    for (size_t f = 0; f < s_nfx; f++)
        n += s_count(&s_fx[f], kind, function);
    return n;
}

//  Pumps until at least n messages of kind (for function, if given) are in the inboxes.
static bool s_wait_count(ExecMessage__BodyCase kind, const char *function, size_t n, int ms)
{
    int64_t end = cb_clock_mono_ms() + ms;
    while (s_count_all(kind, function) < n && cb_clock_mono_ms() < end)
        s_pump(2);
    return s_count_all(kind, function) >= n;
}

//  Takes the first message of kind from any fake (waiting up to ms); *from gets the fake.
static ExecMessage *s_take(ExecMessage__BodyCase kind, int ms, fx_t **from)
{
    int64_t end = cb_clock_mono_ms() + ms;
    do {
        for (size_t f = 0; f < s_nfx; f++)
            for (size_t i = 0; i < s_fx[f].ninbox; i++)
                if (s_fx[f].inbox[i]->body_case == kind) {
                    ExecMessage *m = s_fx[f].inbox[i];
                    memmove(&s_fx[f].inbox[i], &s_fx[f].inbox[i + 1],
                            (s_fx[f].ninbox - i - 1) * sizeof *s_fx[f].inbox);
                    s_fx[f].ninbox--;
                    if (from)
                        *from = &s_fx[f];
                    return m;
                }
        s_pump(2);
    } while (cb_clock_mono_ms() < end);
    return NULL;
}

static fx_t *s_fx_by_address(const char *address)
{
    for (size_t f = 0; f < s_nfx; f++)
        if (strcmp(s_fx[f].address, address) == 0)
            return &s_fx[f];
    return NULL;
}

//  The fakes holding function pinned, as a bit set over s_fx.
static unsigned s_holders(const char *function)
{
    unsigned set = 0;
    for (size_t f = 0; f < s_nfx; f++)
        if (s_fx_has_pin(&s_fx[f], function))
            set |= 1u << f;
    return set;
}

static int s_popcount(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

static bool s_args_equal(Arg *const *got, size_t n, const s_args_t *want, size_t nwant)
{
    if (n != nwant)
        return false;
    for (size_t i = 0; i < n; i++) {
        const Arg *w = want->ptrs[i];
        if (strcmp(got[i]->ref, w->ref) != 0 || got[i]->value.len != w->value.len ||
            (w->value.len && memcmp(got[i]->value.data, w->value.data, w->value.len) != 0))
            return false;
    }
    return true;
}

//  Takes the n DagSchedules of call id and checks what every one of them must hold.
static void s_take_schedules(const char *id, DagSchedule **out, fx_t **where, size_t n,
                             const char *what)
{
    for (size_t i = 0; i < n; i++) {
        ExecMessage *m = s_take(EXEC_MESSAGE__BODY_SCHEDULE, S_WAIT_MS, &where[i]);
        ASSERT(m, "%s: only %zu of %zu schedules arrived", what, i, n);
        DagSchedule *s = m->schedule;
        m->schedule = NULL;
        m->body_case = EXEC_MESSAGE__BODY__NOT_SET;
        exec_message__free_unpacked(m, NULL);
        ASSERT(strcmp(s->id, id) == 0, "%s: schedule id %s, expected %s", what, s->id, id);
        ASSERT(strcmp(s->response_address, s_client_address) == 0,
               "%s: response address %s", what, s->response_address);
        const char *here = NULL;
        for (size_t l = 0; l < s->n_locations; l++)
            if (strcmp(s->locations[l]->key, s->target_function) == 0)
                here = s->locations[l]->value;
        ASSERT(here && strcmp(here, where[i]->address) == 0,
               "%s: schedule for %s went to %s, but its location says %s", what,
               s->target_function, where[i]->address, here ? here : "nothing");
        out[i] = s;
    }
}

static DagSchedule *s_schedule_for(DagSchedule **s, size_t n, const char *function, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i]->target_function, function) == 0) {
            if (at)
                *at = i;
            return s[i];
        }
    return NULL;
}

static void s_free_schedules(DagSchedule **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dag_schedule__free_unpacked(s[i], NULL);
}

//  ---- set-up -------------------------------------------------------------------------------

static void s_connect(const char *requests, const char *status)
{
    s_ctx = zmq_ctx_new();
    s_client = s_bind_ephemeral(s_client_address, sizeof s_client_address);
    s_requests = s_connect_push(requests);
    s_status = s_connect_push(status);
    snprintf(s_status_address, sizeof s_status_address, "%s", status);
}

static void s_disconnect(void)
{
    s_clear_inboxes();
    for (size_t f = 0; f < s_nfx; f++) {
        zmq_close(s_fx[f].pull);
        for (size_t i = 0; i < s_fx[f].npinned; i++)
            free(s_fx[f].pinned[i]);
    }
    for (size_t i = 0; i < s_nreplies; i++)
        reply__free_unpacked(s_replies[i], NULL);
    zmq_close(s_client);
    zmq_close(s_requests);
    zmq_close(s_status);
    zmq_ctx_term(s_ctx);
}

//  Waits until the scheduler lists n alive executors.
static void s_wait_executors(size_t n, int ms, const char *what)
{
    int64_t end = cb_clock_mono_ms() + ms;
    size_t got = 0;
    for (;;) {
        Reply *r = s_status_request();
        got = r->status->n_executors;
        reply__free_unpacked(r, NULL);
        if (got == n || cb_clock_mono_ms() >= end)
            break;
        s_pump(50);
    }
    CHECK(got == n, "%s: %zu executors alive (expected %zu)", what, got, n);
}

//  ---- mode main ----------------------------------------------------------------------------

static void s_check_functions(void)
{
    const char *names[] = {"incr", "double", "sum", "solo", "tmp", "broken", "slowfn"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        s_expect(s_register_function(names[i], 1000), CB_ERROR__CB_OK, NULL, names[i]);
    char list[512];
    s_list(true, list, sizeof list);
    CHECK(strcmp(list, "broken,double,incr,slowfn,solo,sum,tmp") == 0, "list_functions: %s",
          list);

    s_expect(s_register_function("", 10), CB_ERROR__CB_INVALID, "function name is empty",
             "empty name");
    s_expect(s_register_function("a b", 10), CB_ERROR__CB_INVALID,
             "function name 'a b' has a character other than A-Z a-z 0-9 _ . -", "name a b");
    s_expect(s_register_function("bad/name", 10), CB_ERROR__CB_INVALID, "has a character",
             "name bad/name");
    char longer[140];
    memset(longer, 'x', 129);
    longer[129] = '\0';
    s_expect(s_register_function(longer, 10), CB_ERROR__CB_INVALID,
             "function name is longer than 128 characters", "name of 129 characters");
    s_expect(s_register_function("index", 10), CB_ERROR__CB_INVALID,
             "function name 'index' is reserved", "name index");
    s_expect(s_register_function("nocode", 0), CB_ERROR__CB_INVALID,
             "function 'nocode' has no code", "empty code");
    s_expect(s_register_function("huge", (16u << 20) + 1), CB_ERROR__CB_TOO_LARGE,
             "function 'huge' has 16777217 bytes of code, more than the limit of 16777216",
             "code over 16 MiB");
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = "signed";
    uint8_t code[4] = {1, 2, 3, 4}, sig[10] = {0};
    blob.code = (ProtobufCBinaryData){4, code};
    blob.signature = (ProtobufCBinaryData){10, sig};
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_FUNCTION;
    req.register_function = &blob;
    s_expect(s_request(&req), CB_ERROR__CB_INVALID, "a signature is 64 bytes", "bad signature");

    s_expect(s_delete(true, "tmp"), CB_ERROR__CB_OK, NULL, "delete function tmp");
    s_list(true, list, sizeof list);
    CHECK(strcmp(list, "broken,double,incr,slowfn,solo,sum") == 0, "tmp is gone: %s", list);
    s_expect(s_delete(true, "tmp"), CB_ERROR__CB_NO_SUCH_FUNCTION,
             "function 'tmp' is not registered", "delete tmp again");
    s_expect(s_delete(true, "ghost"), CB_ERROR__CB_NO_SUCH_FUNCTION,
             "function 'ghost' is not registered", "delete unknown function");
}

static void s_check_dag_validation(void)
{
    const struct {
        const char *name, *text, *message;
    } cases[] = {
        {"bad name", "incr", "DAG name 'bad name' has a character other than"},
        {"index", "incr", "DAG name 'index' is reserved"},
        {"empty", "", "a DAG needs at least one function"},
        {"twice", "incr,incr", "function 'incr' is listed twice"},
        {"unknown", "incr,nope|incr>nope", "function 'nope' is not registered"},
        {"unlisted", "incr,sum|incr>ghost", "edge incr -> ghost: 'ghost' is not a function of "
                                            "the DAG"},
        {"selfedge", "incr,sum|incr>incr,incr>sum", "self-edge incr -> incr"},
        {"dupedge", "incr,sum|incr>sum,incr>sum", "duplicate edge incr -> sum"},
        {"cyclic", "incr,double,sum|incr>double,double>incr,double>sum",
         "cycle: incr -> double -> incr"},
        {"twosinks", "incr,double,sum|incr>double,incr>sum",
         "2 sinks: double, sum (a DAG needs exactly one)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "invalid DAG %s", cases[i].name);
        s_expect(s_register_dag(cases[i].name, cases[i].text), CB_ERROR__CB_INVALID,
                 cases[i].message, what);
    }
    s_pump(100);
    CHECK(s_count_all(EXEC_MESSAGE__BODY_PIN, NULL) == 0, "no pins for invalid DAGs");
}

//  The pipeline: incr and double feed sum (inputs in edge order: incr's result, then
//  double's).
static void s_check_register_dag(void)
{
    s_clear_inboxes();
    s_expect(s_register_dag("pipeline", "incr,double,sum|incr>sum,double>sum"),
             CB_ERROR__CB_OK, NULL, "register DAG pipeline");
    const char *fns[] = {"incr", "double", "sum"};
    for (size_t i = 0; i < 3; i++) {
        unsigned holders = s_holders(fns[i]);
        CHECK(s_popcount(holders) == 2 && s_count_all(EXEC_MESSAGE__BODY_PIN, fns[i]) == 2,
              "%s pinned on 2 executors", fns[i]);
        //  Spread over nodes: s_fx[2] is the only executor of node n1.
        CHECK(holders & 4, "%s pinned on both nodes", fns[i]);
    }
    Reply *r = s_status_request();
    for (size_t f = 0; f < s_nfx; f++) {
        const ExecutorInfo *info = s_status_executor(r, s_fx[f].id);
        ASSERT(info, "status lacks %s", s_fx[f].id);
        CHECK(info->n_pinned == s_fx[f].npinned && strcmp(info->node, s_fx[f].node) == 0,
              "status: %s on %s has %zu pins", info->id, info->node, info->n_pinned);
    }
    reply__free_unpacked(r, NULL);
    s_expect(s_register_dag("pipeline", "incr"), CB_ERROR__CB_ALREADY_EXISTS,
             "DAG 'pipeline' already exists", "register pipeline again");
    char list[256];
    s_list(false, list, sizeof list);
    CHECK(strcmp(list, "pipeline") == 0, "list_dags: %s", list);
    s_expect(s_delete(true, "incr"), CB_ERROR__CB_INVALID,
             "function 'incr' is used by DAG 'pipeline'", "delete a function a DAG uses");
}

static void s_check_call_errors(void)
{
    char id[32];
    s_call_function("ghost", NULL, 0, NULL, id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_NO_SUCH_FUNCTION,
             "function 'ghost' is not registered", "call unknown function");
    s_call_dag("ghost", NULL, 0, NULL, id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_NO_SUCH_DAG,
             "DAG 'ghost' is not registered", "call unknown DAG");
    s_args_t args;
    s_args_init(&args, 1, "k1");
    s_dag_args_t bad = {"solo", &args, 2};
    s_call_dag("pipeline", &bad, 1, NULL, id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_INVALID,
             "arguments for function 'solo', which is not in DAG 'pipeline'",
             "call DAG with arguments for a function not in it");
    s_call_function("incr", &args, 2, "funcs/incr", id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_INVALID, "is reserved",
             "output key in funcs/");
    Request req = REQUEST__INIT;
    s_expect(s_request(&req), CB_ERROR__CB_INVALID, "request has no operation",
             "request without an operation");
    cb_bytes_fini(&args.value);
    s_pump(100);
    CHECK(s_count_all(EXEC_MESSAGE__BODY_CALL, NULL) == 0 &&
              s_count_all(EXEC_MESSAGE__BODY_SCHEDULE, NULL) == 0,
          "nothing dispatched for calls that failed");
}

static void s_check_call_function(void)
{
    s_clear_inboxes();
    s_args_t args;
    s_args_init(&args, 41, "k1");
    char id[32];
    s_call_function("incr", &args, 2, NULL, id);
    fx_t *where = NULL;
    ExecMessage *m = s_take(EXEC_MESSAGE__BODY_CALL, S_WAIT_MS, &where);
    ASSERT(m, "no Invocation for incr");
    const Invocation *inv = m->call;
    CHECK(strcmp(inv->id, id) == 0 && strcmp(inv->response_address, s_client_address) == 0,
          "Invocation %s for the client's address", inv->id);
    CHECK(strcmp(inv->call->function, "incr") == 0 && inv->call->timeout_ms == 10000 &&
              !inv->call->output_key[0],
          "Invocation of incr with the default timeout (%" PRIu32 " ms)", inv->call->timeout_ms);
    CHECK(s_args_equal(inv->call->args, inv->call->n_args, &args, 2),
          "Invocation carries the literal and the ref");
    CHECK(s_fx_has_pin(where, "incr"), "incr ran where it is pinned (%s)", where->id);
    exec_message__free_unpacked(m, NULL);
    s_pump(300);
    Reply *stray = s_take_reply(id);
    CHECK(!stray, "no Reply from the scheduler for a call whose result goes back directly");

    //  Every call of a pinned function goes where it is pinned.
    for (int i = 0; i < 20; i++)
        s_call_function("incr", &args, 2, NULL, id);
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_CALL, NULL, 20, S_WAIT_MS), "20 calls not dispatched");
    size_t off_pin = 0;
    for (size_t f = 0; f < s_nfx; f++)
        if (!s_fx_has_pin(&s_fx[f], "incr"))
            off_pin += s_count(&s_fx[f], EXEC_MESSAGE__BODY_CALL, NULL);
    CHECK(off_pin == 0, "20 calls of incr all on its pinned executors");
    s_clear_inboxes();

    //  With an output key the scheduler answers at once with the key.
    s_call_function("incr", &args, 2, "out1", id);
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_OK && strcmp(r->output_key, "out1") == 0,
          "call with output key: Reply names out1");
    reply__free_unpacked(r, NULL);
    m = s_take(EXEC_MESSAGE__BODY_CALL, S_WAIT_MS, NULL);
    CHECK(m && strcmp(m->call->call->output_key, "out1") == 0 && strcmp(m->call->id, id) == 0,
          "its Invocation carries the output key");
    exec_message__free_unpacked(m, NULL);

    //  Locality: node n1's cache holds "big"; solo is pinned nowhere, so any executor may
    //  run it, and the one on n1 should get most calls (all but the random share).
    const char *keys[] = {"big", "other"};
    NodeInfo node = NODE_INFO__INIT;
    node.node = "n1";
    node.cache_address = "tcp://127.0.0.1:1";
    node.cached_keys = 2;
    StatusReport rep = STATUS_REPORT__INIT;
    rep.body_case = STATUS_REPORT__BODY_NODE;
    rep.node = &node;
    rep.n_cached_keys = 2;
    rep.cached_keys = (char **)keys;
    s_send_report(&rep);
    s_pump(100);
    s_args_t big;
    s_args_init(&big, 0, "big");
    s_clear_inboxes();
    for (int i = 0; i < 60; i++)
        s_call_function("solo", &big, 2, NULL, id);
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_CALL, NULL, 60, S_WAIT_MS), "60 calls not dispatched");
    size_t local = s_count(&s_fx[2], EXEC_MESSAGE__BODY_CALL, NULL);
    CHECK(local >= 40, "locality: %zu of 60 calls reading 'big' ran on node n1", local);
    //  Without refs, load spreads calls over every executor. (After a round of reports:
    //  until then the calls just sent to n1/0 count as its load, rightly.)
    s_pump(2 * S_REPORT_MS);
    s_clear_inboxes();
    for (int i = 0; i < 30; i++)
        s_call_function("solo", NULL, 0, NULL, id);
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_CALL, NULL, 30, S_WAIT_MS), "30 calls not dispatched");
    for (size_t f = 0; f < 3; f++)
        CHECK(s_count(&s_fx[f], EXEC_MESSAGE__BODY_CALL, NULL) >= 5,
              "load: %s ran %zu of 30 calls without refs", s_fx[f].id,
              s_count(&s_fx[f], EXEC_MESSAGE__BODY_CALL, NULL));
    s_clear_inboxes();
    cb_bytes_fini(&args.value);
    cb_bytes_fini(&big.value);
}

static void s_check_call_dag(void)
{
    s_clear_inboxes();
    s_args_t args;
    s_args_init(&args, 5, "k5");
    s_dag_args_t dag_args = {"incr", &args, 2};
    char id[32];
    s_call_dag("pipeline", &dag_args, 1, NULL, id);
    DagSchedule *s[3];
    fx_t *where[3];
    s_take_schedules(id, s, where, 3, "call_dag pipeline");
    s_pump(200);
    CHECK(s_count_all(EXEC_MESSAGE__BODY_SCHEDULE, NULL) == 0, "exactly 3 schedules");
    const char *fns[] = {"incr", "double", "sum"};
    for (size_t i = 0; i < 3; i++) {
        size_t at;
        DagSchedule *sc = s_schedule_for(s, 3, fns[i], &at);
        ASSERT(sc, "no schedule for %s", fns[i]);
        CHECK(sc->begin == (i < 2), "%s: begin=%d", fns[i], sc->begin);
        CHECK(s_fx_has_pin(where[at], fns[i]), "%s scheduled where it is pinned (%s)", fns[i],
              where[at]->id);
        CHECK(sc->timeout_ms == 10000 && !sc->output_key[0] && sc->n_locations == 3,
              "%s: default timeout, no output key, 3 locations", fns[i]);
        ASSERT(sc->dag && strcmp(sc->dag->name, "pipeline") == 0 && sc->dag->n_functions == 3 &&
                   sc->dag->n_edges == 2,
               "%s: the DAG spec is missing or wrong", fns[i]);
        CHECK(strcmp(sc->dag->edges[0]->from, "incr") == 0 &&
                  strcmp(sc->dag->edges[1]->from, "double") == 0 &&
                  strcmp(sc->dag->edges[1]->to, "sum") == 0,
              "%s: the spec keeps the edges in order", fns[i]);
        if (i == 0)
            CHECK(sc->n_args == 1 && strcmp(sc->args[0]->key, "incr") == 0 &&
                      s_args_equal(sc->args[0]->value->args, sc->args[0]->value->n_args, &args,
                                   2),
                  "incr's schedule carries its fixed arguments");
        else
            CHECK(sc->n_args == 0, "%s's schedule carries no arguments", fns[i]);
        //  Every copy names the same locations.
        for (size_t l = 0; l < 3; l++) {
            ASSERT(strcmp(sc->locations[l]->key, s[0]->locations[l]->key) == 0 &&
                       strcmp(sc->locations[l]->value, s[0]->locations[l]->value) == 0,
                   "schedules disagree on locations");
            ASSERT(s_fx_by_address(sc->locations[l]->value), "location %s is no executor",
                   sc->locations[l]->value);
        }
    }
    s_free_schedules(s, 3);
    CHECK(!s_take_reply(id), "no Reply from the scheduler for a DAG call without output key");

    s_call_dag("pipeline", NULL, 0, "dagout", id);
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_OK && strcmp(r->output_key, "dagout") == 0,
          "DAG call with output key: Reply names dagout");
    reply__free_unpacked(r, NULL);
    s_take_schedules(id, s, where, 3, "call_dag pipeline with output key");
    for (size_t i = 0; i < 3; i++)
        ASSERT(strcmp(s[i]->output_key, "dagout") == 0 && s[i]->n_args == 0,
               "schedule without the output key");
    CHECK(true, "its 3 schedules carry the output key");
    s_free_schedules(s, 3);
    cb_bytes_fini(&args.value);
}

static size_t s_got(ExecMessage__BodyCase kind)
{
    size_t n = 0;
    for (size_t f = 0; f < s_nfx; f++)
        n += s_fx[f].got[kind];
    return n;
}

//  The call path's cost, seen from outside: calls sent as fast as this program can, until
//  the fake executors have them all. The figure includes this program's own packing and
//  unpacking, so it is a lower bound of what the scheduler does.
static void s_check_throughput(void)
{
    s_keep = false;
    char id[32];
    s_args_t args;
    s_args_init(&args, 7, "k7");
    const int calls = 20000, dag_calls = 5000;
    size_t before = s_got(EXEC_MESSAGE__BODY_CALL);
    int64_t start = cb_clock_mono_us();
    for (int i = 0; i < calls; i++) {
        s_call_function(i % 2 ? "solo" : "incr", &args, 2, NULL, id);
        if (i % 500 == 0)
            s_pump(0);
    }
    int64_t end = cb_clock_mono_ms() + 30000;
    while (s_got(EXEC_MESSAGE__BODY_CALL) - before < (size_t)calls && cb_clock_mono_ms() < end)
        s_pump(2);
    int64_t us = cb_clock_mono_us() - start;
    CHECK(s_got(EXEC_MESSAGE__BODY_CALL) - before == (size_t)calls,
          "throughput: %d calls dispatched in %" PRId64 " ms (%.0f calls/s, %.1f us each)", calls,
          us / 1000, calls * 1e6 / (double)us, (double)us / calls);
    CHECK(calls * 1e6 / (double)us > 2000, "more than 2000 calls/s");
    s_dag_args_t dag_args = {"incr", &args, 2};
    before = s_got(EXEC_MESSAGE__BODY_SCHEDULE);
    start = cb_clock_mono_us();
    for (int i = 0; i < dag_calls; i++) {
        s_call_dag("pipeline", &dag_args, 1, NULL, id);
        if (i % 500 == 0)
            s_pump(0);
    }
    end = cb_clock_mono_ms() + 30000;
    while (s_got(EXEC_MESSAGE__BODY_SCHEDULE) - before < (size_t)dag_calls * 3 &&
           cb_clock_mono_ms() < end)
        s_pump(2);
    us = cb_clock_mono_us() - start;
    CHECK(s_got(EXEC_MESSAGE__BODY_SCHEDULE) - before == (size_t)dag_calls * 3,
          "throughput: %d DAG calls (3 schedules each) in %" PRId64 " ms (%.0f/s, %.1f us each)",
          dag_calls, us / 1000, dag_calls * 1e6 / (double)us, (double)us / dag_calls);
    cb_bytes_fini(&args.value);
    s_keep = true;
    s_pump(2 * S_REPORT_MS);    //  reports reset the load the burst left
}

static void s_check_pin_failures(int pin_timeout_ms)
{
    //  The executors of node n0 cannot load the code; n1's can. broken is pinned on one of
    //  each: the registration fails with the executor's error, and the pin that worked is
    //  taken back.
    s_clear_inboxes();
    for (size_t f = 0; f < 2; f++) {
        s_fx[f].ack = ACK_ERROR;
        s_fx[f].ack_error = CB_ERROR__CB_LOAD_FAILED;
        snprintf(s_fx[f].ack_message, sizeof s_fx[f].ack_message, "bad ELF header");
    }
    s_expect(s_register_dag("brokendag", "broken"), CB_ERROR__CB_LOAD_FAILED,
             "could not pin function 'broken': bad ELF header", "executor fails to load");
    //  (n1/0 may be told twice: once when the registration fails, once more if its
    //  acknowledgement arrives after that.)
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_UNPIN, "broken", 1, S_WAIT_MS), "no unpin of broken");
    s_pump(200);
    CHECK(s_count(&s_fx[2], EXEC_MESSAGE__BODY_UNPIN, "broken") >= 1 && s_holders("broken") == 0,
          "the pin that worked is undone");
    char list[256];
    s_list(false, list, sizeof list);
    CHECK(strcmp(list, "pipeline") == 0, "brokendag not registered: %s", list);

    //  Executors that never answer: the registration waits without blocking the scheduler,
    //  then fails with CB_TIMEOUT.
    s_clear_inboxes();
    for (size_t f = 0; f < s_nfx; f++)
        s_fx[f].ack = ACK_SILENT;
    char id[32];
    DagSpec spec = DAG_SPEC__INIT;
    char *fns[] = {"slowfn"};
    spec.name = "slowdag";
    spec.n_functions = 1;
    spec.functions = fns;
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_DAG;
    req.register_dag = &spec;
    int64_t start = cb_clock_mono_ms();
    s_send_request(&req, id);
    s_pump(50);
    s_list(false, list, sizeof list);
    int64_t listed = cb_clock_mono_ms() - start;
    CHECK(listed < pin_timeout_ms / 2 && strcmp(list, "pipeline") == 0,
          "other requests are served while a registration waits (%" PRId64 " ms)", listed);
    Reply *r = s_wait_reply(id, pin_timeout_ms + S_WAIT_MS);
    ASSERT(r, "no reply to a registration whose pins are never acknowledged");
    int64_t took = cb_clock_mono_ms() - start;
    s_expect(r, CB_ERROR__CB_TIMEOUT,
             "no executor acknowledged pinning function 'slowfn' within", "pin timeout");
    CHECK(took >= pin_timeout_ms - 50 && took < pin_timeout_ms + 2000,
          "it failed after the pin timeout (%" PRId64 " ms)", took);
    CHECK(s_wait_count(EXEC_MESSAGE__BODY_UNPIN, "slowfn", 2, S_WAIT_MS),
          "the unacknowledged pins are undone");
    for (size_t f = 0; f < s_nfx; f++)
        s_fx[f].ack = ACK_OK;
}

static void s_check_reregister(void)
{
    s_clear_inboxes();
    unsigned holders = s_holders("incr");
    s_expect(s_register_function("incr", 2000), CB_ERROR__CB_OK, NULL, "re-register incr");
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_PIN, "incr", 2, S_WAIT_MS), "no reload pins");
    s_pump(100);
    for (size_t f = 0; f < s_nfx; f++) {
        const fx_t *fx = &s_fx[f];
        bool held = holders & (1u << f);
        size_t unpins = s_count(fx, EXEC_MESSAGE__BODY_UNPIN, "incr");
        size_t pins = s_count(fx, EXEC_MESSAGE__BODY_PIN, "incr");
        CHECK(unpins == 1 && pins == (held ? 1u : 0u),
              "re-registered incr: %s gets unpin%s", fx->id, held ? " then pin" : "");
        if (held) {
            size_t u = 0, p = 0;
            for (size_t i = 0; i < fx->ninbox; i++) {
                if (fx->inbox[i]->body_case == EXEC_MESSAGE__BODY_UNPIN)
                    u = i;
                if (fx->inbox[i]->body_case == EXEC_MESSAGE__BODY_PIN)
                    p = i;
            }
            ASSERT(u < p, "pin before unpin on %s", fx->id);
        }
    }
    CHECK(s_holders("incr") == holders, "incr is pinned where it was");
}

static void s_check_restarted_executor(void)
{
    s_clear_inboxes();
    fx_t *fx = &s_fx[2];
    s_fx_restart(fx);
    const char *fns[] = {"incr", "double", "sum"};
    for (size_t i = 0; i < 3; i++)
        CHECK(s_wait_count(EXEC_MESSAGE__BODY_PIN, fns[i], 1, S_WAIT_MS) &&
                  s_count(fx, EXEC_MESSAGE__BODY_PIN, fns[i]) == 1,
              "%s pinned again on %s, incarnation %" PRIu32 ", new address", fns[i], fx->id,
              fx->incarnation);
}

static void s_check_dead_executor(int dead_ms)
{
    //  n1/0 stops reporting: after dead_ms it is dead, and nothing goes there any more,
    //  not even calls that read what its node caches.
    fx_t *fx = &s_fx[2];
    fx->reporting = false;
    s_pump(dead_ms + 300);
    s_wait_executors(2, S_WAIT_MS, "executor silent for dead_ms");
    s_clear_inboxes();
    s_args_t big;
    s_args_init(&big, 0, "big");
    char id[32];
    for (int i = 0; i < 20; i++)
        s_call_function("solo", &big, 2, NULL, id);
    ASSERT(s_wait_count(EXEC_MESSAGE__BODY_CALL, NULL, 20, S_WAIT_MS), "calls not dispatched");
    CHECK(s_count(fx, EXEC_MESSAGE__BODY_CALL, NULL) == 0, "no call goes to the dead executor");
    //  The DAG's functions were pinned on it and on one n0 executor each: the repair pins
    //  them on the other n0 executor, so each has two live pins again.
    const char *fns[] = {"incr", "double", "sum"};
    int64_t end = cb_clock_mono_ms() + S_WAIT_MS;
    bool repaired = false;
    while (!repaired && cb_clock_mono_ms() < end) {
        s_pump(50);
        repaired = true;
        for (size_t i = 0; i < 3; i++)
            repaired = repaired && (s_holders(fns[i]) & 3) == 3;
    }
    CHECK(repaired, "repair: every pipeline function pinned on both live executors");
    s_call_dag("pipeline", NULL, 0, NULL, id);
    DagSchedule *s[3];
    fx_t *where[3];
    s_take_schedules(id, s, where, 3, "call_dag with a dead executor");
    for (size_t i = 0; i < 3; i++)
        ASSERT(where[i] != fx, "a schedule went to the dead executor");
    CHECK(true, "DAG call avoids the dead executor");
    s_free_schedules(s, 3);
    cb_bytes_fini(&big.value);
    fx->reporting = true;
    s_wait_executors(3, S_WAIT_MS, "the executor reports again");
}

static void s_check_delete_dag(void)
{
    s_expect(s_register_dag("chain", "double,solo|double>solo"), CB_ERROR__CB_OK, NULL,
             "register DAG chain");
    unsigned solo = s_holders("solo");
    CHECK(s_popcount(solo) == 2, "solo pinned on 2 executors");
    s_clear_inboxes();
    s_expect(s_delete(false, "chain"), CB_ERROR__CB_OK, NULL, "delete DAG chain");
    CHECK(s_wait_count(EXEC_MESSAGE__BODY_UNPIN, "solo", 2, S_WAIT_MS) && s_holders("solo") == 0,
          "solo unpinned everywhere");
    CHECK(s_count_all(EXEC_MESSAGE__BODY_UNPIN, "double") == 0,
          "double stays pinned (pipeline uses it)");
    char list[256];
    s_list(false, list, sizeof list);
    CHECK(strcmp(list, "pipeline") == 0, "list_dags after delete: %s", list);
    s_expect(s_delete(false, "chain"), CB_ERROR__CB_NO_SUCH_DAG, "DAG 'chain' is not registered",
             "delete chain again");
    s_expect(s_delete(true, "solo"), CB_ERROR__CB_OK, NULL, "delete solo (no DAG uses it now)");
}

static void s_check_malformed(void)
{
    const char garbage[] = "\xff\xff\xff\xff not a protobuf";
    s_send(s_requests, garbage, sizeof garbage);
    s_send(s_status, garbage, sizeof garbage);
    //  A report that decodes but makes no sense: an executor without id.
    ExecutorInfo info = EXECUTOR_INFO__INIT;
    info.address = "tcp://127.0.0.1:1";
    StatusReport r = STATUS_REPORT__INIT;
    r.body_case = STATUS_REPORT__BODY_EXECUTOR;
    r.executor = &info;
    s_send_report(&r);
    //  A request whose response address we would have to resolve: dropped.
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_STATUS;
    req.status = true;
    req.request_id = "bad-address";
    req.response_address = "tcp://localhost:1";
    size_t len = request__get_packed_size(&req);
    uint8_t buf[256];
    request__pack(&req, buf);
    s_send(s_requests, buf, len);
    Reply *st = s_status_request();
    CHECK(st->status->n_executors == 3, "malformed messages dropped; the scheduler still serves");
    reply__free_unpacked(st, NULL);
}

static int s_main(int dead_ms, int pin_timeout_ms)
{
    Reply *r = s_status_request();
    CHECK(r->status->n_executors == 0 && r->status->kvs_routing[0], "status: no executors, kvs %s",
          r->status->kvs_routing);
    reply__free_unpacked(r, NULL);
    char list[256];
    s_list(true, list, sizeof list);
    CHECK(!list[0], "no functions yet");
    s_list(false, list, sizeof list);
    CHECK(!list[0], "no DAGs yet");
    s_check_functions();

    s_expect(s_register_dag("pipeline", "incr,double,sum|incr>sum,double>sum"),
             CB_ERROR__CB_NO_RESOURCES, "no executor is alive", "register DAG without executors");
    char id[32];
    s_call_function("incr", NULL, 0, NULL, id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_NO_RESOURCES,
             "no executor is alive to run function 'incr'", "call without executors");

    //  A cache reports before any executor of its node: the node is known from then on.
    NodeInfo early = NODE_INFO__INIT;
    early.node = "n0";
    early.cache_address = "ipc:///tmp/sched-check-cache";
    StatusReport rep = STATUS_REPORT__INIT;
    rep.body_case = STATUS_REPORT__BODY_NODE;
    rep.node = &early;
    s_send_report(&rep);
    r = s_status_request();
    CHECK(r->status->n_nodes == 1 && strcmp(r->status->nodes[0]->node, "n0") == 0 &&
              strcmp(r->status->nodes[0]->cache_address, early.cache_address) == 0,
          "a cache's report before any executor's: node n0 with its cache address");
    reply__free_unpacked(r, NULL);

    s_fx_start("n0/0", "n0", NULL, 0);
    s_fx_start("n0/1", "n0", NULL, 0);
    s_fx_start("n1/0", "n1", NULL, 0);
    s_wait_executors(3, S_WAIT_MS, "three fake executors reported");

    s_check_dag_validation();
    s_check_register_dag();
    s_check_call_errors();
    s_check_call_function();
    s_check_call_dag();
    s_check_throughput();
    s_check_pin_failures(pin_timeout_ms);
    s_check_reregister();
    s_check_restarted_executor();
    s_check_dead_executor(dead_ms);
    s_check_delete_dag();
    s_check_malformed();
    return 0;
}

//  ---- modes list and restart ---------------------------------------------------------------

static int s_list_mode(const char *functions, const char *dags)
{
    char list[512];
    s_list(true, list, sizeof list);
    CHECK(strcmp(list, functions) == 0, "functions from the KVS: %s", list);
    s_list(false, list, sizeof list);
    CHECK(strcmp(list, dags) == 0, "DAGs from the KVS: %s", list);
    return 0;
}

static int s_restart(int dead_ms)
{
    //  The restarted scheduler knows functions and DAGs from the KVS, and where functions
    //  are pinned only from what executors report: n0/0 says it holds all three; n0/1
    //  holds nothing. The repair must pin each function once more, on n0/1 only.
    const char *held[] = {"incr", "double", "sum"};
    int64_t start = cb_clock_mono_ms();
    fx_t *a = s_fx_start("n0/0", "n0", held, 3);
    fx_t *b = s_fx_start("n0/1", "n0", NULL, 0);
    s_list_mode("broken,double,incr,slowfn,sum", "pipeline");
    for (size_t i = 0; i < 3; i++)
        CHECK(s_wait_count(EXEC_MESSAGE__BODY_PIN, held[i], 1, dead_ms + S_WAIT_MS) &&
                  s_count(b, EXEC_MESSAGE__BODY_PIN, held[i]) == 1,
              "%s pinned on n0/1 by the repair after %" PRId64 " ms", held[i],
              cb_clock_mono_ms() - start);
    s_pump(300);
    CHECK(s_count(a, EXEC_MESSAGE__BODY_PIN, NULL) == 0,
          "nothing pinned again on n0/0, which reported its pins");
    char id[32];
    s_call_dag("pipeline", NULL, 0, NULL, id);
    DagSchedule *s[3];
    fx_t *where[3];
    s_take_schedules(id, s, where, 3, "call_dag after a scheduler restart");
    CHECK(s_schedule_for(s, 3, "sum", NULL) && !s_schedule_for(s, 3, "sum", NULL)->begin,
          "the restarted scheduler dispatches the DAG");
    s_free_schedules(s, 3);
    return 0;
}

static int s_nokvs(void)
{
    Reply *r = s_status_request();
    CHECK(r->status->n_executors == 0, "status answers without a KVS");
    reply__free_unpacked(r, NULL);
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_LIST_FUNCTIONS;
    req.list_functions = true;
    s_expect(s_request(&req), CB_ERROR__CB_KVS,
             "cannot read functions and DAGs from the KVS yet", "list without a KVS");
    char id[32];
    s_call_function("incr", NULL, 0, NULL, id);
    s_expect(s_wait_reply(id, S_WAIT_MS), CB_ERROR__CB_KVS, "KVS", "call without a KVS");
    return 0;
}

//  ---- mode e2e: real executors -------------------------------------------------------------

static Reply *s_register_file(const char *name, const char *path)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *code = malloc(len > 0 ? (size_t)len : 1);
    ASSERT(len > 0 && fread(code, 1, (size_t)len, f) == (size_t)len, "cannot read %s", path);
    fclose(f);
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = (char *)name;
    blob.code = (ProtobufCBinaryData){(size_t)len, code};
    blob.abi_version = 1;
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_FUNCTION;
    req.register_function = &blob;
    Reply *r = s_request(&req);
    free(code);
    return r;
}

//  The int a call returned; fails on anything else.
static int64_t s_result_int(Reply *r, const char *what)
{
    ASSERT(r, "%s: no reply", what);
    ASSERT(r->error == CB_ERROR__CB_OK, "%s: %s (%s)", what, s_code(r->error), r->error_message);
    cb_value_t v;
    ASSERT(cb_value_decode(r->result.data, r->result.len, &v) == 0 && v.type == CB_VALUE_INT64,
           "%s: the result is not an int", what);
    int64_t x = v.i64;
    cb_value_fini(&v);
    reply__free_unpacked(r, NULL);
    return x;
}

static int s_e2e(const char *kvs_routing, const char *incr_so, const char *square_so)
{
    const int call_wait_ms = 10000 + S_WAIT_MS;     //  the default call timeout and a margin
    s_wait_executors(2, 15000, "two real executors reported");
    s_expect(s_register_file("e2e_incr", incr_so), CB_ERROR__CB_OK, NULL, "register incr.so");
    s_expect(s_register_file("e2e_square", square_so), CB_ERROR__CB_OK, NULL,
             "register square.so");
    s_args_t args;
    s_args_init(&args, 41, "");
    char id[32];
    s_call_function("e2e_incr", &args, 1, NULL, id);
    int64_t x = s_result_int(s_wait_reply(id, call_wait_ms), "call e2e_incr(41)");
    CHECK(x == 42, "e2e_incr(41) = %" PRId64 " on a real executor", x);

    s_expect(s_register_dag("e2e_dag", "e2e_incr,e2e_square|e2e_incr>e2e_square"),
             CB_ERROR__CB_OK, NULL, "register DAG e2e_incr -> e2e_square (real PinAcks)");
    Reply *st = s_status_request();
    size_t pins = 0;
    for (size_t i = 0; i < st->status->n_executors; i++)
        pins += st->status->executors[i]->n_pinned;
    reply__free_unpacked(st, NULL);
    CHECK(pins == 4, "both functions pinned on both executors (%zu pins)", pins);
    cb_bytes_fini(&args.value);
    s_args_init(&args, 3, "");
    s_dag_args_t dag_args = {"e2e_incr", &args, 1};
    s_call_dag("e2e_dag", &dag_args, 1, NULL, id);
    x = s_result_int(s_wait_reply(id, call_wait_ms), "call_dag e2e_dag(3)");
    CHECK(x == 16, "e2e_dag(3) = (3 + 1)^2 = %" PRId64, x);

    //  A result at an output key: the scheduler answers with the key, the executor PUTs.
    s_call_function("e2e_incr", &args, 1, "e2e_out", id);
    Reply *r = s_wait_reply(id, S_WAIT_MS);
    CHECK(r && r->error == CB_ERROR__CB_OK && strcmp(r->output_key, "e2e_out") == 0,
          "call with output key answered with the key");
    reply__free_unpacked(r, NULL);
    cb_kvs_config_t kc = {kvs_routing, NULL, 2000, 0};
    cb_kvs_t *kvs = cb_kvs_new(&kc);
    ASSERT(kvs, "cannot make a KVS client for %s", kvs_routing);
    lat_t v = {.kind = LAT_NONE};
    int rc = -ENOENT;
    int64_t end = cb_clock_mono_ms() + call_wait_ms;
    while ((rc = cb_kvs_get(kvs, "e2e_out", &v)) == -ENOENT && cb_clock_mono_ms() < end)
        s_pump(20);
    ASSERT(rc == 0 && v.kind == LAT_LWW, "e2e_out: %s", cb_kvs_last_error(kvs));
    cb_value_t val;
    ASSERT(cb_value_decode(v.u.lww.value.data, v.u.lww.value.len, &val) == 0 &&
               val.type == CB_VALUE_INT64,
           "e2e_out does not hold an int");
    CHECK(val.i64 == 4, "e2e_out holds e2e_incr(3) = %" PRId64, val.i64);
    cb_value_fini(&val);
    lat_fini(&v);
    cb_kvs_destroy(&kvs);
    cb_bytes_fini(&args.value);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sched_check main|list|restart REQUESTS STATUS ...\n");
        return 2;
    }
    s_connect(argv[2], argv[3]);
    int rc = 2;
    if (strcmp(argv[1], "main") == 0 && argc == 6)
        rc = s_main(atoi(argv[4]), atoi(argv[5]));
    else if (strcmp(argv[1], "list") == 0 && argc == 6)
        rc = s_list_mode(argv[4], argv[5]);
    else if (strcmp(argv[1], "restart") == 0 && argc == 5)
        rc = s_restart(atoi(argv[4]));
    else if (strcmp(argv[1], "nokvs") == 0 && argc == 4)
        rc = s_nokvs();
    else if (strcmp(argv[1], "e2e") == 0 && argc == 7)
        rc = s_e2e(argv[4], argv[5], argv[6]);
    else
        fprintf(stderr, "sched_check: bad arguments\n");
    s_disconnect();
    return rc;
}
