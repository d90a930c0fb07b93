//  tests/system/client_faults.c: the client library against a peer that breaks the protocol.
//
//  FAULT INJECTOR. This program embeds a deliberately misbehaving Anna peer (a thread with
//  raw ZeroMQ sockets: a routing PULL and one worker PULL on 127.0.0.1). It is NOT a model
//  of anna-server and must not grow into one: it stores nothing and exists only to send
//  what a correct server never sends, so that the client's handling of it is tested:
//    "junk:"       the worker answers with bytes that carry our request id but do not decode
//    "badroute:"   the routing tier answers the same way
//    "noservers:"  the routing tier answers the whole lookup with error NO_SERVERS
//    "none:"       the routing tier returns the key with no address
//    "split:"      the worker answers the key in a second KeyResponse with the same id
//    "wrong:"      the worker always answers WRONG_THREAD, even after a fresh lookup
//    "mute:"       the worker never answers (while the routing tier still lists it)
//  Any other key: routed to the worker; a GET is answered with an LWW value equal to the
//  key, a PUT with NO_ERROR. Everything a real server can produce (errors, WRONG_THREAD
//  once, invalidate, batching, timeouts, late replies) is tested against anna-server in
//  tests/system/client_api.c.
//  Usage: client_faults   (run by t_client_faults.sh; needs no server, binds ephemeral ports)
//  SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "client/codec.h"
#include "client/kvs.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "lattices/lattice.h"

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

//  ---- the fault injector ------------------------------------------------------------------

typedef struct {
    void *ctx;
    void *routing;              //  PULL
    void *worker;               //  PULL
    char routing_addr[64];
    char worker_addr[64];
    void *reply;                //  PUSH to the last response address seen
    char reply_addr[256];
    pthread_t thread;
    atomic_bool stop;
} s_peer_t;

