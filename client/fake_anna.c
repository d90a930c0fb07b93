//  client/fake_anna.c: a scripted Anna node for the client self-tests (see fake_anna.h).
//  One thread owns every socket and the store; the test thread only reads two atomics.
//  SPDX-License-Identifier: Apache-2.0
#include "client/fake_anna.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "client/codec.h"
#include "common/alloc.h"
#include "lattices/lattice.h"
#include "proto/wire.h"

#define S_MAX_WORKERS 4

typedef struct {
    char *key;                  //  owned
    lat_t value;                //  owned
} s_item_t;

typedef struct {
    char *key;                  //  owned: a key that got WRONG_THREAD once ("wrong:")
} s_seen_t;

typedef struct {
    char *response_address;     //  owned; NULL when nothing is muted
    char *request_id;           //  owned
    char *key;                  //  owned
} s_muted_t;

struct _cb_fake_anna_t {
    void *ctx;
    void *routing;              //  PULL
    void *workers[S_MAX_WORKERS];       //  PULL
    char *routing_addr;
    char *worker_addrs[S_MAX_WORKERS];
    size_t n_workers;
    void *reply;                //  PUSH to the one client of a test
    char *reply_addr;
    s_item_t *items;            //  the store (one for all workers: keys do not move)
    size_t n_items;
    s_seen_t *seen;
    size_t n_seen;
    s_muted_t muted[S_MAX_WORKERS];
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t requests;
    atomic_uint_fast32_t last_cache_size;
};

static bool s_has_prefix(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static void *s_bind(cb_fake_anna_t *self, int type, char **addr_p)
{
    void *sock = zmq_socket(self->ctx, type);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(sock, "tcp://127.0.0.1:*") != 0) {
        zmq_close(sock);
        return NULL;
    }
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len);
    *addr_p = cb_strdup(endpoint);
    return sock;
}

static void s_send_to(cb_fake_anna_t *self, const char *addr, const cb_bytes_t *bytes)
{
    if (!self->reply_addr || strcmp(self->reply_addr, addr)) {
        if (self->reply)
            zmq_close(self->reply);
        cb_free(self->reply_addr);
        self->reply = zmq_socket(self->ctx, ZMQ_PUSH);
        int zero = 0;
        zmq_setsockopt(self->reply, ZMQ_LINGER, &zero, sizeof zero);
        zmq_connect(self->reply, addr);
        self->reply_addr = cb_strdup(addr);
    }
    zmq_send(self->reply, bytes->data, bytes->len, ZMQ_DONTWAIT);
}

static void s_handle_routing(cb_fake_anna_t *self, const uint8_t *data, size_t len)
{
    cb_codec_address_request_t req;
    if (cb_codec_address_request_decode(data, len, &req) != 0)
        return;
    cb_codec_addresses_t out = {.response_id = req.request_id};
    out.addresses = cb_calloc(req.len ? req.len : 1, sizeof *out.addresses);
    out.len = req.len;
    for (size_t i = 0; i < req.len; i++) {
        const char *key = req.keys[i];
        cb_codec_key_address_t *a = &out.addresses[i];
        a->key = req.keys[i];
        a->ips = self->worker_addrs;                //  borrowed; never freed here
        if (s_has_prefix(key, "noservers:"))
            out.error = CB_ANNA_NO_SERVERS;
        else if (s_has_prefix(key, "none:"))
            a->n_ips = 0;
        else if (s_has_prefix(key, "two:"))
            a->n_ips = self->n_workers;
        else if (s_has_prefix(key, "w1:") && self->n_workers > 1) {
            a->ips = &self->worker_addrs[1];
            a->n_ips = 1;
        } else
            a->n_ips = 1;
    }
    if (out.error)
        out.len = 0;
    cb_bytes_t bytes = {0};
    cb_codec_addresses_encode(&out, &bytes);
    s_send_to(self, req.response_address, &bytes);
    cb_bytes_fini(&bytes);
    cb_free(out.addresses);
    cb_codec_address_request_fini(&req);
}

static s_item_t *s_find(cb_fake_anna_t *self, const char *key)
{
    for (size_t i = 0; i < self->n_items; i++)
        if (!strcmp(self->items[i].key, key))
            return &self->items[i];
    return NULL;
}

//  True the first time key is seen (for "wrong:").
static bool s_first_time(cb_fake_anna_t *self, const char *key)
{
    for (size_t i = 0; i < self->n_seen; i++)
        if (!strcmp(self->seen[i].key, key))
            return false;
    self->seen = cb_realloc(self->seen, (self->n_seen + 1) * sizeof *self->seen);
    self->seen[self->n_seen++].key = cb_strdup(key);
    return true;
}

