//  anna/routing.c: the routing actor. Poll, drain a batch, answer each request from the
//  placement (the cluster's ring of nodes, then the local ring of threads); nothing is ever
//  waited for except the next message or the next heartbeat. It also runs the membership
//  protocol of the node (anna/membership.h) and tells the workers when members change.
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
#include "anna/cluster.h"
#include "anna/membership.h"
#include "anna/overrides.h"
#include "anna/placement.h"
#include "anna/pushcache.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/rand.h"
#include "common/zsock.h"
#include "proto/wire.h"

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
    //  Membership.
    anna_cluster_t *cluster;    //  the members as we see them; without us once leaving
    void *cpull;                //  PULL tcp://BIND:6400+offset: other nodes' messages
    void *ctl;                  //  PULL inproc: the server's commands (HANDOVER)
    void *meta;                 //  PULL inproc: replication overrides from the workers
    anna_overrides_t *overrides;
    char **found;               //  scratch: the addresses of one key (G x L at most)
    void **to_workers;          //  PUSH per worker: MEMBERS, HANDOVER
    void *to_server;            //  PUSH inproc: joined / refused
    anna_pushcache_t *peers;    //  PUSH to the other nodes' cluster ports
    const char *self_ip;        //  our public IP (in config)
    char layout[ANNA_MEMBERSHIP_LAYOUT];
    uint32_t join_count;        //  our incarnation
    bool in_cluster;            //  the seed answered (or there is none)
    bool leaving;
    int64_t next_heartbeat_ms;
    cb_rand_t rand;
    anna_arena_t *arena;        //  scratch of the message being handled
    ProtobufCAllocator pb_alloc;
    long long log_last;         //  rate limit of peer-driven logs
    pthread_t tid;
    bool started;
    bool joined;
    bool terminated;
    anna_routing_stats_t stats;
};


//  A PUSH connected to an in-process endpoint (bound before or after: inproc allows both).
static void *s_connect_inproc(void *ctx, const char *endpoint)
{
    void *sock = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 0, zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
    int rc = zmq_connect(sock, endpoint);
    assert(rc == 0);
    (void)rc;
    return sock;
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
    self->pull = cb_zsock_bind_pull(ctx, endpoint, S_MAX_MSG, err, errlen);
    if (self->pull) {
        snprintf(endpoint, sizeof endpoint, "tcp://%s:%d", config->bind,
                 ANNA_PORT_CLUSTER + config->port_offset);
        self->cpull = cb_zsock_bind_pull(ctx, endpoint, S_MAX_MSG, err, errlen);
    }
    if (self->cpull)
        self->ctl = cb_zsock_bind_pull(ctx, ANNA_INPROC_ROUTING_CTL, S_MAX_MSG, err, errlen);
    if (self->ctl)
        self->meta = cb_zsock_bind_pull(ctx, ANNA_INPROC_ROUTING_META, S_MAX_MSG, err, errlen);
    if (!self->meta) {
        anna_routing_destroy(&self);
        return NULL;
    }
    self->replies = anna_pushcache_new(ctx, reply_sockets, 1000, 100);
    //  A leave must get out before the process ends: a short linger on these.
    self->peers = anna_pushcache_new(ctx, ANNA_CLUSTER_MAX_NODES, 100, 1000);
    self->placement = anna_placement_new((uint32_t)config->threads,
                                         (uint32_t)config->replication, (uint32_t)config->vnodes);
    self->addresses = cb_calloc((size_t)config->threads, sizeof *self->addresses);
    self->to_workers = cb_calloc((size_t)config->threads, sizeof *self->to_workers);
    for (int t = 0; t < config->threads; t++) {
        char address[96];
        snprintf(address, sizeof address, "tcp://%s:%d", anna_config_public_ip(config),
                 ANNA_PORT_KEYS + config->port_offset + t);
        self->addresses[t] = cb_strdup(address);
        snprintf(address, sizeof address, ANNA_INPROC_MEMBERS "%d", t);
        self->to_workers[t] = s_connect_inproc(ctx, address);
    }
    self->to_server = s_connect_inproc(ctx, ANNA_INPROC_SERVER);
    self->self_ip = self->config.public_ip[0] ? self->config.public_ip : self->config.bind;
    anna_membership_layout(config, self->layout, sizeof self->layout);
    self->join_count = anna_membership_join_count(cb_clock_wall_us() / 1000);
    self->overrides = anna_overrides_new();
    self->found = cb_calloc((size_t)config->threads * ANNA_OVERRIDES_MAX_GLOBAL,
                            sizeof *self->found);
    self->cluster = anna_cluster_new(self->self_ip, self->join_count,
                                     (uint32_t)config->global_replication,
                                     (uint32_t)config->vnodes);
    self->in_cluster = !config->seed[0] || !strcmp(config->seed, self->self_ip);
    cb_rand_seed(&self->rand, (uint64_t)cb_clock_wall_us() ^ (uint64_t)(uintptr_t)self);
    self->arena = anna_arena_new(16 * 1024);
    self->pb_alloc = anna_arena_protobuf(self->arena);
    return self;
}