static bool s_prefix(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static void *s_bind(s_peer_t *self, char *addr, size_t cap)
{
    void *sock = zmq_socket(self->ctx, ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    CHECK(zmq_bind(sock, "tcp://127.0.0.1:*") == 0, "bind: %s", zmq_strerror(errno));
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, addr, &cap);
    return sock;
}

static void s_send(s_peer_t *self, const char *addr, const void *data, size_t len)
{
    if (strcmp(self->reply_addr, addr)) {
        if (self->reply)
            zmq_close(self->reply);
        self->reply = zmq_socket(self->ctx, ZMQ_PUSH);
        int zero = 0;
        zmq_setsockopt(self->reply, ZMQ_LINGER, &zero, sizeof zero);
        zmq_connect(self->reply, addr);
        snprintf(self->reply_addr, sizeof self->reply_addr, "%s", addr);
    }
    zmq_send(self->reply, data, len, ZMQ_DONTWAIT);
}

//  Well framed, with the right id (field 3 of both response messages), then field 1 / 2 (a
//  repeated message in both) holding bytes that are no message: the id can be read, the
//  response cannot be decoded.
static void s_send_junk(s_peer_t *self, const char *addr, const char *id)
{
    uint8_t buf[160];
    size_t n = strlen(id), o = 0;
    CHECK(n < 128, "id too long");
    buf[o++] = 0x1a;
    buf[o++] = (uint8_t)n;
    memcpy(buf + o, id, n);
    o += n;
    const uint8_t tail[] = {0x0a, 0x02, 0xff, 0xff, 0x12, 0x02, 0xff, 0xff};
    memcpy(buf + o, tail, sizeof tail);
    s_send(self, addr, buf, o + sizeof tail);
}

static void s_on_lookup(s_peer_t *self, const uint8_t *data, size_t len)
{
    cb_codec_address_request_t req;
    if (cb_codec_address_request_decode(data, len, &req) != 0)
        return;
    cb_codec_key_address_t *addrs = cb_calloc(req.len + 1, sizeof *addrs);
    char *worker = self->worker_addr;
    cb_codec_addresses_t out = {.response_id = req.request_id, .addresses = addrs, .len = req.len};
    bool junk = false;
    for (size_t i = 0; i < req.len; i++) {
        addrs[i] = (cb_codec_key_address_t){req.keys[i], &worker, 1};
        if (s_prefix(req.keys[i], "none:"))
            addrs[i].n_ips = 0;
        if (s_prefix(req.keys[i], "noservers:"))
            out.error = CB_ANNA_NO_SERVERS;
        junk |= s_prefix(req.keys[i], "badroute:");
    }
    if (out.error)
        out.len = 0;
    if (junk) {
        s_send_junk(self, req.response_address, req.request_id);
    } else {
        cb_bytes_t bytes = {0};
        cb_codec_addresses_encode(&out, &bytes);
        s_send(self, req.response_address, bytes.data, bytes.len);
        cb_bytes_fini(&bytes);
    }
    cb_free(addrs);
    cb_codec_address_request_fini(&req);
}

static void s_reply(s_peer_t *self, const cb_codec_request_t *req, cb_codec_reply_tuple_t *tuples,
                    size_t n)
{
    if (!n)
        return;
    cb_codec_reply_t reply = {.response_id = req->request_id, .tuples = tuples, .len = n};
    cb_bytes_t bytes = {0};
    CHECK(cb_codec_reply_encode(req->type, &reply, &bytes) == 0, "encode");
    s_send(self, req->response_address, bytes.data, bytes.len);
    cb_bytes_fini(&bytes);
}

static void s_on_request(s_peer_t *self, const uint8_t *data, size_t len)
{
    cb_codec_request_t req;
    if (cb_codec_request_decode(data, len, &req) != 0)
        return;
    //  now[0..n_now) go in the first response, later[0..n_later) in a second one.
    cb_codec_reply_tuple_t *now = cb_calloc(req.len + 1, sizeof *now);
    cb_codec_reply_tuple_t *later = cb_calloc(req.len + 1, sizeof *later);
    size_t n_now = 0, n_later = 0;
    bool junk = false, mute = false;
    for (size_t i = 0; i < req.len; i++) {
        char *key = req.tuples[i].key;
        junk |= s_prefix(key, "junk:");
        mute |= s_prefix(key, "mute:");
        cb_codec_reply_tuple_t *t = s_prefix(key, "split:") ? &later[n_later++] : &now[n_now++];
        t->key = key;
        lat_init(&t->value, LAT_NONE);
        if (s_prefix(key, "wrong:")) {
            t->error = CB_ANNA_WRONG_THREAD;
        } else if (req.type == CB_CODEC_GET) {
            lat_init(&t->value, LAT_LWW);
            lat_lww_assign(&t->value, 1, 1, key, strlen(key));
        }
    }
    if (junk)
        s_send_junk(self, req.response_address, req.request_id);
    else if (!mute) {
        s_reply(self, &req, now, n_now);
        s_reply(self, &req, later, n_later);
    }
    for (size_t i = 0; i < n_now; i++)
        lat_fini(&now[i].value);
    for (size_t i = 0; i < n_later; i++)
        lat_fini(&later[i].value);
    cb_free(now);
    cb_free(later);
    cb_codec_request_fini(&req);
}

static void *s_peer_run(void *arg)
{
    s_peer_t *self = arg;
    zmq_pollitem_t items[2] = {{self->routing, 0, ZMQ_POLLIN, 0}, {self->worker, 0, ZMQ_POLLIN, 0}};
    while (!atomic_load(&self->stop)) {
        if (zmq_poll(items, 2, 20) < 0)
            continue;
        for (int s = 0; s < 2; s++) {
            if (!(items[s].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, items[s].socket, ZMQ_DONTWAIT) >= 0) {
                if (s == 0)
                    s_on_lookup(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
                else
                    s_on_request(self, zmq_msg_data(&msg), zmq_msg_size(&msg));
            }
            zmq_msg_close(&msg);
        }
    }
    return NULL;
}

static void s_peer_start(s_peer_t *self)
{
    memset(self, 0, sizeof *self);
    self->ctx = zmq_ctx_new();
    self->routing = s_bind(self, self->routing_addr, sizeof self->routing_addr);
    self->worker = s_bind(self, self->worker_addr, sizeof self->worker_addr);
    CHECK(pthread_create(&self->thread, NULL, s_peer_run, self) == 0, "pthread_create");
}

static void s_peer_stop(s_peer_t *self)
{
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    zmq_close(self->routing);
    zmq_close(self->worker);
    if (self->reply)
        zmq_close(self->reply);
    zmq_ctx_term(self->ctx);
}

//  ---- the checks ---------------------------------------------------------------------------

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text)
           && !memcmp(v->u.lww.value.data, text, strlen(text));
}

