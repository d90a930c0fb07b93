//  client/faas.c: the C client library of the FaaS runtime (see faas.h for the contract).
//
//  Every operation is one Request pushed to the scheduler and one Reply awaited on our PULL
//  socket, matched by request id. A call whose result goes straight back is answered by the
//  executor that ran the DAG's sink (or by whoever failed it), not by the scheduler: that is
//  why the reply socket is ours and bound, and every executor connects to it. Nothing here
//  blocks without a deadline: a cluster that is down, a lost reply or a hung function all end
//  in -ETIMEDOUT with a message that says what was awaited and from where.
//  This file and the KVS client are the only client files that see protobuf types.
//  SPDX-License-Identifier: Apache-2.0
#include "client/faas.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client/kvs.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "lattices/lattice.h"

#define S_DEFAULT_TIMEOUT_MS 5000
//  What the executor says when a repeatable-read request's branches diverged (issue 4).
#define S_RR_CONFLICT "parallel branches of this request read different versions"
//  Its causal counterpart (executor/fnlib.h, EXEC_CAUSAL_SIBLINGS).
#define S_CAUSAL_SIBLINGS "the request depends on concurrent versions (siblings) of"
#define S_MAX_TIMEOUT_MS 3600000
#define S_MAX_ADDRESS_LEN 255
#define S_MAX_NAME_LEN 128
//  Replies larger than this are refused by ZeroMQ before they are allocated.
#define S_MAX_REPLY_BYTES (256LL << 20)
//  Futures: the first poll at once, the next after 100 us, then doubling up to 50 ms, so a
//  result that comes within a millisecond is seen within about one KVS round trip, and a
//  slow one costs few requests.
#define S_FUTURE_FIRST_POLL_US 100
#define S_FUTURE_MAX_POLL_US 50000
//  Added to the wait of a DAG registration: the scheduler's bound on pin acknowledgements
//  (cb-scheduler --pin-timeout-ms, 5000 by default).
#define S_PIN_MARGIN_MS 6000

struct _cb_faas_t {
    void *ctx;                  //  our own ZeroMQ context: one io thread
    void *pull;                 //  every Reply comes here
    void *push;                 //  requests to the scheduler
    char *response_address;     //  "tcp://ip:port" of pull
    char *scheduler;            //  owned
    char *kvs_routing;          //  owned; NULL until configured or learned from status
    char *bind_ip;              //  owned
    int timeout_ms;
    cb_kvs_t *kvs;              //  made on first use
    char id_prefix[24];         //  random per client: ids of other clients never match ours
    uint64_t counter;
    uint64_t discarded;         //  replies that matched no outstanding request
    cb_faas_code_t code;        //  CbError of the last failure, CB_FAAS_OK if ours
    char error[1024];           //  text of the last failure; "" after a success
};

//  --------------------------------------------------------------------------------------
//  Errors

int cb_faas_errno(cb_faas_code_t code)
{
    switch (code) {
    case CB_FAAS_OK:
        return 0;
    case CB_FAAS_NO_SUCH_FUNCTION:
    case CB_FAAS_NO_SUCH_DAG:
        return -ENOENT;
    case CB_FAAS_INVALID:
        return -EINVAL;
    case CB_FAAS_ALREADY_EXISTS:
        return -EEXIST;
    case CB_FAAS_NO_RESOURCES:
        return -EBUSY;
    case CB_FAAS_TIMEOUT:
        return -ETIMEDOUT;
    case CB_FAAS_FUNCTION_FAILED:
        return -EREMOTEIO;
    case CB_FAAS_FUNCTION_CRASHED:
        return -EOWNERDEAD;
    case CB_FAAS_LOAD_FAILED:
        return -ENOEXEC;
    case CB_FAAS_UNTRUSTED:
        return -EPERM;
    case CB_FAAS_TOO_LARGE:
        return -EMSGSIZE;
    case CB_FAAS_KVS:
        return -EHOSTUNREACH;
    case CB_FAAS_INTERNAL:
        return -EIO;
    }
    return -EPROTO;
}