//  Fills the answer to one tuple of a request, with the real merge behind it.
static void s_answer(cb_fake_anna_t *self, int type, const cb_codec_request_tuple_t *in,
                     cb_codec_reply_tuple_t *out, char *msg, size_t msg_cap)
{
    out->key = in->key;
    lat_init(&out->value, LAT_NONE);
    atomic_store(&self->last_cache_size, in->address_cache_size);
    if (s_has_prefix(in->key, "wrong2:")
        || (s_has_prefix(in->key, "wrong:") && s_first_time(self, in->key))) {
        out->error = CB_ANNA_WRONG_THREAD;
        return;
    }
    out->invalidate = s_has_prefix(in->key, "inv:");
    s_item_t *item = s_find(self, in->key);
    if (type == CB_CODEC_GET) {
        if (!item) {
            out->error = CB_ANNA_KEY_DNE;
            return;
        }
        lat_copy(&out->value, &item->value);
        return;
    }
    //  PUT: the wire payload is trusted here (our own client sent it); a real server checks.
    lat_t value;
    if (wire_decode(in->kind, in->payload.data, in->payload.len, &value) != 0) {
        out->error = CB_ANNA_BAD_REQUEST;
        snprintf(msg, msg_cap, "payload does not decode as %s", lat_kind_name(in->kind));
        out->error_message = msg;
        return;
    }
    if (!item) {
        self->items = cb_realloc(self->items, (self->n_items + 1) * sizeof *self->items);
        item = &self->items[self->n_items++];
        item->key = cb_strdup(in->key);
        lat_init(&item->value, value.kind);
    }
    if (lat_merge(&item->value, &value) < 0) {
        out->error = CB_ANNA_LATTICE;
        snprintf(msg, msg_cap, "key holds %s, not %s", lat_kind_name(item->value.kind),
                 lat_kind_name(value.kind));
        out->error_message = msg;
    }
    lat_fini(&value);
}

static void s_send_reply(cb_fake_anna_t *self, int type, const char *addr, const char *id,
                         cb_codec_reply_tuple_t *tuples, size_t n)
{
    cb_codec_reply_t reply = {.response_id = (char *)(uintptr_t)id, .tuples = tuples, .len = n};
    cb_bytes_t bytes = {0};
    int rc = cb_codec_reply_encode(type, &reply, &bytes);
    assert(rc == 0);
    s_send_to(self, addr, &bytes);
    cb_bytes_fini(&bytes);
}

static void s_handle_worker(cb_fake_anna_t *self, size_t w, const uint8_t *data, size_t len)
{
    cb_codec_request_t req;
    if (cb_codec_request_decode(data, len, &req) != 0)
        return;
    atomic_fetch_add(&self->requests, 1);
    s_muted_t *muted = &self->muted[w];
    if (muted->response_address) {
        //  The late reply: a value under the id of a request the client gave up on.
        cb_codec_reply_tuple_t late = {.key = muted->key};
        lat_init(&late.value, LAT_LWW);
        lat_lww_assign(&late.value, 1, 1, "late!", 5);
        s_send_reply(self, CB_CODEC_GET, muted->response_address, muted->request_id, &late, 1);
        lat_fini(&late.value);
        cb_free(muted->response_address);
        cb_free(muted->request_id);
        cb_free(muted->key);
        memset(muted, 0, sizeof *muted);
    }
    cb_codec_reply_tuple_t *now = cb_calloc(req.len + 1, sizeof *now);
    cb_codec_reply_tuple_t *later = cb_calloc(req.len + 1, sizeof *later);
    char(*msgs)[128] = cb_calloc(req.len + 1, sizeof *msgs);
    size_t n_now = 0, n_later = 0;
    bool junk = false;
    for (size_t i = 0; i < req.len; i++) {
        const char *key = req.tuples[i].key;
        if (s_has_prefix(key, "mute:")) {
            if (!muted->response_address) {
                muted->response_address = cb_strdup(req.response_address);
                muted->request_id = cb_strdup(req.request_id);
                muted->key = cb_strdup(key);
            }
            continue;
        }
        junk |= s_has_prefix(key, "junk:");
        if (s_has_prefix(key, "split:"))
            s_answer(self, req.type, &req.tuples[i], &later[n_later++], msgs[i], sizeof msgs[i]);
        else
            s_answer(self, req.type, &req.tuples[i], &now[n_now++], msgs[i], sizeof msgs[i]);
    }
    if (junk) {
        //  The right id (field 3), well framed, then a tuple (field 2) whose contents are
        //  not a message: the id can be read, the response cannot be decoded.
        uint8_t buf[128];
        size_t idn = strlen(req.request_id), o = 0;
        assert(idn < 100);
        buf[o++] = 0x1a;
        buf[o++] = (uint8_t)idn;
        memcpy(buf + o, req.request_id, idn);
        o += idn;
        buf[o++] = 0x12;
        buf[o++] = 0x02;
        buf[o++] = 0xff;
        buf[o++] = 0xff;
        cb_bytes_t bytes = {buf, o};
        s_send_to(self, req.response_address, &bytes);
    } else {
        if (n_now)
            s_send_reply(self, req.type, req.response_address, req.request_id, now, n_now);
        if (n_later)
            s_send_reply(self, req.type, req.response_address, req.request_id, later, n_later);
    }
    for (size_t i = 0; i < n_now; i++)
        lat_fini(&now[i].value);
    for (size_t i = 0; i < n_later; i++)
        lat_fini(&later[i].value);
    cb_free(now);
    cb_free(later);
    cb_free(msgs);
    cb_codec_request_fini(&req);
}