static void s_close(void **sock_p)
{
    if (*sock_p)
        zmq_close(*sock_p);
    *sock_p = NULL;
}

static void s_close_sockets(anna_routing_t *self)
{
    s_close(&self->pull);
    s_close(&self->cpull);
    s_close(&self->ctl);
    s_close(&self->meta);
    s_close(&self->to_server);
    if (self->to_workers)
        for (int t = 0; t < self->config.threads; t++)
            s_close(&self->to_workers[t]);
    anna_pushcache_destroy(&self->replies);
    anna_pushcache_destroy(&self->peers);
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
    anna_cluster_destroy(&self->cluster);
    anna_overrides_destroy(&self->overrides);
    cb_free(self->found);
    if (self->addresses)
        for (int t = 0; t < self->config.threads; t++)
            cb_free(self->addresses[t]);
    cb_free(self->addresses);
    cb_free(self->to_workers);
    anna_arena_destroy(&self->arena);
    cb_free(self);
    *self_p = NULL;
}

void anna_routing_stats(const anna_routing_t *self, anna_routing_stats_t *out)
{
    assert(!self->started || self->joined);
    *out = self->stats;
}

//  ---- key addresses ------------------------------------------------------------------------

//  Writes the worker addresses of key to out (room for G x L), primary first; returns how
//  many. Data keys: the local owner threads of each owner node. The node's own keys (stats,
//  members) are answered by this node.
static size_t s_key_addresses(anna_routing_t *self, const char *key, char **out)
{
    size_t len = strlen(key);
    uint32_t threads[ANNA_MAX_THREADS];
    int stats_thread;
    if (anna_placement_classify(self->placement, key, len, &stats_thread) != ANNA_KEY_DATA) {
        size_t nt = anna_placement_owners(self->placement, key, len, threads);
        for (size_t k = 0; k < nt; k++)
            out[k] = self->addresses[threads[k]];
        return nt;
    }
    uint32_t global, local;
    if (!anna_overrides_lookup(self->overrides, key, len, &global, &local)) {
        global = anna_cluster_global_rep(self->cluster);
        local = (uint32_t)self->config.replication;
    }
    size_t nt = anna_placement_owners_rep(self->placement, key, len, local, threads);
    const char *nodes[ANNA_OVERRIDES_MAX_GLOBAL];
    size_t nn = anna_cluster_owners_rep(self->cluster, key, len, global, nodes,
                                        ANNA_OVERRIDES_MAX_GLOBAL);
    size_t n = 0;
    for (size_t i = 0; i < nn; i++)
        for (size_t k = 0; k < nt; k++)
            out[n++] = !strcmp(nodes[i], self->self_ip)
                           ? self->addresses[threads[k]]
                           : anna_arena_printf(self->arena, "tcp://%s:%d", nodes[i],
                                               ANNA_PORT_KEYS + self->config.port_offset +
                                                   (int)threads[k]);
    return n;
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
    for (size_t i = 0; i < req->n_keys; i++) {
        const char *key = req->keys[i] ? req->keys[i] : "";
        KeyAddressResponse__KeyAddress *entry = &entries[i];
        key_address_response__key_address__init(entry);
        entry->key = (char *)key;
        entry->n_ips = s_key_addresses(self, key, self->found);
        entry->ips = anna_arena_alloc(self->arena, entry->n_ips * sizeof *entry->ips);
        memcpy(entry->ips, self->found, entry->n_ips * sizeof *entry->ips);
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

//  ---- membership ---------------------------------------------------------------------------

static void s_send_bytes(void *sock, const cb_bytes_t *bytes)
{
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, bytes->len);
    memcpy(zmq_msg_data(&msg), bytes->data, bytes->len);
    if (zmq_msg_send(&msg, sock, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&msg);
}

//  Sends a message of ours (with the members we know) to the cluster port of node ip.
static void s_send_node(anna_routing_t *self, ClusterMessageType type, const char *ip,
                        const char *error)
{
    cb_bytes_t bytes = {0};
    anna_membership_encode(type, self->self_ip, self->join_count, self->layout,
                           self->leaving ? NULL : self->cluster, NULL, error, 0, &bytes);
    char address[96];
    snprintf(address, sizeof address, "tcp://%s:%d", ip,
             ANNA_PORT_CLUSTER + self->config.port_offset);
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, bytes.len);
    memcpy(zmq_msg_data(&msg), bytes.data, bytes.len);
    anna_pushcache_send(self->peers, address, &msg);     //  lost if full: the next one goes
    cb_bytes_fini(&bytes);
}

static void s_send_members(anna_routing_t *self, ClusterMessageType type, const char *exclude)
{
    cb_bytes_t bytes = {0};
    anna_membership_encode(type, self->self_ip, self->join_count, self->layout, self->cluster,
                           exclude, NULL, 0, &bytes);
    for (int t = 0; t < self->config.threads; t++)
        s_send_bytes(self->to_workers[t], &bytes);
    cb_bytes_fini(&bytes);
}

static void s_tell_server(anna_routing_t *self, ClusterMessageType type, const char *error)
{
    cb_bytes_t bytes = {0};
    anna_membership_encode(type, self->self_ip, self->join_count, "", NULL, NULL, error, 0,
                           &bytes);
    s_send_bytes(self->to_server, &bytes);
    cb_bytes_fini(&bytes);
}

static void s_heartbeat(anna_routing_t *self, int64_t now)
{
    if (!self->in_cluster)
        s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN, self->config.seed, NULL);
    for (size_t i = 0; i < anna_cluster_count(self->cluster); i++) {
        const char *ip = anna_cluster_member(self->cluster, i);
        if (strcmp(ip, self->self_ip))
            s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT, ip, NULL);
    }
    char removed[8][ANNA_CLUSTER_ADDRESS];
    size_t n = anna_cluster_expire(self->cluster, now, self->config.node_timeout_ms, removed, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        cb_warn("cluster: node %s removed: no heartbeat for %d ms", removed[i],
                self->config.node_timeout_ms);
    if (n)
        s_send_members(self, CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS, NULL);
    //  A little jitter keeps the nodes' heartbeats from moving in lockstep.
    int64_t period = self->config.heartbeat_ms;
    self->next_heartbeat_ms = now + period - (int64_t)cb_rand_below(&self->rand,
                                                                     (uint64_t)period / 5 + 1);
}

