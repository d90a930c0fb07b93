//  tests/system/anna_testlib.h: a raw Anna-protocol client for the anna-server system tests
//  (anna_*.c). It sends exactly the bytes a test wants (raw zmq + protobuf-c), resolves owners
//  through the routing port, and waits for replies with a timeout. Header-only (static
//  inline), one test program per process; everything fails loudly with exit(1).
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_TESTLIB_H
#define ANNA_TESTLIB_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "lattices/lattice.h"
#include "proto/wire.h"

#define TL_TIMEOUT_MS 5000

static inline void tl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void tl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

#define TL_CHECK(cond, ...)                                                                       \
    do {                                                                                          \
        if (!(cond))                                                                              \
            tl_fail(__VA_ARGS__);                                                                 \
        else {                                                                                    \
            printf("ok: ");                                                                       \
            printf(__VA_ARGS__);                                                                  \
            printf("\n");                                                                         \
        }                                                                                         \
    } while (0)

//  Fails quietly on success (for checks inside loops).
#define TL_ASSERT(cond, ...)                                                                      \
    do {                                                                                          \
        if (!(cond))                                                                              \
            tl_fail(__VA_ARGS__);                                                                 \
    } while (0)

typedef struct {
    char address[128];
    void *sock;
} tl_push_t;

typedef struct {
    void *ctx;
    void *pull;                 //  our response socket
    char reply_to[128];         //  its address, sent as response_address
    int offset;                 //  port offset of the node under test
    tl_push_t pushes[64];       //  one PUSH per destination: keeps per-destination FIFO order
    int npushes;
    unsigned next_id;
    int skipped;                //  replies received that no one waited for
    char last_skipped[64];      //  response_id of the last of them
} tl_client_t;

static inline void tl_client_init(tl_client_t *c, int offset)
{
    memset(c, 0, sizeof *c);
    c->offset = offset;
    c->ctx = zmq_ctx_new();
    c->pull = zmq_socket(c->ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(c->pull, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(c->pull, "tcp://127.0.0.1:*") != 0)
        tl_fail("bind response socket: %s", zmq_strerror(errno));
    size_t len = sizeof c->reply_to;
    zmq_getsockopt(c->pull, ZMQ_LAST_ENDPOINT, c->reply_to, &len);
}

static inline void tl_client_fini(tl_client_t *c)
{
    for (int i = 0; i < c->npushes; i++)
        zmq_close(c->pushes[i].sock);
    zmq_close(c->pull);
    zmq_ctx_term(c->ctx);
}

static inline void tl_addr(char *buf, size_t len, int port)
{
    snprintf(buf, len, "tcp://127.0.0.1:%d", port);
}

//  Address of a worker thread's key port / gossip port, and of the routing port.
static inline void tl_key_addr(const tl_client_t *c, int thread, char *buf, size_t len)
{
    tl_addr(buf, len, 6200 + c->offset + thread);
}

static inline void tl_gossip_addr(const tl_client_t *c, int thread, char *buf, size_t len)
{
    tl_addr(buf, len, 6250 + c->offset + thread);
}

static inline void tl_routing_addr(const tl_client_t *c, char *buf, size_t len)
{
    tl_addr(buf, len, 6450 + c->offset);
}

static inline void *tl_push(tl_client_t *c, const char *address)
{
    for (int i = 0; i < c->npushes; i++)
        if (!strcmp(c->pushes[i].address, address))
            return c->pushes[i].sock;
    if (c->npushes == 64)
        tl_fail("too many destinations");
    tl_push_t *p = &c->pushes[c->npushes++];
    snprintf(p->address, sizeof p->address, "%s", address);
    p->sock = zmq_socket(c->ctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(p->sock, address) != 0)
        tl_fail("connect %s: %s", address, zmq_strerror(errno));
    return p->sock;
}

//  Sends raw bytes as one frame (more = true: as the first frame of several).
static inline void tl_send_raw(tl_client_t *c, const char *address, const void *data, size_t len,
                               bool more)
{
    if (zmq_send(tl_push(c, address), data, len, more ? ZMQ_SNDMORE : 0) < 0)
        tl_fail("send to %s: %s", address, zmq_strerror(errno));
}

static inline void tl_send_request(tl_client_t *c, const char *address, const KeyRequest *req)
{
    size_t len = key_request__get_packed_size(req);
    uint8_t *buf = cb_malloc(len ? len : 1);
    key_request__pack(req, buf);
    tl_send_raw(c, address, buf, len, false);
    cb_free(buf);
}

//  Waits for a reply frame for at most timeout_ms. Caller owns *data (cb_free). False on
//  timeout.
static inline bool tl_recv_raw(tl_client_t *c, int timeout_ms, uint8_t **data, size_t *len)
{
    zmq_pollitem_t item = {c->pull, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return false;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->pull, 0) < 0)
        tl_fail("recv: %s", zmq_strerror(errno));
    *len = zmq_msg_size(&msg);
    *data = cb_memdup(zmq_msg_data(&msg), *len);
    zmq_msg_close(&msg);
    return true;
}

