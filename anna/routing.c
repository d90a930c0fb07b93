//  anna/routing.c: the routing actor. Poll, drain a batch, answer each request from the
//  placement; nothing is ever waited for except the next message.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/routing.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "anna/arena.h"
#include "anna/placement.h"
#include "anna/pushcache.h"
#include "common/alloc.h"
#include "common/log.h"

#define S_BATCH 256
//  Address requests carry keys only: small limits keep a hostile peer cheap (the reply
//  repeats each key with up to `replication` addresses).
#define S_MAX_MSG (4 << 20)
#define S_MAX_KEYS 65536

struct _anna_routing_t {
    anna_config_t config;       //  copy
    void *pull;                 //  PULL: KeyAddressRequests
    anna_pushcache_t *replies;  //  PUSH sockets to clients' response addresses
    anna_placement_t *placement;
    char **addresses;           //  "tcp://PUBLIC_IP:6200+offset+t" per thread
    anna_arena_t *arena;        //  scratch of the message being handled
    ProtobufCAllocator pb_alloc;
    long long log_last;         //  rate limit of peer-driven logs
    pthread_t tid;
    bool started;
    bool joined;
    bool terminated;
    anna_routing_stats_t stats;
};

static void *s_pb_alloc(void *data, size_t size)
{
    return anna_arena_alloc(data, size);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

anna_routing_t *anna_routing_new(void *ctx, const anna_config_t *config, size_t reply_sockets,
                                 char *err, size_t errlen)
{
    assert(ctx && config && reply_sockets >= 1);
    anna_routing_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:%d", config->bind,
             ANNA_PORT_ROUTING + config->port_offset);
    self->pull = zmq_socket(ctx, ZMQ_PULL);
    if (!self->pull) {
        snprintf(err, errlen, "cannot create socket for %s: %s", endpoint, zmq_strerror(errno));
        anna_routing_destroy(&self);
        return NULL;
    }
    int64_t maxmsg = S_MAX_MSG;
    int linger = 0;
    zmq_setsockopt(self->pull, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(self->pull, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->pull, endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        anna_routing_destroy(&self);
        return NULL;
    }
    self->replies = anna_pushcache_new(ctx, reply_sockets, 1000, 100);
    self->placement = anna_placement_new((uint32_t)config->threads,
                                         (uint32_t)config->replication, (uint32_t)config->vnodes);
    self->addresses = cb_calloc((size_t)config->threads, sizeof *self->addresses);
    for (int t = 0; t < config->threads; t++) {
        char address[96];
        snprintf(address, sizeof address, "tcp://%s:%d", anna_config_public_ip(config),
                 ANNA_PORT_KEYS + config->port_offset + t);
        self->addresses[t] = cb_strdup(address);
    }
    self->arena = anna_arena_new(16 * 1024);
    self->pb_alloc.alloc = s_pb_alloc;
    self->pb_alloc.free = s_pb_free;
    self->pb_alloc.allocator_data = self->arena;
    return self;
}

static void s_close_sockets(anna_routing_t *self)
{
    if (self->pull)
        zmq_close(self->pull);
    self->pull = NULL;
    anna_pushcache_destroy(&self->replies);
}

void anna_routing_destroy(anna_routing_t **self_p)
{
    assert(self_p);
    anna_routing_t *self = *self_p;
    if (!self)
        return;
    assert(!self->started || self->joined);
    s_close_sockets(self);
    anna_placement_destroy(&self->placement);
    if (self->addresses)
        for (int t = 0; t < self->config.threads; t++)
            cb_free(self->addresses[t]);
    cb_free(self->addresses);
    anna_arena_destroy(&self->arena);
    cb_free(self);
    *self_p = NULL;
}

void anna_routing_stats(const anna_routing_t *self, anna_routing_stats_t *out)
{
    assert(!self->started || self->joined);
    *out = self->stats;
}

static void s_handle(anna_routing_t *self, const uint8_t *data, size_t size)
{
    KeyAddressRequest *req = key_address_request__unpack(&self->pb_alloc, size, data);
    if (!req) {
        self->stats.malformed++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("routing: dropped undecodable KeyAddressRequest (%zu bytes)", size);
        return;
    }
    self->stats.requests++;
    if (!req->response_address || !req->response_address[0]) {
        self->stats.bad_address++;
        return;
    }
    //  Everything of the reply lives in the arena or is borrowed from req and self.
    KeyAddressResponse resp = KEY_ADDRESS_RESPONSE__INIT;
    resp.response_id = req->request_id;
    if (req->n_keys > S_MAX_KEYS) {
        //  Refused as a whole (an empty reply, so the client is not left waiting).
        resp.error = ANNA_ERROR__BAD_REQUEST;
        req->n_keys = 0;
    }
    resp.n_addresses = req->n_keys;
    resp.addresses = anna_arena_alloc(self->arena, req->n_keys * sizeof *resp.addresses);
    KeyAddressResponse__KeyAddress *entries =
        anna_arena_alloc(self->arena, req->n_keys * sizeof *entries);
    uint32_t replication = anna_placement_replication(self->placement);
    for (size_t i = 0; i < req->n_keys; i++) {
        const char *key = req->keys[i] ? req->keys[i] : "";
        KeyAddressResponse__KeyAddress *entry = &entries[i];
        key_address_response__key_address__init(entry);
        entry->key = (char *)key;
        uint32_t owners[ANNA_MAX_THREADS];
        size_t n = anna_placement_owners(self->placement, key, strlen(key), owners);
        assert(n <= replication);
        (void)replication;
        entry->ips = anna_arena_alloc(self->arena, n * sizeof *entry->ips);
        for (size_t k = 0; k < n; k++)
            entry->ips[k] = self->addresses[owners[k]];
        entry->n_ips = n;
        resp.addresses[i] = entry;
    }
    self->stats.keys += req->n_keys;
    zmq_msg_t msg;
    size_t packed = key_address_response__get_packed_size(&resp);
    zmq_msg_init_size(&msg, packed);
    key_address_response__pack(&resp, zmq_msg_data(&msg));
    int rc = anna_pushcache_send(self->replies, req->response_address, &msg);
    if (rc == 0)
        self->stats.replies++;
    else if (rc == -EAGAIN || rc == -ETERM)
        self->stats.replies_dropped++;
    else {
        self->stats.bad_address++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("routing: cannot reply to response address '%.128s': %s",
                    req->response_address,
                    rc == -EINVAL ? "not tcp://IP:port or ipc://path" : zmq_strerror(-rc));
    }
}

static void s_drain(anna_routing_t *self)
{
    for (int n = 0; n < S_BATCH; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            if (errno == ETERM)
                self->terminated = true;
            return;
        }
        size_t size = zmq_msg_size(&msg);
        if (zmq_msg_more(&msg) || size == 0) {
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, self->pull, ZMQ_DONTWAIT) >= 0)
                ;
            self->stats.malformed++;
            if (cb_log_ratelimit(&self->log_last))
                cb_warn("routing: dropped %s", size ? "multi-frame message" : "empty frame");
        } else
            s_handle(self, zmq_msg_data(&msg), size);
        zmq_msg_close(&msg);
        anna_arena_reset(self->arena);
    }
}

static void *s_run(void *arg)
{
    anna_routing_t *self = arg;
    while (!self->terminated) {
        zmq_pollitem_t items[] = {{self->pull, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ETERM)
                cb_error("routing: zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_drain(self);
    }
    s_close_sockets(self);
    return NULL;
}

int anna_routing_start(anna_routing_t *self)
{
    assert(self && !self->started);
    int rc = pthread_create(&self->tid, NULL, s_run, self);
    if (rc)
        return -rc;
    self->started = true;
    return 0;
}

void anna_routing_join(anna_routing_t *self)
{
    if (self->started && !self->joined) {
        pthread_join(self->tid, NULL);
        self->joined = true;
    }
}