static void s_handle_cluster(anna_routing_t *self, const uint8_t *data, size_t size)
{
    const char *why;
    ClusterMessage *msg = anna_membership_decode(data, size, &self->pb_alloc, &why);
    if (!msg) {
        self->stats.malformed++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("cluster: dropped a message of %zu bytes: %s", size, why);
        return;
    }
    int64_t now = cb_clock_mono_ms();
    const char *from = msg->address;
    if (!strcmp(from, self->self_ip))
        return;                                 //  our own, through a seed that is us
    if (msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_REFUSED) {
        if (!self->in_cluster) {
            cb_error("cluster: node %s refused us: %s", from, msg->error_message);
            s_tell_server(self, CLUSTER_MESSAGE_TYPE__CLUSTER_REFUSED, msg->error_message);
            self->in_cluster = true;            //  the server stops; stop asking
        }
        return;
    }
    if (self->leaving)
        return;
    if (msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_LEAVE) {
        if (anna_cluster_leave(self->cluster, from, msg->join_count) == 1) {
            cb_info("cluster: node %s left", from);
            s_send_members(self, CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS, NULL);
        }
        return;
    }
    if (strcmp(msg->layout, self->layout)) {
        //  Nodes that place keys differently would lose them: keep them apart, and say why.
        char why_text[400];
        snprintf(why_text, sizeof why_text, "layout '%s' differs from node %s's '%s'",
                 msg->layout, self->self_ip, self->layout);
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("cluster: ignored node %s: %s", from, why_text);
        if (msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN)
            s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_REFUSED, from, why_text);
        return;
    }
    int rc = anna_cluster_join(self->cluster, from, msg->join_count, now);
    if (rc == 1)
        cb_info("cluster: node %s joined (%zu members)", from, anna_cluster_count(self->cluster));
    else if (rc == 2)
        cb_info("cluster: node %s restarted", from);
    if (rc == 1 || rc == 2)
        s_send_members(self, CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS, NULL);
    if (msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN || rc == 1 || rc == 2)
        s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT, from, NULL);
    if (!self->in_cluster && !strcmp(from, self->config.seed)) {
        self->in_cluster = true;
        s_tell_server(self, CLUSTER_MESSAGE_TYPE__CLUSTER_JOIN, NULL);
    }
    //  Members we have not heard of learn of us directly: membership grows only by
    //  messages from the node itself, so a stale list cannot bring a dead node back.
    for (size_t i = 0; i < msg->n_members; i++) {
        const char *ip = msg->members[i]->address;
        if (strcmp(ip, self->self_ip) && !anna_cluster_contains(self->cluster, ip))
            s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_HEARTBEAT, ip, NULL);
    }
    cluster_message__free_unpacked(msg, &self->pb_alloc);
}