//  GET key: returns the error, checks the message contains want (if not NULL).
static int s_get_fails(cb_kvs_t *kvs, const char *key, int want, const char *text)
{
    lat_t v;
    int rc = cb_kvs_get(kvs, key, &v);
    CHECK(rc == want && v.kind == LAT_NONE, "get %s: %d (%s)", key, rc, cb_kvs_last_error(kvs));
    CHECK(strstr(cb_kvs_last_error(kvs), text), "get %s: message [%s] lacks [%s]", key,
          cb_kvs_last_error(kvs), text);
    printf("ok: %-12s -> %s\n", key, cb_kvs_last_error(kvs));
    return rc;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    s_peer_t peer;
    s_peer_start(&peer);
    const int timeout = 300;
    cb_kvs_config_t config = {.routing = peer.routing_addr, .timeout_ms = timeout};
    cb_kvs_t *kvs = cb_kvs_new(&config);
    CHECK(kvs, "cb_kvs_new: %s", strerror(errno));
    cb_kvs_stats_t before, st;
    lat_t v;

    CHECK(cb_kvs_get(kvs, "k", &v) == 0 && s_lww_is(&v, "k"), "get k: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    CHECK(cb_kvs_cache_count(kvs, "k") == 1 && !strcmp(cb_kvs_cache_addr(kvs, "k", 0), peer.worker_addr),
          "k cached at the worker");
    printf("ok: the injector answers a plain key\n");

    //  Replies that do not decode.
    s_get_fails(kvs, "junk:k", -EPROTO, "malformed reply from tcp://127.0.0.1:");
    s_get_fails(kvs, "badroute:k", -EPROTO, "malformed reply from the routing tier");

    //  The routing tier has no server for a key, or none at all. A key with cached addresses
    //  does not need it and is still served in the same batch.
    s_get_fails(kvs, "none:k", -EHOSTUNREACH, "has no server for it");
    const char *ns[] = {"k", "noservers:k"};
    cb_kvs_result_t r2[2];
    int rc = cb_kvs_get_many(kvs, ns, 2, r2);
    CHECK(rc == -EHOSTUNREACH, "get_many with NO_SERVERS: %d", rc);
    CHECK(r2[0].error == 0 && s_lww_is(&r2[0].value, "k"), "cached key served anyway");
    CHECK(r2[1].error == -EHOSTUNREACH && r2[1].value.kind == LAT_NONE, "noservers: %d", r2[1].error);
    CHECK(strstr(cb_kvs_last_error(kvs), "knows no servers"), "message: %s", cb_kvs_last_error(kvs));
    lat_fini(&r2[0].value);
    printf("ok: NO_SERVERS -> -EHOSTUNREACH, cached key served: %s\n", cb_kvs_last_error(kvs));

    //  WRONG_THREAD again after the fresh lookup: -EAGAIN, and the key is not cached.
    cb_kvs_stats(kvs, &before);
    rc = cb_kvs_put_lww(kvs, "wrong:k", "x", 1);
    cb_kvs_stats(kvs, &st);
    CHECK(rc == -EAGAIN, "put wrong:k: %d", rc);
    CHECK(st.wrong_thread == before.wrong_thread + 2 && st.retries == before.retries + 1
              && st.lookups == before.lookups + 2 && st.requests == before.requests + 2,
          "wrong_thread +%llu retries +%llu lookups +%llu",
          (unsigned long long)(st.wrong_thread - before.wrong_thread),
          (unsigned long long)(st.retries - before.retries),
          (unsigned long long)(st.lookups - before.lookups));
    CHECK(!cb_kvs_cache_count(kvs, "wrong:k"), "wrong:k still cached");
    printf("ok: WRONG_THREAD twice -> -EAGAIN: %s\n", cb_kvs_last_error(kvs));

    //  One request whose answers come in two KeyResponses with the same id; a key twice.
    const char *keys[] = {"a", "split:b", "a", "split:c"};
    cb_kvs_result_t res[4];
    cb_kvs_stats(kvs, &before);
    rc = cb_kvs_get_many(kvs, keys, 4, res);
    cb_kvs_stats(kvs, &st);
    CHECK(rc == 0, "split get_many: %s", cb_kvs_last_error(kvs));
    for (int i = 0; i < 4; i++) {
        CHECK(res[i].error == 0 && s_lww_is(&res[i].value, keys[i]), "result %d (%s)", i, keys[i]);
        lat_fini(&res[i].value);
    }
    CHECK(st.requests == before.requests + 1 && st.discarded == before.discarded,
          "requests +%llu discarded +%llu", (unsigned long long)(st.requests - before.requests),
          (unsigned long long)(st.discarded - before.discarded));
    printf("ok: one request answered in two responses with the same id\n");

    //  A worker the routing tier lists that never answers: retried once after a fresh
    //  lookup, then -ETIMEDOUT naming the worker; every key cached on it is dropped.
    CHECK(cb_kvs_cache_count(kvs, "k") == 1, "k cached");
    cb_kvs_stats(kvs, &before);
    int64_t t0 = cb_clock_mono_ms();
    s_get_fails(kvs, "mute:k", -ETIMEDOUT, "no answer from tcp://127.0.0.1:");
    int64_t took = cb_clock_mono_ms() - t0;
    cb_kvs_stats(kvs, &st);
    CHECK(took >= 2 * timeout - 10 && took < 2 * timeout + 1500, "took %lld ms", (long long)took);
    CHECK(st.timeouts == before.timeouts + 2 && st.retries == before.retries + 1
              && st.lookups == before.lookups + 2,
          "timeouts +%llu retries +%llu", (unsigned long long)(st.timeouts - before.timeouts),
          (unsigned long long)(st.retries - before.retries));
    CHECK(!cb_kvs_cache_count(kvs, "k"), "k (on the suspected worker) still cached");
    CHECK(cb_kvs_get(kvs, "k", &v) == 0 && s_lww_is(&v, "k"), "get k after: %s", cb_kvs_last_error(kvs));
    lat_fini(&v);
    printf("ok: mute worker: two attempts in %lld ms, its keys dropped from the cache\n",
           (long long)took);

    cb_kvs_destroy(&kvs);
    s_peer_stop(&peer);
    printf("client_faults: all checks passed\n");
    return 0;
}