const char *cb_faas_code_name(cb_faas_code_t code)
{
    static const char *const names[] = {
        "OK", "NO_SUCH_FUNCTION", "NO_SUCH_DAG", "INVALID", "ALREADY_EXISTS",
        "NO_RESOURCES", "TIMEOUT", "FUNCTION_FAILED", "FUNCTION_CRASHED", "LOAD_FAILED",
        "UNTRUSTED", "TOO_LARGE", "KVS", "INTERNAL",
    };
    if ((unsigned)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN";
}

//  Words a user can act on when the cluster sent none.
static const char *s_code_words(cb_faas_code_t code)
{
    switch (code) {
    case CB_FAAS_NO_SUCH_FUNCTION:
        return "no such function";
    case CB_FAAS_NO_SUCH_DAG:
        return "no such DAG";
    case CB_FAAS_INVALID:
        return "invalid request";
    case CB_FAAS_ALREADY_EXISTS:
        return "already exists";
    case CB_FAAS_NO_RESOURCES:
        return "no executor available";
    case CB_FAAS_TIMEOUT:
        return "timed out";
    case CB_FAAS_FUNCTION_FAILED:
        return "the function failed";
    case CB_FAAS_FUNCTION_CRASHED:
        return "the function crashed";
    case CB_FAAS_LOAD_FAILED:
        return "the shared object could not be loaded";
    case CB_FAAS_UNTRUSTED:
        return "the code is unsigned or signed by an untrusted key";
    case CB_FAAS_TOO_LARGE:
        return "too large";
    case CB_FAAS_KVS:
        return "the KVS did not answer";
    default:
        return "internal error";
    }
}

static void s_set_error(cb_faas_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_set_error(cb_faas_t *self, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, args);
    va_end(args);
    //  Messages reach terminals: a peer's control bytes must not.
    for (char *p = self->error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void s_clear_error(cb_faas_t *self)
{
    self->error[0] = '\0';
    self->code = CB_FAAS_OK;
}

const char *cb_faas_last_error(const cb_faas_t *self)
{
    return self->error;
}

cb_faas_code_t cb_faas_last_code(const cb_faas_t *self)
{
    return self->code;
}

//  --------------------------------------------------------------------------------------
//  Small pure helpers

bool cb_faas_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > S_MAX_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
            return false;
    return true;
}

static int s_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Decodes exactly 2 x len hex digits of text (whitespace around them ignored).
static int s_hex_decode(const char *text, size_t text_len, uint8_t *out, size_t len)
{
    size_t a = 0, b = text_len;
    while (a < b && isspace((unsigned char)text[a]))
        a++;
    while (b > a && isspace((unsigned char)text[b - 1]))
        b--;
    if (b - a != 2 * len)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = s_hex_digit(text[a + 2 * i]), lo = s_hex_digit(text[a + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int cb_faas_key_read(const char *path, uint8_t *out, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf);
    int err = n < 0 ? -errno : 0;
    close(fd);
    if (err)
        return err;
    int rc = s_hex_decode(buf, (size_t)n, out, len);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

//  True if code is an ELF shared object (ET_DYN), the only kind an executor can dlopen.
static bool s_is_elf_so(const uint8_t *code, size_t len)
{
    if (len < 64 || memcmp(code, "\x7f" "ELF", 4) != 0)
        return false;
    unsigned type = code[5] == 2 ? (unsigned)code[16] << 8 | code[17]     //  big endian
                                 : (unsigned)code[17] << 8 | code[16];
    return type == 3;
}

//  The signed message: name || 0x00 || code (docs/faas-design.md). Caller owns *out.
static void s_signed_message(const char *name, const void *code, size_t len, cb_bytes_t *out)
{
    size_t n = strlen(name);
    out->len = n + 1 + len;
    out->data = cb_malloc(out->len);
    memcpy(out->data, name, n);
    out->data[n] = 0;
    memcpy(out->data + n + 1, code, len);
}

static void s_sodium_init(void)
{
    //  Thread safe and idempotent; fails only without an entropy source, which getrandom
    //  (used below it) would have reported already.
    int rc = sodium_init();
    assert(rc >= 0);
    (void)rc;
}

void cb_faas_names_fini(cb_faas_names_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++)
        cb_free(self->names[i]);
    cb_free(self->names);
    self->names = NULL;
    self->len = 0;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void s_names_copy(cb_faas_names_t *out, char *const *names, size_t n)
{
    out->len = n;
    out->names = n ? cb_calloc(n, sizeof *out->names) : NULL;
    for (size_t i = 0; i < n; i++)
        out->names[i] = cb_strdup(names[i] ? names[i] : "");
    if (n > 1)
        qsort(out->names, n, sizeof *out->names, s_cmp_str);
}

void cb_faas_result_fini(cb_faas_result_t *self)
{
    if (!self)
        return;
    cb_value_fini(&self->value);
    cb_free(self->output_key);
    for (size_t i = 0; i < self->n_logs; i++)
        cb_free(self->logs[i]);
    cb_free(self->logs);
    memset(self, 0, sizeof *self);
}

void cb_faas_status_fini(cb_faas_status_t *self)
{
    if (!self)
        return;
    for (size_t i = 0; i < self->n_executors; i++) {
        cb_faas_executor_t *e = &self->executors[i];
        cb_free(e->id);
        cb_free(e->address);
        cb_free(e->node);
        cb_faas_names_fini(&e->pinned);
    }
    cb_free(self->executors);
    for (size_t i = 0; i < self->n_nodes; i++) {
        cb_free(self->nodes[i].node);
        cb_free(self->nodes[i].cache_address);
    }
    cb_free(self->nodes);
    cb_faas_names_fini(&self->functions);
    cb_faas_names_fini(&self->dags);
    cb_free(self->kvs_routing);
    memset(self, 0, sizeof *self);
}

static int s_cmp_executor(const void *a, const void *b)
{
    return strcmp(((const cb_faas_executor_t *)a)->id, ((const cb_faas_executor_t *)b)->id);
}

static int s_cmp_node(const void *a, const void *b)
{
    return strcmp(((const cb_faas_node_t *)a)->node, ((const cb_faas_node_t *)b)->node);
}

static char *s_dup(const char *s)
{
    return cb_strdup(s ? s : "");
}

//  ClusterStatus (borrowed) -> *out (zeroed by the caller).
static void s_status_copy(cb_faas_status_t *out, const ClusterStatus *st)
{
    out->kvs_routing = s_dup(st->kvs_routing);
    out->n_executors = st->n_executors;
    out->executors = st->n_executors ? cb_calloc(st->n_executors, sizeof *out->executors) : NULL;
    for (size_t i = 0; i < st->n_executors; i++) {
        const ExecutorInfo *in = st->executors[i];
        cb_faas_executor_t *e = &out->executors[i];
        e->id = s_dup(in->id);
        e->address = s_dup(in->address);
        e->node = s_dup(in->node);
        s_names_copy(&e->pinned, in->pinned, in->n_pinned);
        e->utilization = in->utilization;
        e->queued = in->queued;
        e->calls = in->calls;
        e->incarnation = in->incarnation;
    }
    if (out->n_executors > 1)
        qsort(out->executors, out->n_executors, sizeof *out->executors, s_cmp_executor);
    out->n_nodes = st->n_nodes;
    out->nodes = st->n_nodes ? cb_calloc(st->n_nodes, sizeof *out->nodes) : NULL;
    for (size_t i = 0; i < st->n_nodes; i++) {
        out->nodes[i].node = s_dup(st->nodes[i]->node);
        out->nodes[i].cache_address = s_dup(st->nodes[i]->cache_address);
        out->nodes[i].cached_keys = st->nodes[i]->cached_keys;
        out->nodes[i].cached_bytes = st->nodes[i]->cached_bytes;
    }
    if (out->n_nodes > 1)
        qsort(out->nodes, out->n_nodes, sizeof *out->nodes, s_cmp_node);
    s_names_copy(&out->functions, st->functions, st->n_functions);
    s_names_copy(&out->dags, st->dags, st->n_dags);
}

//  --------------------------------------------------------------------------------------
//  Construction

static bool s_address_ok(const char *addr)
{
    size_t len = addr ? strlen(addr) : 0;
    return len > 6 && len <= S_MAX_ADDRESS_LEN
        && (!strncmp(addr, "tcp://", 6) || !strncmp(addr, "ipc://", 6));
}

static uint64_t s_random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)cb_clock_wall_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)cb_clock_mono_us();
    return r;
}

cb_faas_t *cb_faas_new(const cb_faas_config_t *config)
{
    const char *bind_ip = config && config->bind_ip ? config->bind_ip : "127.0.0.1";
    struct in_addr in;
    if (!config || !s_address_ok(config->scheduler)
        || (config->kvs_routing && !s_address_ok(config->kvs_routing))
        || inet_pton(AF_INET, bind_ip, &in) != 1 || in.s_addr == htonl(INADDR_ANY)
        || config->timeout_ms > S_MAX_TIMEOUT_MS) {
        errno = EINVAL;
        return NULL;
    }
    s_sodium_init();
    cb_faas_t *self = cb_calloc(1, sizeof *self);
    self->scheduler = cb_strdup(config->scheduler);
    self->kvs_routing = config->kvs_routing ? cb_strdup(config->kvs_routing) : NULL;
    self->bind_ip = cb_strdup(bind_ip);
    self->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : S_DEFAULT_TIMEOUT_MS;
    snprintf(self->id_prefix, sizeof self->id_prefix, "%016llx", (unsigned long long)s_random64());

    int err = 0, zero = 0;
    int64_t max_reply = S_MAX_REPLY_BYTES;
    char endpoint[300];
    size_t len = sizeof endpoint;
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        goto fail;
    zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 1);
    self->pull = zmq_socket(self->ctx, ZMQ_PULL);
    self->push = zmq_socket(self->ctx, ZMQ_PUSH);
    if (!self->pull || !self->push)
        goto fail;
    zmq_setsockopt(self->pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->pull, ZMQ_MAXMSGSIZE, &max_reply, sizeof max_reply);
    zmq_setsockopt(self->push, ZMQ_LINGER, &zero, sizeof zero);
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", bind_ip);
    if (zmq_bind(self->pull, endpoint) != 0
        || zmq_getsockopt(self->pull, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        goto fail;
    self->response_address = cb_strdup(endpoint);
    if (zmq_connect(self->push, self->scheduler) != 0)
        goto fail;
    return self;
fail:
    err = errno ? errno : EIO;
    cb_faas_destroy(&self);
    errno = err;
    return NULL;
}

void cb_faas_destroy(cb_faas_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cb_faas_t *self = *self_p;
    cb_kvs_destroy(&self->kvs);
    if (self->push)
        zmq_close(self->push);
    if (self->pull)
        zmq_close(self->pull);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    cb_free(self->response_address);
    cb_free(self->scheduler);
    cb_free(self->kvs_routing);
    cb_free(self->bind_ip);
    cb_free(self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------
//  Request and reply

static long s_remaining(int64_t deadline)
{
    int64_t left = deadline - cb_clock_mono_ms();
    return left > 0 ? (long)left : 0;
}

//  Sends *req (borrowed; request_id and response_address are filled here, id into id_out).
//  0, -EMSGSIZE (too large, nothing sent), -ETIMEDOUT (no room before deadline).
static int s_send(cb_faas_t *self, Request *req, char *id_out, size_t id_cap, int64_t deadline)
{
    snprintf(id_out, id_cap, "%s-%llu", self->id_prefix, (unsigned long long)++self->counter);
    req->request_id = id_out;
    req->response_address = self->response_address;
    size_t size = request__get_packed_size(req);
    if (size > CB_FAAS_MAX_REQUEST_BYTES) {
        s_set_error(self, "request of %zu bytes is over the limit of %u bytes", size,
                    CB_FAAS_MAX_REQUEST_BYTES);
        return -EMSGSIZE;
    }
    uint8_t *buf = cb_malloc(size ? size : 1);
    request__pack(req, buf);
    int rc = 0;
    for (;;) {
        if (zmq_send(self->push, buf, size, ZMQ_DONTWAIT) >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            s_set_error(self, "cannot send to the scheduler at %s: %s", self->scheduler,
                        zmq_strerror(-rc));
            break;
        }
        long left = s_remaining(deadline);
        if (!left) {
            rc = -ETIMEDOUT;
            s_set_error(self, "the scheduler at %s takes no requests: is the cluster up? "
                        "(cb status)", self->scheduler);
            break;
        }
        zmq_pollitem_t item = {self->push, 0, ZMQ_POLLOUT, 0};
        zmq_poll(&item, 1, left);
    }
    cb_free(buf);
    return rc;
}

//  Waits until deadline for the Reply to id. On 0, caller owns *reply_p
//  (reply__free_unpacked). -ETIMEDOUT (no error text set: the caller knows what it awaited).
static int s_wait(cb_faas_t *self, const char *id, int64_t deadline, Reply **reply_p)
{
    *reply_p = NULL;
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->pull, ZMQ_DONTWAIT) >= 0) {
            Reply *reply = reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
            zmq_msg_close(&msg);
            if (reply && reply->request_id && !strcmp(reply->request_id, id)) {
                *reply_p = reply;
                return 0;
            }
            //  Undecodable, or the late answer to a request we gave up on.
            self->discarded++;
            if (reply)
                reply__free_unpacked(reply, NULL);
            continue;
        }
        zmq_msg_close(&msg);
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        long left = s_remaining(deadline);
        if (!left)
            return -ETIMEDOUT;
        zmq_pollitem_t item = {self->pull, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, left);
    }
}

//  The error of a Reply (borrowed) as our errno and text; what names the operation
//  ("register incr") for the message.
static int s_reply_error(cb_faas_t *self, const Reply *reply, const char *what)
{
    if (reply->error == CB_ERROR__CB_OK)
        return 0;
    self->code = (cb_faas_code_t)reply->error;
    const char *msg = reply->error_message && *reply->error_message
                          ? reply->error_message : s_code_words(self->code);
    s_set_error(self, "%s: %s", what, msg);
    return cb_faas_errno(self->code);
}

//  One round trip: sends *req, waits wait_ms for its Reply. On 0 caller owns *reply_p, whose
//  error is already turned into a return value (the Reply is kept for its logs).
static int s_round_trip(cb_faas_t *self, Request *req, int wait_ms, const char *what,
                        Reply **reply_p)
{
    s_clear_error(self);
    *reply_p = NULL;
    char id[64];
    int64_t deadline = cb_clock_mono_ms() + wait_ms;
    int rc = s_send(self, req, id, sizeof id, deadline);
    if (rc)
        return rc;
    rc = s_wait(self, id, deadline, reply_p);
    if (rc == -ETIMEDOUT)
        s_set_error(self, "%s: no answer within %d ms from the scheduler at %s: is the "
                    "cluster up? (cb status)", what, wait_ms, self->scheduler);
    else if (rc)
        s_set_error(self, "%s: %s", what, zmq_strerror(-rc));
    if (rc)
        return rc;
    return s_reply_error(self, *reply_p, what);
}

//  A request whose only answer is OK or an error.
static int s_simple(cb_faas_t *self, Request *req, int wait_ms, const char *what)
{
    Reply *reply = NULL;
    int rc = s_round_trip(self, req, wait_ms, what, &reply);
    if (reply)
        reply__free_unpacked(reply, NULL);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Functions and DAGs

int cb_faas_register_function(cb_faas_t *self, const char *name, const void *code, size_t len,
                              const uint8_t *secret_key)
{
    s_clear_error(self);
    if (!cb_faas_name_valid(name)) {
        s_set_error(self, "invalid function name '%.140s' (1..128 of A-Z a-z 0-9 _ . -)",
                    name ? name : "");
        return -EINVAL;
    }
    if (!code || !len) {
        s_set_error(self, "register %s: the code is empty", name);
        return -EINVAL;
    }
    if (len > CB_FAAS_MAX_REQUEST_BYTES - 4096) {
        s_set_error(self, "register %s: %zu bytes of code is over the limit of %u", name, len,
                    CB_FAAS_MAX_REQUEST_BYTES - 4096);
        return -EMSGSIZE;
    }
    uint8_t sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
    FunctionBlob blob = FUNCTION_BLOB__INIT;
    blob.name = (char *)name;
    blob.code.data = (uint8_t *)code;
    blob.code.len = len;
    blob.version = cb_clock_lww_now();
    blob.abi_version = 1;       //  executor/function.h ABI version 1; executors check the .so's own
    if (secret_key) {
        cb_bytes_t msg = {0};
        s_signed_message(name, code, len, &msg);
        crypto_sign_detached(sig, NULL, msg.data, msg.len, secret_key);
        crypto_sign_ed25519_sk_to_pk(pk, secret_key);
        cb_bytes_fini(&msg);
        blob.signature.data = sig;
        blob.signature.len = sizeof sig;
        blob.public_key.data = pk;
        blob.public_key.len = sizeof pk;
    }
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_FUNCTION;
    req.register_function = &blob;
    char what[200];
    snprintf(what, sizeof what, "register %s", name);
    return s_simple(self, &req, self->timeout_ms, what);
}

int cb_faas_register_file(cb_faas_t *self, const char *name, const char *path,
                          const uint8_t *secret_key)
{
    s_clear_error(self);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        s_set_error(self, "cannot open %.300s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        s_set_error(self, "%.300s is not a regular file", path);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > CB_FAAS_MAX_REQUEST_BYTES - 4096) {
        close(fd);
        s_set_error(self, "%.300s: %lld bytes is over the limit of %u", path,
                    (long long)st.st_size, CB_FAAS_MAX_REQUEST_BYTES - 4096);
        return -EMSGSIZE;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *code = cb_malloc(len ? len : 1);
    while (got < len) {
        ssize_t n = read(fd, code + got, len - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    int rc;
    if (got != len) {
        s_set_error(self, "cannot read %.300s", path);
        rc = -EIO;
    } else if (!s_is_elf_so(code, len)) {
        s_set_error(self, "%.300s is not an ELF shared object (build a function with "
                    "cc -shared -fPIC -I<repo> f.c -o f.so)", path);
        rc = -ENOEXEC;
    } else {
        rc = cb_faas_register_function(self, name, code, len, secret_key);
    }
    cb_free(code);
    return rc;
}

int cb_faas_delete_function(cb_faas_t *self, const char *name)
{
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_DELETE_FUNCTION;
    req.delete_function = (char *)(name ? name : "");
    char what[200];
    snprintf(what, sizeof what, "delete %.140s", req.delete_function);
    return s_simple(self, &req, self->timeout_ms, what);
}

static int s_list(cb_faas_t *self, bool dags, cb_faas_names_t *out)
{
    memset(out, 0, sizeof *out);
    Request req = REQUEST__INIT;
    if (dags) {
        req.op_case = REQUEST__OP_LIST_DAGS;
        req.list_dags = 1;
    } else {
        req.op_case = REQUEST__OP_LIST_FUNCTIONS;
        req.list_functions = 1;
    }
    Reply *reply = NULL;
    int rc = s_round_trip(self, &req, self->timeout_ms, dags ? "list DAGs" : "list functions",
                          &reply);
    if (rc == 0)
        s_names_copy(out, reply->names, reply->n_names);
    if (reply)
        reply__free_unpacked(reply, NULL);
    return rc;
}

int cb_faas_list_functions(cb_faas_t *self, cb_faas_names_t *out)
{
    return s_list(self, false, out);
}

int cb_faas_list_dags(cb_faas_t *self, cb_faas_names_t *out)
{
    return s_list(self, true, out);
}

int cb_faas_register_dag(cb_faas_t *self, const cb_faas_dag_t *dag)
{
    s_clear_error(self);
    if (!dag || !cb_faas_name_valid(dag->name)) {
        s_set_error(self, "invalid DAG name '%.140s' (1..128 of A-Z a-z 0-9 _ . -)",
                    dag && dag->name ? dag->name : "");
        return -EINVAL;
    }
    DagSpec spec = DAG_SPEC__INIT;
    spec.name = (char *)dag->name;
    spec.n_functions = dag->n_functions;
    spec.functions = (char **)dag->functions;
    DagEdge *edges = dag->n_edges ? cb_calloc(dag->n_edges, sizeof *edges) : NULL;
    DagEdge **edge_ps = dag->n_edges ? cb_calloc(dag->n_edges, sizeof *edge_ps) : NULL;
    for (size_t i = 0; i < dag->n_edges; i++) {
        dag_edge__init(&edges[i]);
        edges[i].from = (char *)(dag->edges[i].from ? dag->edges[i].from : "");
        edges[i].to = (char *)(dag->edges[i].to ? dag->edges[i].to : "");
        edge_ps[i] = &edges[i];
    }
    spec.n_edges = dag->n_edges;
    spec.edges = edge_ps;
    for (size_t i = 0; i < dag->n_functions; i++)
        if (!dag->functions[i]) {
            cb_free(edges);
            cb_free(edge_ps);
            s_set_error(self, "DAG %s: function %zu has no name", dag->name, i);
            return -EINVAL;
        }
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_REGISTER_DAG;
    req.register_dag = &spec;
    char what[200];
    snprintf(what, sizeof what, "create DAG %s", dag->name);
    //  The scheduler pins every function before it answers, waiting (bounded) for the
    //  executors to load the code: allow for that wait on top of ours.
    int rc = s_simple(self, &req, self->timeout_ms + S_PIN_MARGIN_MS, what);
    cb_free(edges);
    cb_free(edge_ps);
    return rc;
}

int cb_faas_delete_dag(cb_faas_t *self, const char *name)
{
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_DELETE_DAG;
    req.delete_dag = (char *)(name ? name : "");
    char what[200];
    snprintf(what, sizeof what, "delete DAG %.140s", req.delete_dag);
    return s_simple(self, &req, self->timeout_ms, what);
}

//  --------------------------------------------------------------------------------------
//  Calls

//  Protobuf Args built from ours; everything allocated here, values encoded.
typedef struct {
    Arg *args;
    Arg **ptrs;
    cb_bytes_t *values;
    size_t n;
} s_args_t;

static int s_args_build(cb_faas_t *self, s_args_t *out, const cb_faas_arg_t *args, size_t n)
{
    memset(out, 0, sizeof *out);
    if (n && !args) {
        s_set_error(self, "arguments missing");
        return -EINVAL;
    }
    out->n = n;
    out->args = n ? cb_calloc(n, sizeof *out->args) : NULL;
    out->ptrs = n ? cb_calloc(n, sizeof *out->ptrs) : NULL;
    out->values = n ? cb_calloc(n, sizeof *out->values) : NULL;
    for (size_t i = 0; i < n; i++) {
        arg__init(&out->args[i]);
        out->ptrs[i] = &out->args[i];
        if (args[i].ref) {
            if (!*args[i].ref) {
                s_set_error(self, "argument %zu: empty reference key", i + 1);
                return -EINVAL;
            }
            out->args[i].ref = (char *)args[i].ref;
        } else if (args[i].value) {
            cb_value_encode(args[i].value, &out->values[i]);
            out->args[i].value.data = out->values[i].data;
            out->args[i].value.len = out->values[i].len;
        } else {
            s_set_error(self, "argument %zu has neither a value nor a reference", i + 1);
            return -EINVAL;
        }
    }
    return 0;
}

static void s_args_fini(s_args_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        cb_bytes_fini(&self->values[i]);
    cb_free(self->values);
    cb_free(self->ptrs);
    cb_free(self->args);
    memset(self, 0, sizeof *self);
}

static int s_opts_check(cb_faas_t *self, const cb_faas_call_opts_t *opts, int *timeout_ms)
{
    *timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CB_FAAS_DEFAULT_CALL_TIMEOUT_MS;
    if (*timeout_ms > S_MAX_TIMEOUT_MS) {
        s_set_error(self, "call timeout %d ms is over one hour", *timeout_ms);
        return -EINVAL;
    }
    if (opts && opts->output_key && !*opts->output_key) {
        s_set_error(self, "empty output key");
        return -EINVAL;
    }
    if (opts && (opts->consistency < CB_FAAS_LWW || opts->consistency > CB_FAAS_MULTI_CAUSAL)) {
        s_set_error(self, "unknown consistency level %d", (int)opts->consistency);
        return -EINVAL;
    }
    return 0;
}

//  Turns the Reply of a call (borrowed) into *out: result or future key, and the logs.
static int s_call_result(cb_faas_t *self, int rc, const Reply *reply, const char *what,
                         cb_faas_result_t *out)
{
    if (reply && reply->n_logs) {
        out->logs = cb_calloc(reply->n_logs, sizeof *out->logs);
        for (size_t i = 0; i < reply->n_logs; i++)
            out->logs[i] = s_dup(reply->logs[i]);
        out->n_logs = reply->n_logs;
    }
    if (rc)
        return rc;
    if (reply->output_key && *reply->output_key) {
        out->output_key = cb_strdup(reply->output_key);
        return 0;
    }
    if (cb_value_decode(reply->result.data, reply->result.len, &out->value) != 0) {
        memset(&out->value, 0, sizeof out->value);
        s_set_error(self, "%s: the result is not a valid cb value", what);
        return -EPROTO;
    }
    if (out->value.type == CB_VALUE_ERROR) {
        //  A failure reported as a value rather than as a CbError: still a failure.
        self->code = CB_FAAS_FUNCTION_FAILED;
        s_set_error(self, "%s: %.*s", what, (int)(out->value.bytes.len > 900 ? 900 : out->value.bytes.len),
                    out->value.bytes.data ? (const char *)out->value.bytes.data : "");
        cb_value_fini(&out->value);
        return -EREMOTEIO;
    }
    return 0;
}

//  Sends a call request and waits for its result (or, with an output key, for the future).
static int s_call(cb_faas_t *self, Request *req, int timeout_ms, bool future, const char *what,
                  cb_faas_result_t *out)
{
    //  A future is answered by the scheduler once placed; a direct call by the executor
    //  after the run, so the wait covers the run plus the way there and back.
    int wait_ms = future ? self->timeout_ms : timeout_ms + CB_FAAS_CALL_MARGIN_MS;
    s_clear_error(self);
    char id[64];
    int64_t deadline = cb_clock_mono_ms() + wait_ms;
    int rc = s_send(self, req, id, sizeof id, deadline);
    if (rc)
        return rc;
    Reply *reply = NULL;
    rc = s_wait(self, id, deadline, &reply);
    if (rc == -ETIMEDOUT)
        s_set_error(self, "%s: no %s within %d ms (call timeout %d ms + %d ms margin): is the "
                    "cluster up? (cb status)", what, future ? "answer" : "result", wait_ms,
                    timeout_ms, future ? 0 : CB_FAAS_CALL_MARGIN_MS);
    else if (rc)
        s_set_error(self, "%s: %s", what, zmq_strerror(-rc));
    else
        rc = s_reply_error(self, reply, what);
    rc = s_call_result(self, rc, reply, what, out);
    if (reply)
        reply__free_unpacked(reply, NULL);
    return rc;
}

int cb_faas_call_function(cb_faas_t *self, const char *name, const cb_faas_arg_t *args,
                          size_t n, const cb_faas_call_opts_t *opts, cb_faas_result_t *out)
{
    memset(out, 0, sizeof *out);
    s_clear_error(self);
    int timeout_ms;
    if (!cb_faas_name_valid(name)) {
        s_set_error(self, "invalid function name '%.140s'", name ? name : "");
        return -EINVAL;
    }
    int rc = s_opts_check(self, opts, &timeout_ms);
    if (rc)
        return rc;
    s_args_t built;
    rc = s_args_build(self, &built, args, n);
    if (rc) {
        s_args_fini(&built);
        return rc;
    }
    FunctionCall call = FUNCTION_CALL__INIT;
    call.function = (char *)name;
    call.n_args = n;
    call.args = built.ptrs;
    call.output_key = (char *)(opts && opts->output_key ? opts->output_key : "");
    call.consistency = (Consistency)(opts ? opts->consistency : CB_FAAS_LWW);
    call.timeout_ms = (uint32_t)timeout_ms;
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_CALL_FUNCTION;
    req.call_function = &call;
    char what[200];
    snprintf(what, sizeof what, "call %s", name);
    rc = s_call(self, &req, timeout_ms, opts && opts->output_key, what, out);
    s_args_fini(&built);
    return rc;
}

static void s_sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int cb_faas_call_dag(cb_faas_t *self, const char *name, const cb_faas_fn_args_t *fn_args,
                     size_t n, const cb_faas_call_opts_t *opts, cb_faas_result_t *out)
{
    memset(out, 0, sizeof *out);
    s_clear_error(self);
    int timeout_ms;
    if (!cb_faas_name_valid(name)) {
        s_set_error(self, "invalid DAG name '%.140s'", name ? name : "");
        return -EINVAL;
    }
    int rc = s_opts_check(self, opts, &timeout_ms);
    if (rc)
        return rc;
    if (n && !fn_args) {
        s_set_error(self, "call DAG %s: arguments missing", name);
        return -EINVAL;
    }
    s_args_t *built = n ? cb_calloc(n, sizeof *built) : NULL;
    ArgList *lists = n ? cb_calloc(n, sizeof *lists) : NULL;
    DagCall__ArgsEntry *entries = n ? cb_calloc(n, sizeof *entries) : NULL;
    DagCall__ArgsEntry **entry_ps = n ? cb_calloc(n, sizeof *entry_ps) : NULL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!cb_faas_name_valid(fn_args[i].function)) {
            s_set_error(self, "call DAG %s: invalid function name '%.140s' for arguments", name,
                        fn_args[i].function ? fn_args[i].function : "");
            rc = -EINVAL;
            break;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(fn_args[j].function, fn_args[i].function)) {
                s_set_error(self, "call DAG %s: arguments of %s given twice (give them in one "
                            "list)", name, fn_args[i].function);
                rc = -EINVAL;
            }
        if (rc == 0)
            rc = s_args_build(self, &built[i], fn_args[i].args, fn_args[i].n);
        arg_list__init(&lists[i]);
        lists[i].n_args = built[i].n;
        lists[i].args = built[i].ptrs;
        dag_call__args_entry__init(&entries[i]);
        entries[i].key = (char *)fn_args[i].function;
        entries[i].value = &lists[i];
        entry_ps[i] = &entries[i];
    }
    if (rc == 0) {
        DagCall call = DAG_CALL__INIT;
        call.dag = (char *)name;
        call.n_args = n;
        call.args = entry_ps;
        call.output_key = (char *)(opts && opts->output_key ? opts->output_key : "");
        call.consistency = (Consistency)(opts ? opts->consistency : CB_FAAS_LWW);
        call.timeout_ms = (uint32_t)timeout_ms;
        Request req = REQUEST__INIT;
        req.op_case = REQUEST__OP_CALL_DAG;
        req.call_dag = &call;
        char what[200];
        snprintf(what, sizeof what, "call DAG %s", name);
        //  Each function may run up to timeout_ms; the client cannot know the DAG's depth
        //  without asking, so it waits for the deepest chain the scheduler would accept.
        rc = s_call(self, &req, timeout_ms, opts && opts->output_key, what, out);
        //  Issue 4: a repeatable-read request whose parallel branches read different
        //  versions of a key failed before any inconsistent read reached a function; it is
        //  re-run from the start (with a new request id), a few times at most.
        //  Likewise a causal request whose reads depend on two sibling versions of a key.
        for (int attempt = 1; rc != 0 && attempt < CB_FAAS_RR_ATTEMPTS &&
                              ((call.consistency == CONSISTENCY__CONSISTENCY_REPEATABLE_READ &&
                                strstr(self->error, S_RR_CONFLICT)) ||
                               ((call.consistency == CONSISTENCY__CONSISTENCY_SINGLE_CAUSAL ||
                                 call.consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL) &&
                                strstr(self->error, S_CAUSAL_SIBLINGS)));
             attempt++) {
            cb_faas_result_fini(out);
            //  Causal siblings go once a write merges them: give it a moment to come.
            if (call.consistency != CONSISTENCY__CONSISTENCY_REPEATABLE_READ)
                s_sleep_us(2000 * attempt);
            rc = s_call(self, &req, timeout_ms, opts && opts->output_key, what, out);
        }
    }
    for (size_t i = 0; i < n; i++)
        s_args_fini(&built[i]);
    cb_free(built);
    cb_free(lists);
    cb_free(entries);
    cb_free(entry_ps);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  KVS: futures, get, put

//  The KVS client, made on first use with the configured routing address or the one the
//  scheduler reports.
static int s_kvs(cb_faas_t *self, cb_kvs_t **kvs_p)
{
    if (!self->kvs) {
        if (!self->kvs_routing) {
            cb_faas_status_t st;
            int rc = cb_faas_status(self, &st);
            if (rc == 0 && (!st.kvs_routing || !s_address_ok(st.kvs_routing))) {
                s_set_error(self, "the scheduler reported no KVS address: give one (--kvs)");
                rc = -EHOSTUNREACH;
            }
            if (rc == 0)
                self->kvs_routing = cb_strdup(st.kvs_routing);
            cb_faas_status_fini(&st);
            if (rc)
                return rc;
        }
        cb_kvs_config_t config = {self->kvs_routing, self->bind_ip, self->timeout_ms, 0};
        self->kvs = cb_kvs_new(&config);
        if (!self->kvs) {
            int rc = -errno;
            s_set_error(self, "cannot make a KVS client for %s: %s", self->kvs_routing,
                        cb_strerror(rc));
            return rc;
        }
    }
    *kvs_p = self->kvs;
    return 0;
}

//  Reads key once into *out (zeroed on error). Sets the error text unless quiet_missing and
//  the key holds nothing.
static int s_get_once(cb_faas_t *self, const char *key, cb_value_t *out, bool quiet_missing)
{
    memset(out, 0, sizeof *out);
    cb_kvs_t *kvs;
    int rc = s_kvs(self, &kvs);
    if (rc)
        return rc;
    lat_t value;
    rc = cb_kvs_get(kvs, key, &value);
    if (rc) {
        if (!(quiet_missing && rc == -ENOENT))
            s_set_error(self, "%s", cb_kvs_last_error(kvs));
        return rc;
    }
    if (value.kind != LAT_LWW) {
        s_set_error(self, "key '%.200s' holds a %s lattice, not a cb value (read it with anna-cli)",
                    key, lat_kind_name(value.kind));
        lat_fini(&value);
        return -EINVAL;
    }
    rc = cb_value_decode(value.u.lww.value.data, value.u.lww.value.len, out);
    lat_fini(&value);
    if (rc) {
        memset(out, 0, sizeof *out);
        s_set_error(self, "key '%.200s' holds a malformed cb value", key);
    }
    return rc;
}

int cb_faas_get(cb_faas_t *self, const char *key, cb_value_t *out)
{
    s_clear_error(self);
    return s_get_once(self, key ? key : "", out, false);
}

cb_kvs_t *cb_faas_kvs(cb_faas_t *self)
{
    s_clear_error(self);
    cb_kvs_t *kvs;
    return s_kvs(self, &kvs) == 0 ? kvs : NULL;
}

int cb_faas_put(cb_faas_t *self, const char *key, const cb_value_t *value)
{
    s_clear_error(self);
    cb_kvs_t *kvs;
    int rc = s_kvs(self, &kvs);
    if (rc)
        return rc;
    cb_bytes_t enc = {0};
    cb_value_encode(value, &enc);
    rc = cb_kvs_put_lww(kvs, key ? key : "", enc.data, enc.len);
    cb_bytes_fini(&enc);
    if (rc)
        s_set_error(self, "%s", cb_kvs_last_error(kvs));
    return rc;
}


int cb_faas_future_get(cb_faas_t *self, const char *key, int timeout_ms, cb_value_t *out)
{
    s_clear_error(self);
    memset(out, 0, sizeof *out);
    if (!key || !*key) {
        s_set_error(self, "empty future key");
        return -EINVAL;
    }
    if (timeout_ms <= 0)
        timeout_ms = CB_FAAS_DEFAULT_CALL_TIMEOUT_MS + CB_FAAS_CALL_MARGIN_MS;
    int64_t deadline = cb_clock_mono_ms() + timeout_ms;
    int64_t poll_us = S_FUTURE_FIRST_POLL_US;
    for (;;) {
        int rc = s_get_once(self, key, out, true);
        if (rc == 0) {
            if (out->type != CB_VALUE_ERROR)
                return 0;
            self->code = CB_FAAS_FUNCTION_FAILED;
            s_set_error(self, "the call with output key '%.200s' failed: %.*s", key,
                        (int)(out->bytes.len > 700 ? 700 : out->bytes.len),
                        out->bytes.data ? (const char *)out->bytes.data : "");
            cb_value_fini(out);
            return -EREMOTEIO;
        }
        if (rc != -ENOENT)
            return rc;
        long left = s_remaining(deadline);
        if (!left) {
            s_set_error(self, "no result at key '%.200s' within %d ms", key, timeout_ms);
            return -ETIMEDOUT;
        }
        s_sleep_us(poll_us < (int64_t)left * 1000 ? poll_us : (int64_t)left * 1000);
        poll_us = poll_us * 2 > S_FUTURE_MAX_POLL_US ? S_FUTURE_MAX_POLL_US : poll_us * 2;
    }
}

//  --------------------------------------------------------------------------------------
//  Status

int cb_faas_status(cb_faas_t *self, cb_faas_status_t *out)
{
    memset(out, 0, sizeof *out);
    Request req = REQUEST__INIT;
    req.op_case = REQUEST__OP_STATUS;
    req.status = 1;
    Reply *reply = NULL;
    int rc = s_round_trip(self, &req, self->timeout_ms, "status", &reply);
    if (rc == 0) {
        if (reply->status) {
            s_status_copy(out, reply->status);
        } else {
            ClusterStatus empty = CLUSTER_STATUS__INIT;
            s_status_copy(out, &empty);
        }
    }
    if (reply)
        reply__free_unpacked(reply, NULL);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Self-test: the pure parts (errors, names, keys, signing, the Reply -> result path).

void cb_faas_test(bool verbose)
{
    if (verbose)
        printf(" * cb_faas: ");

    //  Every CbError maps to a distinct-enough errno, and none to 0 or -EPROTO.
    for (int c = 1; c <= CB_FAAS_INTERNAL; c++) {
        int e = cb_faas_errno((cb_faas_code_t)c);
        assert(e < 0 && e != -EPROTO);
        assert(strcmp(cb_faas_code_name((cb_faas_code_t)c), "UNKNOWN") != 0);
        assert(*s_code_words((cb_faas_code_t)c));
    }
    assert(cb_faas_errno(CB_FAAS_OK) == 0);
    assert(cb_faas_errno((cb_faas_code_t)99) == -EPROTO);
    assert(!strcmp(cb_faas_code_name((cb_faas_code_t)99), "UNKNOWN"));
    assert(cb_faas_errno(CB_FAAS_TIMEOUT) == -ETIMEDOUT);
    assert(cb_faas_errno(CB_FAAS_UNTRUSTED) == -EPERM);

    //  Names.
    assert(cb_faas_name_valid("incr"));
    assert(cb_faas_name_valid("a.b-c_9"));
    assert(!cb_faas_name_valid(""));
    assert(!cb_faas_name_valid(NULL));
    assert(!cb_faas_name_valid("a b"));
    assert(!cb_faas_name_valid("a/b"));
    char longname[S_MAX_NAME_LEN + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert(!cb_faas_name_valid(longname));
    longname[S_MAX_NAME_LEN] = '\0';
    assert(cb_faas_name_valid(longname));

    //  Hex keys.
    uint8_t k[4];
    assert(s_hex_decode(" 0aFf10 20\n", 11, k, 4) == -EINVAL);
    assert(s_hex_decode(" 0aFf1020\n", 10, k, 4) == 0);
    assert(k[0] == 0x0a && k[1] == 0xff && k[2] == 0x10 && k[3] == 0x20);
    assert(s_hex_decode("0aFf10", 6, k, 4) == -EINVAL);
    assert(s_hex_decode("0aFf10zz", 8, k, 4) == -EINVAL);
    char path[] = "/tmp/cb_faas_test_XXXXXX";
    int fd = mkstemp(path);
    assert(fd >= 0);
    assert(write(fd, "00112233\n", 9) == 9);
    close(fd);
    assert(cb_faas_key_read(path, k, 4) == 0 && k[3] == 0x33);
    assert(cb_faas_key_read(path, k, 3) == -EINVAL);
    unlink(path);
    assert(cb_faas_key_read(path, k, 4) == -ENOENT);

    //  ELF check: a header of a shared object, of an executable, and garbage.
    uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    elf[16] = 3;
    assert(s_is_elf_so(elf, sizeof elf));
    elf[16] = 2;
    assert(!s_is_elf_so(elf, sizeof elf));
    assert(!s_is_elf_so((const uint8_t *)"garbage garbage garbage garbage garbage garbage "
                        "garbage garbage", 64));
    assert(!s_is_elf_so(elf, 10));

    //  Signing: what the library signs verifies against name || 0x00 || code, and a
    //  signature over another name (the same code registered under a new name) does not.
    s_sodium_init();
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    crypto_sign_keypair(pk, sk);
    cb_bytes_t msg = {0};
    s_signed_message("incr", "CODE", 4, &msg);
    assert(msg.len == 9 && msg.data[4] == 0 && !memcmp(msg.data + 5, "CODE", 4));
    crypto_sign_detached(sig, NULL, msg.data, msg.len, sk);
    assert(crypto_sign_verify_detached(sig, msg.data, msg.len, pk) == 0);
    cb_bytes_fini(&msg);
    s_signed_message("incrC", "ODE", 3, &msg);      //  same bytes without the separator...
    assert(crypto_sign_verify_detached(sig, msg.data, msg.len, pk) != 0);
    cb_bytes_fini(&msg);
    uint8_t pk2[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_ed25519_sk_to_pk(pk2, sk);
    assert(!memcmp(pk, pk2, sizeof pk));
    sodium_memzero(sk, sizeof sk);

    //  The Reply -> result path, with a fake client (no sockets are touched).
    cb_faas_t fake;
    memset(&fake, 0, sizeof fake);
    Reply reply = REPLY__INIT;
    cb_faas_result_t res;
    memset(&res, 0, sizeof res);
    cb_value_t v;
    cb_value_set_int(&v, 16);
    cb_bytes_t enc = {0};
    cb_value_encode(&v, &enc);
    reply.result.data = enc.data;
    reply.result.len = enc.len;
    char *logs[] = {"first", "second"};
    reply.n_logs = 2;
    reply.logs = logs;
    assert(s_call_result(&fake, 0, &reply, "call x", &res) == 0);
    assert(res.value.type == CB_VALUE_INT64 && res.value.i64 == 16);
    assert(res.n_logs == 2 && !strcmp(res.logs[1], "second"));
    cb_faas_result_fini(&res);
    cb_bytes_fini(&enc);
    //  An error value is an error; its logs still come back.
    cb_value_set_bytes(&v, CB_VALUE_ERROR, "boom", 4);
    cb_value_encode(&v, &enc);
    cb_value_fini(&v);
    reply.result.data = enc.data;
    reply.result.len = enc.len;
    assert(s_call_result(&fake, 0, &reply, "call x", &res) == -EREMOTEIO);
    assert(strstr(fake.error, "boom") && fake.code == CB_FAAS_FUNCTION_FAILED);
    assert(res.n_logs == 2 && res.value.type == CB_VALUE_BYTES && !res.value.bytes.data);
    cb_faas_result_fini(&res);
    cb_bytes_fini(&enc);
    //  A CbError with its message, and one without.
    reply.error = CB_ERROR__CB_NO_SUCH_FUNCTION;
    reply.error_message = "function 'nope' is not registered";
    s_clear_error(&fake);
    assert(s_reply_error(&fake, &reply, "call nope") == -ENOENT);
    assert(!strcmp(fake.error, "call nope: function 'nope' is not registered"));
    assert(fake.code == CB_FAAS_NO_SUCH_FUNCTION);
    reply.error = CB_ERROR__CB_FUNCTION_CRASHED;
    reply.error_message = "";
    assert(s_reply_error(&fake, &reply, "call crash") == -EOWNERDEAD);
    assert(!strcmp(fake.error, "call crash: the function crashed"));
    reply.error = (CbError)77;
    assert(s_reply_error(&fake, &reply, "call x") == -EPROTO);
    //  Control bytes from a peer never reach the terminal.
    s_set_error(&fake, "a\x1b[2Jb\n");
    assert(!strcmp(fake.error, "a?[2Jb?"));
    //  A future key instead of a value.
    reply.error = CB_ERROR__CB_OK;
    reply.n_logs = 0;
    reply.output_key = "out1";
    assert(s_call_result(&fake, 0, &reply, "call x", &res) == 0 && !strcmp(res.output_key, "out1"));
    cb_faas_result_fini(&res);
    cb_faas_result_fini(&res);      //  idempotent

    //  Status conversion sorts executors and nodes.
    ExecutorInfo e1 = EXECUTOR_INFO__INIT, e2 = EXECUTOR_INFO__INIT;
    e1.id = "n1/0";
    e2.id = "n0/2";
    char *pinned[] = {"square", "incr"};
    e2.n_pinned = 2;
    e2.pinned = pinned;
    ExecutorInfo *eps[] = {&e1, &e2};
    ClusterStatus cs = CLUSTER_STATUS__INIT;
    cs.n_executors = 2;
    cs.executors = eps;
    cb_faas_status_t st;
    memset(&st, 0, sizeof st);
    s_status_copy(&st, &cs);
    assert(st.n_executors == 2 && !strcmp(st.executors[0].id, "n0/2"));
    assert(st.executors[0].pinned.len == 2 && !strcmp(st.executors[0].pinned.names[0], "incr"));
    assert(st.n_nodes == 0 && st.functions.len == 0 && !strcmp(st.kvs_routing, ""));
    cb_faas_status_fini(&st);

    //  Config checks.
    cb_faas_config_t bad = {"udp://x", NULL, NULL, 0};
    assert(!cb_faas_new(&bad) && errno == EINVAL);
    cb_faas_config_t bad_ip = {"tcp://127.0.0.1:5000", NULL, "0.0.0.0", 0};
    assert(!cb_faas_new(&bad_ip) && errno == EINVAL);
    cb_faas_config_t bad_kvs = {"tcp://127.0.0.1:5000", "nope", NULL, 0};
    assert(!cb_faas_new(&bad_kvs) && errno == EINVAL);

    if (verbose)
        printf("OK\n");
}