//  The server's command to leave: every member is told, the workers hand their keys to the
//  others, and from now on we answer address requests as if we were gone.
static void s_handle_ctl(anna_routing_t *self, const uint8_t *data, size_t size)
{
    const char *why;
    ClusterMessage *msg = anna_membership_decode(data, size, &self->pb_alloc, &why);
    if (!msg || msg->type != CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER || self->leaving)
        return;
    self->leaving = true;
    for (size_t i = 0; i < anna_cluster_count(self->cluster); i++) {
        const char *ip = anna_cluster_member(self->cluster, i);
        if (strcmp(ip, self->self_ip))
            s_send_node(self, CLUSTER_MESSAGE_TYPE__CLUSTER_LEAVE, ip, NULL);
    }
    s_send_members(self, CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER, self->self_ip);
    if (anna_cluster_count(self->cluster) > 1) {
        cb_bytes_t bytes = {0};
        anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS, "", 0, "", self->cluster,
                               self->self_ip, NULL, 0, &bytes);
        ClusterMessage *rest = anna_membership_decode(bytes.data, bytes.len, NULL, &why);
        assert(rest);
        anna_cluster_t *without = anna_membership_cluster(rest, NULL,
                                                          anna_cluster_global_rep(self->cluster),
                                                          (uint32_t)self->config.vnodes);
        cluster_message__free_unpacked(rest, NULL);
        cb_bytes_fini(&bytes);
        anna_cluster_destroy(&self->cluster);
        self->cluster = without;
    }
    cluster_message__free_unpacked(msg, &self->pb_alloc);
}

//  Replication overrides our workers merged (they checked them).
static void s_handle_meta(anna_routing_t *self, const uint8_t *data, size_t size)
{
    KeyRequest *req = key_request__unpack(&self->pb_alloc, size, data);
    if (!req)
        return;
    static const size_t plen = sizeof ANNA_REPLICATION_PREFIX - 1;
    for (size_t i = 0; i < req->n_tuples; i++) {
        const KeyTuple *t = req->tuples[i];
        lat_t value;
        char err[200];
        if (!t->key || strncmp(t->key, ANNA_REPLICATION_PREFIX, plen) ||
            wire_decode(LAT_LWW, t->payload.data, t->payload.len, &value) != 0)
            continue;
        anna_overrides_merge(self->overrides, t->key + plen, &value,
                             (uint32_t)self->config.threads, err, sizeof err);
        lat_fini(&value);
    }
}

typedef void(s_handler_fn)(anna_routing_t *self, const uint8_t *data, size_t size);

static void s_drain(anna_routing_t *self, void *sock, s_handler_fn *handler)
{
    for (int n = 0; n < S_BATCH; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            if (errno == ETERM)
                self->terminated = true;
            return;
        }
        size_t size = zmq_msg_size(&msg);
        if (zmq_msg_more(&msg) || size == 0) {
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
                ;
            self->stats.malformed++;
            if (cb_log_ratelimit(&self->log_last))
                cb_warn("routing: dropped %s", size ? "multi-frame message" : "empty frame");
        } else
            handler(self, zmq_msg_data(&msg), size);
        zmq_msg_close(&msg);
        anna_arena_reset(self->arena);
    }
}

static void *s_run(void *arg)
{
    anna_routing_t *self = arg;
    //  The workers start with the cluster of us alone; a seed makes it bigger.
    s_send_members(self, CLUSTER_MESSAGE_TYPE__CLUSTER_MEMBERS, NULL);
    s_heartbeat(self, cb_clock_mono_ms());
    while (!self->terminated) {
        zmq_pollitem_t items[] = {{self->pull, 0, ZMQ_POLLIN, 0},
                                  {self->cpull, 0, ZMQ_POLLIN, 0},
                                  {self->ctl, 0, ZMQ_POLLIN, 0},
                                  {self->meta, 0, ZMQ_POLLIN, 0}};
        //  Alone and not joining, nothing is due: an idle node uses no CPU.
        long timeout = -1;
        if (!self->in_cluster || anna_cluster_count(self->cluster) > 1) {
            int64_t wait = self->next_heartbeat_ms - cb_clock_mono_ms();
            timeout = wait < 0 ? 0 : (long)wait;
        }
        if (zmq_poll(items, 4, timeout) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ETERM)
                cb_error("routing: zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_drain(self, self->pull, s_handle);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain(self, self->cpull, s_handle_cluster);
        if (items[2].revents & ZMQ_POLLIN)
            s_drain(self, self->ctl, s_handle_ctl);
        if (items[3].revents & ZMQ_POLLIN)
            s_drain(self, self->meta, s_handle_meta);
        int64_t now = cb_clock_mono_ms();
        if (now >= self->next_heartbeat_ms && !self->leaving)
            s_heartbeat(self, now);
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
