//  executor/fnlib.c: the user library (function.h) as the runner implements it, and the
//  runner's blocking frame I/O (see fnlib.h).
//
//  Everything a function receives is borrowed until its call ends: values and messages are
//  copied into the call's arena (a list of malloc'ed blocks freed by exec_fnctx_end), each
//  followed by a NUL so that strings are C strings. Messages go through the executor: a
//  send is a SEND frame the executor forwards; a receive asks the executor (RECV) and waits
//  for its INBOX answer, so the runner needs no sockets of its own beyond the KVS client.
//  SPDX-License-Identifier: Apache-2.0
#include "executor/fnlib.h"

#include <errno.h>
#include <poll.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "anna.pb-c.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "proto/wire.h"

struct exec_block_s {
    exec_block_t *next;
    alignas(max_align_t) unsigned char data[];
};

void exec_fnctx_init(cb_fn_ctx_t *ctx, int fd, const char *executor_id, const char *writer_id,
                     const cb_kvs_config_t *kvs_config)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->fd = fd;
    ctx->executor_id = executor_id;
    ctx->writer_id = writer_id && writer_id[0] ? writer_id : executor_id;
    ctx->kvs_config = *kvs_config;
}

void exec_fnctx_fini(cb_fn_ctx_t *ctx)
{
    exec_fnctx_end(ctx);
    for (int i = 0; i < EXEC_HOME_SOCKETS; i++)
        if (ctx->zpush[i])
            zmq_close(ctx->zpush[i]);
    memset(ctx->zpush, 0, sizeof ctx->zpush);
    if (ctx->zpull)
        zmq_close(ctx->zpull);
    if (ctx->zctx)
        zmq_ctx_term(ctx->zctx);
    ctx->zpull = ctx->zctx = NULL;
    cb_kvs_destroy(&ctx->kvs);
    exec_buf_fini(&ctx->aux);
    exec_buf_fini(&ctx->out);
}

void exec_fnctx_begin(cb_fn_ctx_t *ctx, const char *function)
{
    ctx->function = function;
}

void exec_fnctx_end(cb_fn_ctx_t *ctx)
{
    while (ctx->arena) {
        exec_block_t *next = ctx->arena->next;
        cb_free(ctx->arena);
        ctx->arena = next;
    }
    cb_free(ctx->error);
    ctx->error = NULL;
    for (size_t i = 0; i < ctx->n_logs; i++)
        cb_free(ctx->logs[i]);
    cb_free(ctx->logs);
    ctx->logs = NULL;
    ctx->n_logs = ctx->logs_dropped = 0;
    ctx->function = NULL;
    for (size_t i = 0; i < ctx->n_reads; i++) {
        cb_free(ctx->reads[i].key);
        cb_bytes_fini(&ctx->reads[i].payload);
        lat_fini(&ctx->reads[i].version);
    }
    cb_free(ctx->reads);
    ctx->reads = NULL;
    ctx->n_reads = ctx->reads_cap = 0;
    ctx->consistency = 0;
    cb_free(ctx->session_error);
    ctx->session_error = NULL;
    ctx->request_id = NULL;
    ctx->session_cache = NULL;
    ctx->home = NULL;
}

//  --------------------------------------------------------------------------------------
//  Sessions (issue 4)

static int s_session_fail(cb_fn_ctx_t *ctx, const char *why, const char *key);

static bool s_causal_level(const cb_fn_ctx_t *ctx)
{
    return ctx->consistency == CONSISTENCY__CONSISTENCY_SINGLE_CAUSAL ||
           ctx->consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL;
}

static bool s_read_same(const exec_read_t *r, bool absent, int kind, const void *data, size_t len)
{
    if (r->absent || absent)
        return r->absent == absent;
    return r->kind == kind && r->payload.len == len && (!len || !memcmp(r->payload.data, data, len));
}

//  Adds a version unless the session has that very version of key already. A causal
//  version is kept decoded too (a payload that does not decode is kept as bytes only and
//  then requires nothing; it came from a runner of this same code).
static void s_session_add(cb_fn_ctx_t *ctx, const char *key, bool absent, int kind,
                          const void *data, size_t len)
{
    for (size_t i = 0; i < ctx->n_reads; i++)
        if (!strcmp(ctx->reads[i].key, key) && s_read_same(&ctx->reads[i], absent, kind, data, len))
            return;
    if (ctx->n_reads == ctx->reads_cap) {
        ctx->reads_cap = ctx->reads_cap ? 2 * ctx->reads_cap : 8;
        ctx->reads = cb_realloc(ctx->reads, ctx->reads_cap * sizeof *ctx->reads);
    }
    exec_read_t *r = &ctx->reads[ctx->n_reads++];
    memset(r, 0, sizeof *r);
    r->key = cb_strdup(key);
    r->absent = absent;
    r->kind = kind;
    lat_init(&r->version, LAT_NONE);
    if (!absent) {
        cb_bytes_set(&r->payload, data, len);
        if (exec_causal_kind(kind) && wire_decode(kind, data, len, &r->version) != 0)
            lat_init(&r->version, LAT_NONE);
    }
}