//  Waits for the KeyResponse whose response_id is id (others are skipped). NULL on timeout.
//  Caller owns result (key_response__free_unpacked(r, NULL)).
static inline KeyResponse *tl_wait_response(tl_client_t *c, const char *id, int timeout_ms)
{
    int64_t deadline = cb_clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - cb_clock_mono_ms();
        uint8_t *data;
        size_t len;
        if (left <= 0 || !tl_recv_raw(c, (int)left, &data, &len))
            return NULL;
        KeyResponse *resp = key_response__unpack(NULL, len, data);
        cb_free(data);
        if (!resp)
            tl_fail("undecodable KeyResponse from the server");
        if (!strcmp(resp->response_id, id))
            return resp;
        c->skipped++;
        snprintf(c->last_skipped, sizeof c->last_skipped, "%s", resp->response_id);
        key_response__free_unpacked(resp, NULL);
    }
}

//  Asserts that no reply arrives within ms.
static inline void tl_expect_silence(tl_client_t *c, int ms, const char *what)
{
    uint8_t *data;
    size_t len;
    if (tl_recv_raw(c, ms, &data, &len)) {
        cb_free(data);
        tl_fail("%s: got an unexpected reply", what);
    }
    printf("ok: %s\n", what);
}

static inline void tl_new_id(tl_client_t *c, char *buf, size_t len)
{
    snprintf(buf, len, "tl-%u", ++c->next_id);
}

//  Resolves key through the routing port. Writes up to max addresses; returns how many.
static inline size_t tl_resolve(tl_client_t *c, const char *key, char addrs[][128], size_t max)
{
    char routing[64], id[32];
    tl_routing_addr(c, routing, sizeof routing);
    tl_new_id(c, id, sizeof id);
    KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
    char *keys[1] = {(char *)key};
    req.keys = keys;
    req.n_keys = 1;
    req.response_address = c->reply_to;
    req.request_id = id;
    size_t len = key_address_request__get_packed_size(&req);
    uint8_t *buf = cb_malloc(len);
    key_address_request__pack(&req, buf);
    tl_send_raw(c, routing, buf, len, false);
    cb_free(buf);
    int64_t deadline = cb_clock_mono_ms() + TL_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - cb_clock_mono_ms();
        uint8_t *data;
        if (left <= 0 || !tl_recv_raw(c, (int)left, &data, &len))
            tl_fail("no KeyAddressResponse for %s within %d ms", key, TL_TIMEOUT_MS);
        KeyAddressResponse *resp = key_address_response__unpack(NULL, len, data);
        cb_free(data);
        if (!resp)
            tl_fail("undecodable KeyAddressResponse");
        if (strcmp(resp->response_id, id) != 0) {
            key_address_response__free_unpacked(resp, NULL);
            continue;
        }
        if (resp->error != ANNA_ERROR__NO_ERROR || resp->n_addresses != 1 ||
            strcmp(resp->addresses[0]->key, key) != 0)
            tl_fail("bad KeyAddressResponse for %s", key);
        size_t n = resp->addresses[0]->n_ips;
        for (size_t i = 0; i < n && i < max; i++)
            snprintf(addrs[i], 128, "%s", resp->addresses[0]->ips[i]);
        key_address_response__free_unpacked(resp, NULL);
        return n < max ? n : max;
    }
}

//  The thread whose key port is address (-1 if not one of ours).
static inline int tl_thread_of(const tl_client_t *c, const char *address)
{
    int port;
    if (sscanf(address, "tcp://127.0.0.1:%d", &port) != 1)
        return -1;
    port -= 6200 + c->offset;
    return port >= 0 && port < 50 ? port : -1;
}