static void *s_run(void *arg)
{
    cb_fake_anna_t *self = arg;
    zmq_pollitem_t items[1 + S_MAX_WORKERS];
    items[0] = (zmq_pollitem_t){self->routing, 0, ZMQ_POLLIN, 0};
    for (size_t w = 0; w < self->n_workers; w++)
        items[1 + w] = (zmq_pollitem_t){self->workers[w], 0, ZMQ_POLLIN, 0};
    while (!atomic_load(&self->stop)) {
        if (zmq_poll(items, (int)(1 + self->n_workers), 20) < 0 && errno != EINTR)
            break;
        for (size_t s = 0; s < 1 + self->n_workers; s++) {
            if (!(items[s].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, items[s].socket, ZMQ_DONTWAIT) >= 0) {
                if (s == 0)
                    s_handle_routing(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
                else
                    s_handle_worker(self, s - 1, zmq_msg_data(&msg), zmq_msg_size(&msg));
            }
            zmq_msg_close(&msg);
        }
    }
    return NULL;
}

cb_fake_anna_t *cb_fake_anna_new(size_t n_workers)
{
    assert(n_workers >= 1 && n_workers <= S_MAX_WORKERS);
    cb_fake_anna_t *self = cb_calloc(1, sizeof *self);
    self->ctx = zmq_ctx_new();
    self->n_workers = n_workers;
    self->routing = s_bind(self, ZMQ_PULL, &self->routing_addr);
    bool ok = self->routing != NULL;
    for (size_t w = 0; w < n_workers && ok; w++)
        ok = (self->workers[w] = s_bind(self, ZMQ_PULL, &self->worker_addrs[w])) != NULL;
    if (ok)
        ok = pthread_create(&self->thread, NULL, s_run, self) == 0;
    if (!ok) {
        int err = errno;
        for (size_t w = 0; w < n_workers; w++) {
            if (self->workers[w])
                zmq_close(self->workers[w]);
            cb_free(self->worker_addrs[w]);
        }
        if (self->routing)
            zmq_close(self->routing);
        cb_free(self->routing_addr);
        zmq_ctx_term(self->ctx);
        cb_free(self);
        errno = err ? err : EIO;
        return NULL;
    }
    return self;
}

void cb_fake_anna_destroy(cb_fake_anna_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cb_fake_anna_t *self = *self_p;
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    for (size_t w = 0; w < self->n_workers; w++) {
        zmq_close(self->workers[w]);
        cb_free(self->worker_addrs[w]);
        cb_free(self->muted[w].response_address);
        cb_free(self->muted[w].request_id);
        cb_free(self->muted[w].key);
    }
    zmq_close(self->routing);
    if (self->reply)
        zmq_close(self->reply);
    zmq_ctx_term(self->ctx);
    for (size_t i = 0; i < self->n_items; i++) {
        cb_free(self->items[i].key);
        lat_fini(&self->items[i].value);
    }
    for (size_t i = 0; i < self->n_seen; i++)
        cb_free(self->seen[i].key);
    cb_free(self->seen);
    cb_free(self->items);
    cb_free(self->reply_addr);
    cb_free(self->routing_addr);
    cb_free(self);
    *self_p = NULL;
}

const char *cb_fake_anna_routing(const cb_fake_anna_t *self)
{
    return self->routing_addr;
}

const char *cb_fake_anna_worker(const cb_fake_anna_t *self, size_t i)
{
    return i < self->n_workers ? self->worker_addrs[i] : NULL;
}

uint64_t cb_fake_anna_requests(const cb_fake_anna_t *self)
{
    return atomic_load(&((cb_fake_anna_t *)(uintptr_t)self)->requests);
}

uint32_t cb_fake_anna_last_cache_size(const cb_fake_anna_t *self)
{
    return (uint32_t)atomic_load(&((cb_fake_anna_t *)(uintptr_t)self)->last_cache_size);
}