int exec_fnctx_session_load(cb_fn_ctx_t *ctx, uint32_t consistency, const void *data, size_t len)
{
    ctx->consistency = consistency;
    if (!len)
        return 0;
    SessionReads *m = session_reads__unpack(NULL, len, data);
    if (!m)
        return -EPROTO;
    for (size_t i = 0; i < m->n_reads && ctx->n_reads < EXEC_MAX_SESSION_READS; i++) {
        const SessionRead *r = m->reads[i];
        if (r->key)
            s_session_add(ctx, r->key, r->absent, (int)r->lattice_type, r->payload.data,
                          r->payload.len);
    }
    session_reads__free_unpacked(m, NULL);
    //  Parallel branches that read different versions of a key cannot be joined into one
    //  repeatable-read request: the call fails (before it runs) rather than go on with both.
    //  (Under the causal levels they can: what the request depends on is their join.)
    for (size_t i = 0; i < ctx->n_reads && !ctx->session_error &&
                       consistency == CONSISTENCY__CONSISTENCY_REPEATABLE_READ;
         i++)
        for (size_t j = i + 1; j < ctx->n_reads; j++)
            if (!strcmp(ctx->reads[i].key, ctx->reads[j].key)) {
                (void)s_session_fail(ctx,
                                     "parallel branches of this request read different versions of",
                                     ctx->reads[i].key);
                break;
            }
    return 0;
}

void exec_fnctx_session_pack(const cb_fn_ctx_t *ctx, cb_bytes_t *out)
{
    memset(out, 0, sizeof *out);
    if ((ctx->consistency != CONSISTENCY__CONSISTENCY_REPEATABLE_READ && !s_causal_level(ctx)) ||
        !ctx->n_reads)
        return;
    SessionRead *items = cb_calloc(ctx->n_reads, sizeof *items);
    SessionRead **ptrs = cb_calloc(ctx->n_reads, sizeof *ptrs);
    for (size_t i = 0; i < ctx->n_reads; i++) {
        session_read__init(&items[i]);
        items[i].key = ctx->reads[i].key;
        items[i].absent = ctx->reads[i].absent;
        items[i].lattice_type = (uint32_t)ctx->reads[i].kind;
        items[i].payload.data = ctx->reads[i].payload.data;
        items[i].payload.len = ctx->reads[i].payload.len;
        ptrs[i] = &items[i];
    }
    SessionReads m = SESSION_READS__INIT;
    m.reads = ptrs;
    m.n_reads = ctx->n_reads;
    size_t n = session_reads__get_packed_size(&m);
    out->data = cb_malloc(n ? n : 1);
    out->len = session_reads__pack(&m, out->data);
    cb_free(ptrs);
    cb_free(items);
}

static int s_session_fail(cb_fn_ctx_t *ctx, const char *why, const char *key)
{
    if (!ctx->session_error) {
        char buf[1400];
        const char *level = ctx->consistency == CONSISTENCY__CONSISTENCY_SINGLE_CAUSAL ? "single-key causal"
                            : ctx->consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL ? "multi-key causal"
                                                                                        : "repeatable read";
        snprintf(buf, sizeof buf, "%s: %.900s key '%.200s'", level, why, key);
        ctx->session_error = cb_strdup(buf);
    }
    return -ESTALE;
}

//  ---- the home cache: the runner's own small Anna client ----------------------------------