//  One-tuple request to address; waits for the reply. Caller owns result.
static inline KeyResponse *tl_request1(tl_client_t *c, const char *address, RequestType type,
                                       const char *key, int lattice_type, const void *payload,
                                       size_t payload_len, uint32_t cache_size)
{
    char id[32];
    tl_new_id(c, id, sizeof id);
    KeyTuple tuple = KEY_TUPLE__INIT;
    tuple.key = (char *)key;
    tuple.lattice_type = (LatticeType)lattice_type;
    tuple.payload.data = (uint8_t *)payload;
    tuple.payload.len = payload_len;
    tuple.address_cache_size = cache_size;
    KeyTuple *tuples[1] = {&tuple};
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = type;
    req.tuples = tuples;
    req.n_tuples = 1;
    req.response_address = c->reply_to;
    req.request_id = id;
    tl_send_request(c, address, &req);
    KeyResponse *resp = tl_wait_response(c, id, TL_TIMEOUT_MS);
    if (!resp)
        tl_fail("no reply from %s to %s of %s within %d ms", address,
                type == REQUEST_TYPE__GET ? "GET" : "PUT", key, TL_TIMEOUT_MS);
    if (resp->n_tuples != 1 || strcmp(resp->tuples[0]->key, key) != 0)
        tl_fail("reply tuples do not match the request (%zu tuples)", resp->n_tuples);
    if (resp->type != type)
        tl_fail("reply type %d, request type %d", resp->type, type);
    return resp;
}

//  PUT of value to address; returns the tuple's error (and copies the message to msg).
static inline int tl_put(tl_client_t *c, const char *address, const char *key, const lat_t *value,
                         char *msg, size_t msglen)
{
    cb_bytes_t payload = {0};
    if (wire_encode(value, &payload) != 0)
        tl_fail("wire_encode of kind %d", value->kind);
    KeyResponse *resp = tl_request1(c, address, REQUEST_TYPE__PUT, key, (int)value->kind,
                                    payload.data, payload.len, 0);
    cb_bytes_fini(&payload);
    int error = resp->tuples[0]->error;
    if (msg)
        snprintf(msg, msglen, "%s", resp->tuples[0]->error_message);
    key_response__free_unpacked(resp, NULL);
    return error;
}

//  GET from address; on NO_ERROR decodes into *out (caller finalises). Returns the error.
static inline int tl_get(tl_client_t *c, const char *address, const char *key, lat_t *out)
{
    KeyResponse *resp = tl_request1(c, address, REQUEST_TYPE__GET, key, 0, NULL, 0, 0);
    const KeyTuple *t = resp->tuples[0];
    int error = t->error;
    lat_init(out, LAT_NONE);
    if (error == ANNA_ERROR__NO_ERROR &&
        wire_decode((int)t->lattice_type, t->payload.data, t->payload.len, out) != 0)
        tl_fail("GET %s: undecodable payload of type %d", key, t->lattice_type);
    key_response__free_unpacked(resp, NULL);
    return error;
}

//  The owner address of key (the first one routing gives).
static inline void tl_owner(tl_client_t *c, const char *key, char *address)
{
    char addrs[8][128];
    if (tl_resolve(c, key, addrs, 8) < 1)
        tl_fail("routing gave no address for %s", key);
    snprintf(address, 128, "%s", addrs[0]);
}

//  The JSON counters of the thread at address (GET of ANNA_METADATA|stats). Caller frees.
static inline char *tl_stats(tl_client_t *c, const char *address)
{
    lat_t v;
    int err = tl_get(c, address, "ANNA_METADATA|stats", &v);
    if (err != ANNA_ERROR__NO_ERROR || v.kind != LAT_LWW)
        tl_fail("stats GET from %s: error %d kind %d", address, err, v.kind);
    char *json = cb_strndup((const char *)v.u.lww.value.data, v.u.lww.value.len);
    lat_fini(&v);
    return json;
}

//  The value of counter name in stats JSON (-1 if absent).
static inline long long tl_counter(const char *json, const char *name)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", name);
    const char *p = strstr(json, pattern);
    return p ? strtoll(p + strlen(pattern), NULL, 10) : -1;
}

static inline char *tl_format(const lat_t *v)
{
    return lat_format(v);
}

#endif