//  Sockets made at first use: a PULL bound on the KVS client's IP, a PUSH. 0 or -errno.
static int s_home_sockets(cb_fn_ctx_t *ctx)
{
    if (ctx->zpull)
        return 0;
    ctx->zctx = zmq_ctx_new();
    if (!ctx->zctx)
        return -errno;
    ctx->zpull = zmq_socket(ctx->zctx, ZMQ_PULL);
    char ep[300];
    snprintf(ep, sizeof ep, "tcp://%s:*",
             ctx->kvs_config.bind_ip && *ctx->kvs_config.bind_ip ? ctx->kvs_config.bind_ip
                                                                 : "127.0.0.1");
    size_t len = sizeof ctx->zpull_ep;
    int linger = 0;
    if (!ctx->zpull || zmq_setsockopt(ctx->zpull, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(ctx->zpull, ep) || zmq_getsockopt(ctx->zpull, ZMQ_LAST_ENDPOINT, ctx->zpull_ep, &len)) {
        int e = errno;
        if (ctx->zpull)
            zmq_close(ctx->zpull);
        zmq_ctx_term(ctx->zctx);
        ctx->zpull = ctx->zctx = NULL;
        return -e;
    }
    return 0;
}

//  Sends data[0..len) to address: one PUSH per address, EXEC_HOME_SOCKETS kept connected
//  (a slot is chosen by the address's hash; another address there replaces it).
static int s_home_send(cb_fn_ctx_t *ctx, const char *address, const void *data, size_t len)
{
    uint32_t h = 2166136261u;
    for (const char *p = address; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    size_t i = h % EXEC_HOME_SOCKETS;
    if (!ctx->zpush[i] || strcmp(ctx->zpush_to[i], address)) {
        if (ctx->zpush[i])
            zmq_close(ctx->zpush[i]);
        ctx->zpush[i] = zmq_socket(ctx->zctx, ZMQ_PUSH);
        int linger = 0, hwm = 1000;
        if (!ctx->zpush[i])
            return -errno;
        zmq_setsockopt(ctx->zpush[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(ctx->zpush[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_connect(ctx->zpush[i], address) != 0) {
            int e = errno;
            zmq_close(ctx->zpush[i]);
            ctx->zpush[i] = NULL;
            return -e;
        }
        snprintf(ctx->zpush_to[i], sizeof ctx->zpush_to[i], "%s", address);
    }
    return zmq_send(ctx->zpush[i], data, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
}

//  Waits for one message on the PULL until deadline (monotonic ms); copies it into *msg.
static int s_home_recv(cb_fn_ctx_t *ctx, int64_t deadline, zmq_msg_t *msg)
{
    for (;;) {
        int64_t left = deadline - cb_clock_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        zmq_pollitem_t item = {ctx->zpull, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0 && errno != EINTR)
            return -errno;
        if (rc > 0 && zmq_msg_recv(msg, ctx->zpull, ZMQ_DONTWAIT) >= 0)
            return 0;
    }
}

//  The data address of the home cache (routing lookup once per home). 0 or -errno.
static int s_home_data(cb_fn_ctx_t *ctx, const char *key, int64_t deadline)
{
    if (ctx->home)
        return 0;
    uint32_t h = 2166136261u;
    for (const char *p = ctx->session_cache; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    size_t slot = h % EXEC_HOME_SOCKETS;
    if (!strcmp(ctx->home_routing[slot], ctx->session_cache) && ctx->home_data[slot][0]) {
        ctx->home = ctx->home_data[slot];
        return 0;
    }
    char id[40];
    snprintf(id, sizeof id, "h%llu", (unsigned long long)++ctx->zseq);
    KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
    req.response_address = ctx->zpull_ep;
    req.request_id = id;
    req.n_keys = 1;
    char *keys[1] = {(char *)key};
    req.keys = keys;
    size_t n = key_address_request__get_packed_size(&req);
    uint8_t *buf = cb_malloc(n ? n : 1);
    key_address_request__pack(&req, buf);
    int rc = s_home_send(ctx, ctx->session_cache, buf, n);
    cb_free(buf);
    while (rc == 0) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        rc = s_home_recv(ctx, deadline, &msg);
        if (rc == 0) {
            KeyAddressResponse *resp = key_address_response__unpack(NULL, zmq_msg_size(&msg),
                                                                   zmq_msg_data(&msg));
            if (resp && resp->response_id && !strcmp(resp->response_id, id)) {
                rc = -EPROTO;
                if (resp->n_addresses && resp->addresses[0]->n_ips) {
                    snprintf(ctx->home_data[slot], sizeof ctx->home_data[slot], "%s",
                             resp->addresses[0]->ips[0]);
                    snprintf(ctx->home_routing[slot], sizeof ctx->home_routing[slot], "%s",
                             ctx->session_cache);
                    ctx->home = ctx->home_data[slot];
                    rc = 0;
                }
                key_address_response__free_unpacked(resp, NULL);
                zmq_msg_close(&msg);
                return rc;
            }
            if (resp)
                key_address_response__free_unpacked(resp, NULL);
        }
        zmq_msg_close(&msg);
    }
    return rc;
}

//  The request's first read of key, at its home cache, which snapshots it for the request.
//  0, -ENOENT, -ESTALE (ctx->session_error says why).
static int s_session_fail(cb_fn_ctx_t *ctx, const char *why, const char *key);
static int s_home_get(cb_fn_ctx_t *ctx, const char *key, lat_t *out)
{
    int64_t deadline = cb_clock_mono_ms() + EXEC_HOME_TIMEOUT_MS;
    int rc = s_home_sockets(ctx);
    if (rc == 0)
        rc = s_home_data(ctx, key, deadline);
    char id[40];
    snprintf(id, sizeof id, "g%llu", (unsigned long long)++ctx->zseq);
    if (rc == 0) {
        KeyTuple t = KEY_TUPLE__INIT;
        t.key = (char *)key;
        KeyTuple *tp = &t;
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__GET;
        req.n_tuples = 1;
        req.tuples = &tp;
        req.response_address = ctx->zpull_ep;
        req.request_id = id;
        req.session_id = (char *)ctx->request_id;
        req.consistency = CONSISTENCY__CONSISTENCY_REPEATABLE_READ;
        size_t n = key_request__get_packed_size(&req);
        uint8_t *buf = cb_malloc(n ? n : 1);
        key_request__pack(&req, buf);
        rc = s_home_send(ctx, ctx->home, buf, n);
        cb_free(buf);
    }
    while (rc == 0) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        rc = s_home_recv(ctx, deadline, &msg);
        if (rc != 0) {
            zmq_msg_close(&msg);
            break;
        }
        KeyResponse *resp = key_response__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        zmq_msg_close(&msg);
        if (!resp || !resp->response_id || strcmp(resp->response_id, id)) {
            if (resp)
                key_response__free_unpacked(resp, NULL);
            continue;       //  a late answer of an earlier read
        }
        int result = -EPROTO;
        if (resp->n_tuples == 1) {
            const KeyTuple *t = resp->tuples[0];
            if (t->error == ANNA_ERROR__KEY_DNE)
                result = -ENOENT;
            else if (t->error == ANNA_ERROR__NO_ERROR &&
                     wire_decode((int)t->lattice_type, t->payload.data, t->payload.len, out) == 0)
                result = 0;
            else {
                char why[400];
                snprintf(why, sizeof why, "the home cache %.120s refused to read (%.200s):",
                         ctx->home, t->error_message ? t->error_message : "");
                result = s_session_fail(ctx, why, key);
            }
        }
        key_response__free_unpacked(resp, NULL);
        if (result == -EPROTO)
            return s_session_fail(ctx, "a malformed answer of the home cache for", key);
        return result;
    }
    //  The home cache is gone (or too slow): the request cannot go on consistently. Its
    //  address is looked up again next time (a restarted cache may have moved).
    if (ctx->home)
        ((char *)ctx->home)[0] = 0;
    ctx->home = NULL;
    char why[400];
    snprintf(why, sizeof why, "the request's home cache %.200s did not answer (%s) for",
             ctx->session_cache, rc == -ETIMEDOUT ? "timeout" : strerror(-rc));
    return s_session_fail(ctx, why, key);
}

void exec_fnctx_session_done(cb_fn_ctx_t *ctx)
{
    if (ctx->consistency != CONSISTENCY__CONSISTENCY_REPEATABLE_READ || !ctx->session_cache ||
        !ctx->session_cache[0] || !ctx->request_id || !ctx->request_id[0] || !ctx->zpull)
        return;
    if (!ctx->home) {
        //  The sink read nothing there itself: the home's address if this runner knows it.
        uint32_t h = 2166136261u;
        for (const char *p = ctx->session_cache; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        size_t slot = h % EXEC_HOME_SOCKETS;
        if (!strcmp(ctx->home_routing[slot], ctx->session_cache))
            ctx->home = ctx->home_data[slot];
    }
    if (!ctx->home || !ctx->home[0])
        return;     //  not known here: the session's snapshots expire instead
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = REQUEST_TYPE__GET;
    req.session_id = (char *)ctx->request_id;
    req.session_done = true;
    size_t n = key_request__get_packed_size(&req);
    uint8_t *buf = cb_malloc(n ? n : 1);
    key_request__pack(&req, buf);
    (void)s_home_send(ctx, ctx->home, buf, n);
    cb_free(buf);
}

//  A clock for people (error messages), cut to fit.
static void s_clock_text(const lat_vclock_t *clock, char *buf, size_t len)
{
    lat_t view = {.kind = LAT_VCLOCK, .u.vclock = *clock};   //  borrowed: not finalised
    char *text = lat_format(&view);
    snprintf(buf, len, "%s", text);
    cb_free(text);
}

//  Adds a one-version causal value to the session (a read or a write of the request).
static int s_session_add_version(cb_fn_ctx_t *ctx, const char *key, const lat_t *one)
{
    if (ctx->n_reads >= EXEC_MAX_SESSION_READS)
        return s_session_fail(ctx, "too many versions read or written by one request, at", key);
    cb_bytes_t bytes = {0};
    if (wire_encode(one, &bytes) != 0)
        return s_session_fail(ctx, "cannot encode the version of", key);
    s_session_add(ctx, key, false, (int)one->kind, bytes.data, bytes.len);
    cb_bytes_fini(&bytes);
    return 0;
}

//  A read under SINGLE_CAUSAL / MULTI_CAUSAL: a version of key not older than, nor
//  concurrent with, what the request depends on (exec_causal_need), into *out as a causal
//  value of that one version; it joins the session. Under MULTI_CAUSAL a version of key the
//  request already holds is returned again while it still satisfies the dependencies (a
//  repeatable read, no I/O). Otherwise this node's cache is asked; when its copy is behind
//  the request, the read waits (backing off) for the KVS's push of a newer version, at most
//  EXEC_CAUSAL_WAIT_MS, then fails the call (-ESTALE) rather than return an older version.
static int s_causal_read(cb_fn_ctx_t *ctx, cb_kvs_t *kvs, const char *key, lat_t *out)
{
    bool multi = ctx->consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL;
    lat_vclock_t need = {0};
    exec_causal_need(ctx->reads, ctx->n_reads, key, multi, &need);
    for (size_t i = ctx->n_reads; multi && i-- > 0;) {
        const exec_read_t *r = &ctx->reads[i];
        if (strcmp(r->key, key))
            continue;
        if (r->absent && !need.len)
            return -ENOENT;
        if (!r->absent && r->version.kind == LAT_MULTI_CAUSAL && r->version.u.causal.len == 1 &&
            exec_causal_covers(&r->version.u.causal.items[0].clock, &need)) {
            lat_vclock_fini(&need);
            lat_copy(out, &r->version);
            return 0;
        }
    }
    if (!kvs) {
        lat_vclock_fini(&need);
        return -EHOSTUNREACH;
    }
    int64_t deadline = cb_clock_mono_ms() + EXEC_CAUSAL_WAIT_MS;
    long backoff_us = 200;
    for (;;) {
        lat_t v;
        int rc = cb_kvs_get(kvs, key, &v);
        if (rc == 0 && !exec_causal_kind(v.kind)) {
            lat_fini(&v);
            lat_vclock_fini(&need);
            return -EINVAL;     //  an LWW (or other) key: not readable causally
        }
        if (rc == -ENOENT && !need.len) {
            lat_vclock_fini(&need);
            s_session_add(ctx, key, true, 0, NULL, 0);
            return -ENOENT;
        }
        if (rc != 0 && rc != -ENOENT) {
            lat_vclock_fini(&need);
            return rc;
        }
        int pick = rc == 0 ? exec_causal_pick(&v, &need) : -1;
        if (pick >= 0) {
            exec_causal_one(out, multi ? LAT_MULTI_CAUSAL : LAT_SINGLE_CAUSAL,
                            &v.u.causal.items[pick]);
            lat_fini(&v);
            lat_vclock_fini(&need);
            rc = s_session_add_version(ctx, key, out);
            if (rc)
                lat_fini(out);
            return rc;
        }
        //  What the cache shows of the key, all versions joined.
        lat_vclock_t all = {0};
        if (rc == 0)
            lat_causal_clock(&v, &all);
        size_t versions = rc == 0 ? v.u.causal.len : 0;
        if (rc == 0)
            lat_fini(&v);
        if (versions && exec_causal_covers(&all, &need)) {
            //  The cache shows versions that cover need together but none alone: the
            //  request depends on siblings (e.g. two parallel branches read two of them).
            //  Only a write that merges them would do: rather than wait for one, the call
            //  fails, and cb_faas_call_dag runs the request again.
            lat_vclock_fini(&all);
            lat_vclock_fini(&need);
            return s_session_fail(ctx, EXEC_CAUSAL_SIBLINGS, key);
        }
        if (cb_clock_mono_ms() >= deadline) {
            char clock[300], shown[300] = "nothing", why[700];
            s_clock_text(&need, clock, sizeof clock);
            if (versions)
                s_clock_text(&all, shown, sizeof shown);
            snprintf(why, sizeof why,
                     "this node's cache has no version at or after %.250s (what the request "
                     "depends on) after %d ms (it shows %zu version(s), joined %.250s), of",
                     clock, EXEC_CAUSAL_WAIT_MS, versions, shown);
            lat_vclock_fini(&all);
            lat_vclock_fini(&need);
            return s_session_fail(ctx, why, key);
        }
        lat_vclock_fini(&all);
        struct timespec ts = {0, backoff_us * 1000};
        nanosleep(&ts, NULL);
        if (backoff_us < 20000)
            backoff_us *= 2;
    }
}

int exec_fnctx_read(cb_fn_ctx_t *ctx, const char *key, lat_t *out)
{
    lat_init(out, LAT_NONE);
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (s_causal_level(ctx))
        return s_causal_read(ctx, kvs, key, out);
    if (ctx->consistency != CONSISTENCY__CONSISTENCY_REPEATABLE_READ)
        return kvs ? cb_kvs_get(kvs, key, out) : -EHOSTUNREACH;
    const exec_read_t *found = NULL;
    for (size_t i = 0; i < ctx->n_reads; i++) {
        if (strcmp(ctx->reads[i].key, key))
            continue;
        if (found)
            return s_session_fail(ctx,
                                  "parallel branches of this request read different versions of",
                                  key);
        found = &ctx->reads[i];
    }
    if (found) {
        if (found->absent)
            return -ENOENT;
        if (wire_decode(found->kind, found->payload.data, found->payload.len, out) != 0) {
            lat_init(out, LAT_NONE);
            return s_session_fail(ctx, "a malformed version of", key);
        }
        return 0;
    }
    //  The request's first read of key: this version is the request's from now on. With a
    //  home cache, it is read there, where every branch of the request gets the same one.
    int rc;
    if (ctx->session_cache && ctx->session_cache[0] && ctx->request_id && ctx->request_id[0])
        rc = s_home_get(ctx, key, out);
    else if (!kvs)
        return -EHOSTUNREACH;
    else
        rc = cb_kvs_get(kvs, key, out);
    if (rc == -ESTALE)
        return rc;
    if (rc == -ENOENT) {
        s_session_add(ctx, key, true, 0, NULL, 0);
        return rc;
    }
    if (rc)
        return rc;
    if (ctx->n_reads >= EXEC_MAX_SESSION_READS) {
        lat_fini(out);
        return s_session_fail(ctx, "too many keys read by one request, at", key);
    }
    cb_bytes_t bytes = {0};
    if (wire_encode(out, &bytes) != 0) {
        lat_fini(out);
        return s_session_fail(ctx, "cannot encode the version of", key);
    }
    s_session_add(ctx, key, false, (int)out->kind, bytes.data, bytes.len);
    cb_bytes_fini(&bytes);
    return 0;
}

cb_kvs_t *exec_fnctx_kvs(cb_fn_ctx_t *ctx, char *err, size_t errlen)
{
    if (!ctx->kvs) {
        ctx->kvs = cb_kvs_new(&ctx->kvs_config);
        if (!ctx->kvs && err)
            snprintf(err, errlen, "cannot make a KVS client for %s: %s", ctx->kvs_config.routing,
                     strerror(errno));
    }
    return ctx->kvs;
}

void *cb_fn_alloc(cb_fn_ctx_t *ctx, size_t size)
{
    exec_block_t *block = cb_malloc(sizeof *block + size);
    block->next = ctx->arena;
    ctx->arena = block;
    return block->data;
}

void *exec_fnctx_dup(cb_fn_ctx_t *ctx, const void *data, size_t len)
{
    unsigned char *p = cb_fn_alloc(ctx, len + 1);
    if (len)
        memcpy(p, data, len);
    p[len] = 0;
    return p;
}

//  --------------------------------------------------------------------------------------
//  Frame I/O

int exec_chan_write(int fd, const exec_buf_t *buf)
{
    for (size_t done = 0; done < buf->len;) {
        ssize_t n = write(fd, buf->data + done, buf->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

//  Reads exactly len bytes into p before deadline (monotonic ms; INT64_MAX: none).
static int s_read_exact(int fd, uint8_t *p, size_t len, int64_t deadline)
{
    while (len) {
        if (deadline != INT64_MAX) {
            int64_t left = deadline - cb_clock_mono_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int rc = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
            if (rc < 0 && errno != EINTR)
                return -errno;
            if (rc <= 0)
                continue;
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int exec_chan_read(int fd, exec_buf_t *buf, int timeout_ms, uint8_t *type, exec_reader_t *body)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cb_clock_mono_ms() + timeout_ms;
    buf->len = 0;
    uint8_t *head = exec_buf_reserve(buf, 4);
    int rc = s_read_exact(fd, head, 4, deadline);
    if (rc)
        return rc;
    uint32_t n = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
                 (uint32_t)head[3] << 24;
    if (n == 0 || n > EXEC_FRAME_MAX)
        return -EPROTO;
    buf->len = 4;
    //  Once a frame has started, the rest follows at once: wait for it without a limit
    //  rather than leave the stream in the middle of a frame.
    rc = s_read_exact(fd, exec_buf_reserve(buf, n), n, INT64_MAX);
    if (rc)
        return rc;
    buf->len += n;
    size_t used;
    return exec_frame_parse(buf->data, buf->len, type, body, &used);
}

//  --------------------------------------------------------------------------------------
//  Results and errors

int cb_fn_return_int(cb_fn_ctx_t *ctx, cb_fn_value_t *result, int64_t v)
{
    (void)ctx;
    *result = cb_fn_int(v);
    return 0;
}

int cb_fn_return_float(cb_fn_ctx_t *ctx, cb_fn_value_t *result, double v)
{
    (void)ctx;
    *result = cb_fn_float(v);
    return 0;
}

int cb_fn_return_bytes(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const void *data, size_t len)
{
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, data, len), len);
    return 0;
}

int cb_fn_return_string(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const char *text)
{
    size_t len = strlen(text);
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, text, len), len);
    result->type = CB_FN_STRING;
    return 0;
}

int cb_fn_return_user(cb_fn_ctx_t *ctx, cb_fn_value_t *result, uint32_t user_tag, const void *data,
                      size_t len)
{
    *result = cb_fn_bytes(exec_fnctx_dup(ctx, data, len), len);
    result->type = CB_FN_USER;
    result->user_tag = user_tag;
    return 0;
}

int cb_fn_return_value(cb_fn_ctx_t *ctx, cb_fn_value_t *result, const cb_fn_value_t *value)
{
    *result = *value;
    if (value->type != CB_FN_INT64 && value->type != CB_FN_FLOAT64)
        result->data = exec_fnctx_dup(ctx, value->data, value->len);
    return 0;
}

int cb_fn_error(cb_fn_ctx_t *ctx, const char *fmt, ...)
{
    char text[EXEC_MAX_ERROR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cb_free(ctx->error);
    ctx->error = cb_strdup(text);
    return -1;
}

void cb_fn_log(cb_fn_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->n_logs >= EXEC_MAX_LOG_LINES) {
        ctx->logs_dropped++;
        return;
    }
    char line[EXEC_MAX_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!ctx->logs)
        ctx->logs = cb_malloc(EXEC_MAX_LOG_LINES * sizeof *ctx->logs);
    ctx->logs[ctx->n_logs++] = cb_strdup(line);
}

const char *cb_fn_name(cb_fn_ctx_t *ctx)
{
    return ctx->function;
}

//  --------------------------------------------------------------------------------------
//  State

int cb_fn_get(cb_fn_ctx_t *ctx, const char *key, cb_fn_value_t *out)
{
    memset(out, 0, sizeof *out);
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    lat_t v;
    int rc = exec_fnctx_read(ctx, key, &v);
    if (rc)
        return rc;
    const cb_bytes_t *bytes = exec_fnctx_value_bytes(ctx, &v);
    if (!bytes) {
        lat_fini(&v);
        return -EINVAL;
    }
    const uint8_t *copy = exec_fnctx_dup(ctx, bytes->data, bytes->len);
    rc = exec_value_view(copy, bytes->len, out);
    lat_fini(&v);
    if (rc == 0 && out->type == EXEC_VALUE_ERROR)
        rc = -EINVAL;
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

const cb_bytes_t *exec_fnctx_value_bytes(const cb_fn_ctx_t *ctx, const lat_t *v)
{
    if (v->kind == LAT_LWW && !s_causal_level(ctx))
        return &v->u.lww.value;
    if (exec_causal_kind(v->kind) && s_causal_level(ctx) && v->u.causal.len == 1)
        return &v->u.causal.items[0].value;
    return NULL;
}

//  A write under SINGLE_CAUSAL / MULTI_CAUSAL: a causal value of one version whose clock
//  dominates what the request read of key and what this node's cache shows of it, ticked
//  at this executor's id ("n0/1", not one per request or per process: clocks stay as small
//  as the number of executor slots that ever wrote the key; an executor runs one call at a
//  time, and its earlier writes are in what this node's cache shows, so its ticks do not
//  collide). Under MULTI_CAUSAL it carries everything
//  the request depends on. The version joins the session: later reads of the request (here
//  and downstream) see this write or a later one.
static int s_causal_put(cb_fn_ctx_t *ctx, cb_kvs_t *kvs, const char *key, const uint8_t *bytes,
                        size_t n)
{
    bool multi = ctx->consistency == CONSISTENCY__CONSISTENCY_MULTI_CAUSAL;
    lat_t current;
    int rc = cb_kvs_get(kvs, key, &current);
    if (rc == -ENOENT)
        lat_init(&current, LAT_NONE);
    else if (rc)
        return rc;
    else if (!exec_causal_kind(current.kind)) {
        lat_fini(&current);
        return -EINVAL;
    }
    lat_vclock_t need = {0}, clock = {0};
    exec_causal_need(ctx->reads, ctx->n_reads, key, multi, &need);
    exec_causal_write_clock(&current, &need, ctx->writer_id, &clock);
    lat_fini(&current);
    lat_deps_t deps = {0};
    if (multi)
        exec_causal_deps(ctx->reads, ctx->n_reads, key, &deps);
    lat_t v;
    lat_init(&v, multi ? LAT_MULTI_CAUSAL : LAT_SINGLE_CAUSAL);
    lat_causal_add(&v, &clock, &deps, bytes, n);
    lat_vclock_fini(&need);
    lat_vclock_fini(&clock);
    lat_deps_fini(&deps);
    rc = cb_kvs_put(kvs, key, &v);
    if (rc == 0)
        rc = s_session_add_version(ctx, key, &v);
    lat_fini(&v);
    return rc;
}

int cb_fn_put(cb_fn_ctx_t *ctx, const char *key, const cb_fn_value_t *value)
{
    bool scalar = value->type == CB_FN_INT64 || value->type == CB_FN_FLOAT64;
    if (!exec_value_type_ok(value->type) || (!scalar && value->len && !value->data))
        return -EINVAL;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    size_t n = exec_value_size(value);
    uint8_t *bytes = cb_malloc(n);
    exec_value_write(value, bytes);
    int rc = s_causal_level(ctx) ? s_causal_put(ctx, kvs, key, bytes, n)
                                 : cb_kvs_put_lww(kvs, key, bytes, n);
    cb_free(bytes);
    return rc;
}

int cb_fn_get_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t *kind, const void **payload,
                      size_t *len)
{
    *kind = 0;
    *payload = NULL;
    *len = 0;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    if (!kvs)
        return -EHOSTUNREACH;
    lat_t v;
    int rc = exec_fnctx_read(ctx, key, &v);
    if (rc)
        return rc;
    cb_bytes_t bytes = {0};
    rc = wire_encode(&v, &bytes);
    if (rc == 0) {
        *kind = (uint32_t)v.kind;
        *payload = exec_fnctx_dup(ctx, bytes.data, bytes.len);
        *len = bytes.len;
    }
    cb_bytes_fini(&bytes);
    lat_fini(&v);
    return rc;
}

int cb_fn_put_lattice(cb_fn_ctx_t *ctx, const char *key, uint32_t kind, const void *payload,
                      size_t len)
{
    if (!lat_kind_valid((int)kind))
        return -EINVAL;
    lat_t v;
    if (wire_decode((int)kind, payload, len, &v) != 0)
        return -EINVAL;
    cb_kvs_t *kvs = exec_fnctx_kvs(ctx, NULL, 0);
    int rc = kvs ? cb_kvs_put(kvs, key, &v) : -EHOSTUNREACH;
    lat_fini(&v);
    return rc;
}

//  --------------------------------------------------------------------------------------
//  Messages

const char *cb_fn_getid(cb_fn_ctx_t *ctx)
{
    return ctx->executor_id;
}

int cb_fn_send(cb_fn_ctx_t *ctx, const char *executor_id, const void *data, size_t len)
{
    if (!executor_id || (strncmp(executor_id, "tcp://", 6) && strncmp(executor_id, "ipc://", 6)))
        return -EINVAL;
    if (len > EXEC_MAX_SEND || strlen(executor_id) > 1024)
        return -EMSGSIZE;
    if (len && !data)
        return -EINVAL;
    ctx->out.len = 0;
    size_t start = exec_frame_begin(&ctx->out, EXEC_R_SEND);
    exec_frame_str(&ctx->out, executor_id);
    exec_frame_bytes(&ctx->out, data, len);
    exec_frame_end(&ctx->out, start);
    return exec_chan_write(ctx->fd, &ctx->out);
}

int cb_fn_recv(cb_fn_ctx_t *ctx, cb_fn_message_t *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    if (timeout_ms < 0)
        timeout_ms = 0;
    ctx->out.len = 0;
    size_t start = exec_frame_begin(&ctx->out, EXEC_R_RECV);
    exec_frame_u32(&ctx->out, (uint32_t)timeout_ms);
    exec_frame_end(&ctx->out, start);
    int rc = exec_chan_write(ctx->fd, &ctx->out);
    if (rc)
        return rc;
    //  The executor answers by the deadline it was given (or kills us when the call's
    //  own timeout comes first); the margin only guards against an executor gone wrong.
    for (;;) {
        uint8_t type;
        exec_reader_t r;
        rc = exec_chan_read(ctx->fd, &ctx->aux, timeout_ms + 5000, &type, &r);
        if (rc < 0)
            return rc == -EPIPE ? -EPIPE : -ETIMEDOUT;
        if (type != EXEC_M_INBOX)
            continue; //  nothing else is sent during a call; skip what is not ours
        bool found = exec_read_u8(&r);
        const char *sender = exec_read_str(&r);
        size_t len;
        const uint8_t *data = exec_read_bytes(&r, &len);
        if (!exec_read_done(&r) || !found)
            return -ETIMEDOUT;
        out->sender = exec_fnctx_dup(ctx, sender, strlen(sender));
        out->data = exec_fnctx_dup(ctx, data, len);
        out->len = len;
        return 0;
    }
}
