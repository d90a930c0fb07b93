//  anna/worker.c: the worker actor. One loop: poll the key ports (TCP, and inproc for the
//  node's RESP threads) and the gossip port with a timeout that is the time to the next
//  gossip (none when nothing changed, so an idle server sleeps), drain a batch from each
//  ready socket, push changed subscribed keys, gossip when due (Redis
//  beforeSleep style).
//  Every message is unpacked into a per-message arena and answered before the next one; the
//  only per-request allocations are the values themselves (decoded PUT payloads, encoded
//  GET payloads) and the outgoing frame.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/worker.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "anna/arena.h"
#include "anna/cluster.h"
#include "anna/faults.h"
#include "anna/membership.h"
#include "anna/overrides.h"
#include "anna/placement.h"
#include "anna/pushcache.h"
#include "anna/resp.h"
#include "anna/routing.h"
#include "anna/store.h"
#include "anna/subs.h"
#include "anna/wal.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/counters.h"
#include "common/err.h"
#include "common/log.h"
#include "common/zsock.h"
#include "proto/scan.h"
#include "proto/wire.h"

//  Messages taken from one socket before looking at the other one (fairness between
//  clients and gossip, bounded latency of the gossip timer).
#define S_BATCH 256
//  Gossip messages hold at most this many bytes of keys and payloads, or a single key:
//  bounded memory, and below the receiver's size limit (max-value-bytes + 1 MiB).
#define S_GOSSIP_FLUSH_BYTES (1 << 20)
#define S_GOSSIP_MAX_KEYS (1 << 16)
//  Update messages to subscribers are bounded the same way, and are below the limit of a
//  receiver that accepts what we accept.
#define S_PUSH_FLUSH_BYTES S_GOSSIP_FLUSH_BYTES
//  Update messages queued per subscriber before pushes to it are dropped.
#define S_PUSH_HWM 1000
//  Slack above max-value-bytes for the rest of a message (keys, tags, other tuples).
#define S_MSG_SLACK (1 << 20)
//  Longest key quoted in an error message.
#define S_QUOTE_MAX 128
//  Most tuples in one KeyRequest. Unpacking allocates ~150 bytes per tuple and the reply as
//  much again, while a tuple can be 2 bytes on the wire: without a bound, one message of
//  max-value-bytes could make the worker allocate gigabytes.
#define S_MAX_TUPLES (1 << 18)

typedef struct {
    KeyTuple *tuples;           //  reply tuples, reused across requests
    KeyTuple **ptrs;            //  ptrs[i] = &tuples[i], as protobuf-c wants
    size_t cap;
    cb_bytes_t *owned;          //  encoded payloads referenced by the reply, freed after it
    size_t nowned;
    size_t owned_cap;
    size_t bytes;               //  sum of the payloads' sizes
} s_reply_t;

typedef struct {
    KeyTuple *tuples;           //  key states for one destination thread
    size_t len;
    size_t cap;
} s_batch_t;

//  Gossip batch of one destination: a thread of this node or of another owner node.
typedef struct {
    char ip[ANNA_CLUSTER_ADDRESS];  //  the node, and
    uint32_t thread;            //  its thread: found by these, without formatting the address
    char *address;              //  owned: tcp://IP:6250+offset+t
    s_batch_t batch;
} s_dest_t;

//  A gossip message held back by fault injection.
typedef struct {
    char *address;              //  owned
    zmq_msg_t msg;
    int64_t due_ms;
} s_delayed_t;

//  A reply held back until the write-ahead log holds what it acknowledges (group commit).
typedef struct {
    char *address;              //  owned
    bool internal;
    zmq_msg_t msg;              //  packed KeyResponse
} s_deferred_t;

struct _anna_worker_t {
    uint32_t thread;            //  our thread id
    anna_config_t config;       //  copy
    void *ctx;                  //  borrowed
    void *keys;                 //  PULL: key requests from clients
    void *ikeys;                //  PULL on inproc://anna-keys-<t>: the RESP threads' requests;
                                //  NULL when RESP is off
    void **resp_out;            //  PUSH per RESP thread to inproc://anna-resp-<i>, connected on
                                //  first use
    int nresp;                  //  RESP threads of the node (0: RESP off)
    void *gossip;               //  PULL: gossip from other owners
    anna_pushcache_t *gossip_out;   //  PUSH to the gossip ports of the keys' other owners
    s_dest_t *dests;            //  gossip batch per destination
    size_t ndests;
    size_t dests_cap;
    //  Cluster.
    void *members;              //  PULL inproc: MEMBERS, HANDOVER from the routing thread
    void *to_server;            //  PUSH inproc: HANDOVER_DONE
    anna_cluster_t *cluster;    //  the live members (without us while handing over)
    anna_overrides_t *overrides;    //  per-key replication factors
    void *to_routing_meta;      //  PUSH inproc: overrides that changed, to our routing thread
    const char *self_ip;        //  our public IP (in config)
    bool alone;                 //  we are the only member: every key is ours, skip lookups
    bool sweeping;              //  walking the shard, sending each key to its other owners
    size_t sweep_pos;           //  keys at indexes below it are still to visit (walk down)
    char **drop;                //  keys sent in this step that we no longer own
    size_t ndrop;
    size_t drop_cap;
    int64_t next_anti_entropy_ms;
    anna_faults_t faults;       //  off unless built with ANNA_FAULTS and asked for
    s_delayed_t *delayed;
    size_t ndelayed;
    size_t delayed_cap;
    anna_pushcache_t *replies;  //  PUSH sockets to clients' response addresses
    anna_store_t *store;        //  our shard
    anna_wal_t *wal;            //  write-ahead log of the shard (--wal-dir); NULL when off
    s_deferred_t *deferred;     //  with a log: replies of this loop iteration, sent after
    size_t ndeferred;           //  the log's commit (one fsync for all of them)
    size_t deferred_cap;
    anna_placement_t *placement;
    anna_arena_t *arena;        //  scratch of the message being handled
    ProtobufCAllocator pb_alloc;    //  protobuf-c unpack into the arena
    s_reply_t reply;
    cb_bytes_t *gossip_payloads;    //  encoded key states referenced by the batches
    size_t ngossip_payloads;
    size_t gossip_payloads_cap;
    size_t gossip_batched_bytes;
    int64_t next_gossip_ms;     //  monotonic deadline of the next gossip round
    anna_subs_t *subs;          //  push subscriptions of our keys
    anna_pushcache_t *pushes;   //  PUSH sockets to subscribers' update addresses
    s_batch_t *push_batches;    //  update tuples batched per subscriber id
    size_t push_batches_cap;
    uint32_t *push_active;      //  subscriber ids whose batch is not empty
    size_t npush_active;
    cb_bytes_t *push_payloads;  //  encoded values referenced by the batches
    size_t npush_payloads;
    size_t push_payloads_cap;
    size_t push_batched_bytes;
    uint32_t *push_dead;        //  subscribers found dead during a push, dropped after it
    size_t npush_dead;
    size_t push_dead_cap;
    long long log_last;         //  rate limit of peer-driven logs (per thread: no sharing)
    pthread_t tid;
    bool started;
    bool joined;
    bool terminated;            //  context shut down
    anna_worker_stats_t stats;
};

//  ---- counters -----------------------------------------------------------------------------

#define S_COUNTER(field) CB_COUNTER(anna_worker_stats_t, field)
static const cb_counter_t s_counters[] = {
    S_COUNTER(requests),        S_COUNTER(gets),
    S_COUNTER(puts),            S_COUNTER(key_dne),
    S_COUNTER(wrong_thread),    S_COUNTER(lattice),
    S_COUNTER(bad_request),     S_COUNTER(too_large),
    S_COUNTER(malformed),       S_COUNTER(bad_address),
    S_COUNTER(replies),         S_COUNTER(replies_dropped),
    S_COUNTER(gossip_sent),     S_COUNTER(gossip_keys_sent),
    S_COUNTER(gossip_failed),   S_COUNTER(gossip_received),
    S_COUNTER(gossip_keys_received), S_COUNTER(gossip_rejected),
    S_COUNTER(subscribes),      S_COUNTER(unsubscribes),
    S_COUNTER(subs_refused),    S_COUNTER(pushes),
    S_COUNTER(push_keys),       S_COUNTER(push_dropped),
    S_COUNTER(subs_dropped),    S_COUNTER(sweeps),          S_COUNTER(keys_moved),
    S_COUNTER(keys_dropped),    S_COUNTER(faults),          S_COUNTER(wal_records),
    S_COUNTER(wal_fsyncs),      S_COUNTER(wal_compactions),
    S_COUNTER(wal_bytes),       S_COUNTER(subscriptions),
    S_COUNTER(keys),            S_COUNTER(bytes),
};

size_t anna_worker_stats_format(const anna_worker_stats_t *stats, uint32_t thread, bool json,
                                char *buf, size_t len)
{
    char head[32];
    snprintf(head, sizeof head, json ? "{\"thread\":%" PRIu32 : "thread %" PRIu32 ":", thread);
    return cb_counters_format(s_counters, sizeof s_counters / sizeof s_counters[0], stats, head,
                              json, buf, len);
}

//  ---- set-up -------------------------------------------------------------------------------

static void *s_bind_pull(void *ctx, const char *ip, int port, int64_t maxmsg, char *err,
                         size_t errlen)
{
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:%d", ip, port);
    return cb_zsock_bind_pull(ctx, endpoint, maxmsg, err, errlen);
}

static void s_close_sockets(anna_worker_t *self)
{
    if (self->keys)
        zmq_close(self->keys);
    if (self->ikeys)
        zmq_close(self->ikeys);
    if (self->gossip)
        zmq_close(self->gossip);
    self->keys = self->ikeys = self->gossip = NULL;
    if (self->resp_out)
        for (int i = 0; i < self->nresp; i++)
            if (self->resp_out[i]) {
                zmq_close(self->resp_out[i]);
                self->resp_out[i] = NULL;
            }
    if (self->members)
        zmq_close(self->members);
    if (self->to_server)
        zmq_close(self->to_server);
    if (self->to_routing_meta)
        zmq_close(self->to_routing_meta);
    self->members = self->to_server = self->to_routing_meta = NULL;
    for (size_t i = 0; i < self->ndelayed; i++) {
        zmq_msg_close(&self->delayed[i].msg);
        cb_free(self->delayed[i].address);
    }
    self->ndelayed = 0;
    anna_pushcache_destroy(&self->gossip_out);
    anna_pushcache_destroy(&self->replies);
    anna_pushcache_destroy(&self->pushes);
}

anna_worker_t *anna_worker_new(void *ctx, const anna_config_t *config, uint32_t thread,
                               size_t reply_sockets, char *err, size_t errlen)
{
    assert(ctx && config && (int)thread < config->threads && reply_sockets >= 1);
    anna_worker_t *self = cb_calloc(1, sizeof *self);
    self->thread = thread;
    self->config = *config;
    self->ctx = ctx;
    int64_t maxmsg = config->max_value_bytes + S_MSG_SLACK;
    self->keys = s_bind_pull(ctx, config->bind, ANNA_PORT_KEYS + config->port_offset +
                             (int)thread, maxmsg, err, errlen);
    if (self->keys)
        self->gossip = s_bind_pull(ctx, config->bind, ANNA_PORT_GOSSIP + config->port_offset +
                                   (int)thread, maxmsg, err, errlen);
    if (!self->keys || !self->gossip) {
        anna_worker_destroy(&self);
        return NULL;
    }
    if (anna_config_resp_port(config) > 0) {
        //  The RESP threads of this node reach us in process: no ZeroMQ I/O thread, no
        //  loopback TCP, no copy of big requests (the message is handed over).
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, ANNA_INPROC_KEYS "%" PRIu32, thread);
        self->ikeys = zmq_socket(ctx, ZMQ_PULL);
        int linger = 0, zero = 0;
        if (self->ikeys) {
            zmq_setsockopt(self->ikeys, ZMQ_LINGER, &linger, sizeof linger);
            zmq_setsockopt(self->ikeys, ZMQ_RCVHWM, &zero, sizeof zero);
        }
        if (!self->ikeys || zmq_bind(self->ikeys, endpoint) != 0) {
            snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
            anna_worker_destroy(&self);
            return NULL;
        }
        self->nresp = anna_resp_threads(config);
        self->resp_out = cb_calloc((size_t)self->nresp, sizeof *self->resp_out);
    }
    {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, ANNA_INPROC_MEMBERS "%" PRIu32, thread);
        self->members = zmq_socket(ctx, ZMQ_PULL);
        int linger = 0, zero = 0;
        zmq_setsockopt(self->members, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(self->members, ZMQ_RCVHWM, &zero, sizeof zero);
        if (zmq_bind(self->members, endpoint) != 0) {
            snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
            anna_worker_destroy(&self);
            return NULL;
        }
        self->to_server = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(self->to_server, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(self->to_server, ANNA_INPROC_SERVER);
        self->to_routing_meta = zmq_socket(ctx, ZMQ_PUSH);
        zmq_setsockopt(self->to_routing_meta, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(self->to_routing_meta, ANNA_INPROC_ROUTING_META);
    }
    //  What is queued for another owner when the node stops (its hand-over above all) gets
    //  a while to leave.
    int gossip_linger = config->leave_timeout_ms < 5000 ? config->leave_timeout_ms : 5000;
    self->gossip_out = anna_pushcache_new(ctx, 256, 100, gossip_linger);
    self->self_ip = anna_config_public_ip(&self->config);
    self->cluster = anna_cluster_new(self->self_ip, 0, (uint32_t)config->global_replication,
                                     (uint32_t)config->vnodes);
    self->alone = true;
    self->overrides = anna_overrides_new();
#ifdef ANNA_FAULTS
    if (anna_faults_parse(&self->faults, getenv("ANNA_FAULTS"), thread, err, errlen) != 0) {
        anna_worker_destroy(&self);
        return NULL;
    }
    if (self->faults.on && thread == 0)
        cb_warn("fault injection on gossip: %s", getenv("ANNA_FAULTS"));
#endif
    //  A small linger: a reply just queued to a live client still leaves when its socket
    //  is evicted, and a dead client's queue does not hold shutdown for long.
    //  Subscribers (one cache per node) get sockets of their own, so that a crowd of
    //  clients cannot evict them, out of the same budget.
    size_t push_sockets = 1;
    if (reply_sockets >= 4) {
        push_sockets = reply_sockets / 8 < 2 ? 2 : reply_sockets / 8;
        reply_sockets -= push_sockets;
    }
    self->replies = anna_pushcache_new(ctx, reply_sockets, 1000, 100);
    self->pushes = anna_pushcache_new(ctx, push_sockets, S_PUSH_HWM, 100);
    //  The node's bound is shared evenly: keys, and so subscriptions, spread evenly over
    //  the threads.
    size_t max_subs = config->max_subscriptions <= 0 ? 0
                      : ((size_t)config->max_subscriptions + (size_t)config->threads - 1) /
                            (size_t)config->threads;
    self->subs = anna_subs_new(max_subs, ANNA_SUBS_MAX_PER_KEY);
    self->store = anna_store_new(1024);
    if (config->wal_dir[0]) {
        //  Replayed before the first request: the shard is back before the ports answer.
        //  With replication, the replayed keys are gossiped to the other replicas again,
        //  which may have missed the last ones.
        char layout[96];
        snprintf(layout, sizeof layout, "threads=%d replication=%d vnodes=%d", config->threads,
                 config->replication, config->vnodes);
        anna_wal_replay_t replay;
        self->wal = anna_wal_open(config->wal_dir, thread, layout,
                                  (anna_fsync_t)config->fsync_policy, config->fsync_ms,
                                  config->wal_compact_bytes, self->store,
                                  config->replication > 1 ? ANNA_STORE_MARK : 0, &replay,
                                  err, errlen);
        if (!self->wal) {
            anna_worker_destroy(&self);
            return NULL;
        }
        if (replay.records || replay.torn_bytes || replay.rejected)
            cb_info("thread %" PRIu32 ": write-ahead log replayed: %" PRIu64 " records, %zu "
                    "keys, %" PRIu64 " rejected, %" PRIu64 " torn bytes cut",
                    thread, replay.records, anna_store_count(self->store), replay.rejected,
                    replay.torn_bytes);
    }
    self->placement = anna_placement_new((uint32_t)config->threads,
                                         (uint32_t)config->replication, (uint32_t)config->vnodes);
    self->arena = anna_arena_new(64 * 1024);
    self->pb_alloc = anna_arena_protobuf(self->arena);
    return self;
}

void anna_worker_destroy(anna_worker_t **self_p)
{
    assert(self_p);
    anna_worker_t *self = *self_p;
    if (!self)
        return;
    assert(!self->started || self->joined);
    s_close_sockets(self);
    cb_free(self->resp_out);
    anna_cluster_destroy(&self->cluster);
    anna_overrides_destroy(&self->overrides);
    for (size_t i = 0; i < self->ndests; i++) {
        cb_free(self->dests[i].address);
        cb_free(self->dests[i].batch.tuples);
    }
    cb_free(self->dests);
    cb_free(self->drop);
    cb_free(self->delayed);
    anna_wal_destroy(&self->wal);
    cb_free(self->deferred);    //  empty: the thread drops what is left when it ends
    anna_store_destroy(&self->store);
    anna_placement_destroy(&self->placement);
    anna_arena_destroy(&self->arena);
    cb_free(self->reply.tuples);
    cb_free(self->reply.ptrs);
    cb_free(self->reply.owned);
    cb_free(self->gossip_payloads);
    anna_subs_destroy(&self->subs);
    for (size_t i = 0; i < self->push_batches_cap; i++)
        cb_free(self->push_batches[i].tuples);
    cb_free(self->push_batches);
    cb_free(self->push_active);
    cb_free(self->push_payloads);
    cb_free(self->push_dead);
    cb_free(self);
    *self_p = NULL;
}

//  The log's counters into stats (left as they are without a log).
static void s_wal_stats(const anna_worker_t *self, anna_worker_stats_t *stats)
{
    if (!self->wal)
        return;
    stats->wal_records = anna_wal_records(self->wal);
    stats->wal_fsyncs = anna_wal_fsyncs(self->wal);
    stats->wal_compactions = anna_wal_compactions(self->wal);
    stats->wal_bytes = anna_wal_bytes(self->wal);
}

void anna_worker_stats(const anna_worker_t *self, anna_worker_stats_t *out)
{
    assert(!self->started || self->joined);
    *out = self->stats;
    out->keys = self->store ? anna_store_count(self->store) : 0;
    out->bytes = self->store ? anna_store_bytes(self->store) : 0;
    out->subscriptions = self->subs ? anna_subs_count(self->subs) : 0;
    s_wal_stats(self, out);
}

//  ---- replies ------------------------------------------------------------------------------

//  Reply tuples for n request tuples, each initialised empty.
static KeyTuple *s_reply_tuples(anna_worker_t *self, size_t n)
{
    s_reply_t *r = &self->reply;
    if (n > r->cap) {
        r->cap = n > 2 * r->cap ? n : 2 * r->cap;
        r->tuples = cb_realloc(r->tuples, r->cap * sizeof *r->tuples);
        r->ptrs = cb_realloc(r->ptrs, r->cap * sizeof *r->ptrs);
    }
    static const KeyTuple init = KEY_TUPLE__INIT;
    for (size_t i = 0; i < n; i++) {
        r->tuples[i] = init;
        r->ptrs[i] = &r->tuples[i];
    }
    return r->tuples;
}

//  Keeps an encoded payload alive until the reply is sent.
static cb_bytes_t *s_reply_own(anna_worker_t *self)
{
    s_reply_t *r = &self->reply;
    if (r->nowned == r->owned_cap) {
        r->owned_cap = r->owned_cap ? 2 * r->owned_cap : 16;
        r->owned = cb_realloc(r->owned, r->owned_cap * sizeof *r->owned);
    }
    cb_bytes_t *b = &r->owned[r->nowned++];
    b->data = NULL;
    b->len = 0;
    return b;
}

static void s_reply_release(anna_worker_t *self)
{
    for (size_t i = 0; i < self->reply.nowned; i++)
        cb_bytes_fini(&self->reply.owned[i]);
    self->reply.nowned = 0;
    self->reply.bytes = 0;
}

//  The key as quoted in error messages: at most S_QUOTE_MAX bytes of it.
static int s_quote_len(const char *key)
{
    size_t len = strnlen(key, S_QUOTE_MAX + 1);
    return len > S_QUOTE_MAX ? S_QUOTE_MAX : (int)len;
}

static void s_tuple_error(anna_worker_t *self, KeyTuple *out, AnnaError error, const char *msg)
{
    out->error = error;
    out->error_message = (char *)msg;
    switch (error) {
    case ANNA_ERROR__KEY_DNE: self->stats.key_dne++; break;
    case ANNA_ERROR__WRONG_THREAD: self->stats.wrong_thread++; break;
    case ANNA_ERROR__LATTICE: self->stats.lattice++; break;
    case ANNA_ERROR__BAD_REQUEST: self->stats.bad_request++; break;
    case ANNA_ERROR__TOO_LARGE: self->stats.too_large++; break;
    default: break;
    }
}

//  ---- encoding by hand ---------------------------------------------------------------------
//  The hot path's messages, written the way protobuf-c packs them (fields in number order,
//  proto3 defaults omitted, enums as sign-extended varints) without its reflection-driven
//  walk: the self-test checks the bytes against protobuf-c and wire_encode.

static size_t s_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *s_varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

//  Size of a length-delimited field (tag of field < 2048 included) holding len bytes.
static size_t s_ld_size(uint32_t field, size_t len)
{
    return s_varint_size((uint64_t)field << 3) + s_varint_size(len) + len;
}

static uint8_t *s_ld_put(uint8_t *p, uint32_t field, const void *data, size_t len)
{
    p = s_varint_put(p, ((uint64_t)field << 3) | 2);
    p = s_varint_put(p, len);
    if (len)
        memcpy(p, data, len);
    return p + len;
}

static uint8_t *s_u64_put(uint8_t *p, uint32_t field, uint64_t v)
{
    p = s_varint_put(p, (uint64_t)field << 3);
    return s_varint_put(p, v);
}

//  Enums and int32: negative values take ten bytes, as protobuf encodes them.
static uint64_t s_enum_wire(int v)
{
    return (uint64_t)(int64_t)v;
}

static size_t s_str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

//  LWWValue {timestamp = 1, value = 2, writer = 100}, as wire_encode writes it.
static size_t s_lww_size(const lat_lww_t *lww)
{
    size_t n = 0;
    if (lww->ts)
        n += 1 + s_varint_size(lww->ts);
    if (lww->value.len)
        n += s_ld_size(2, lww->value.len);
    if (lww->writer)
        n += 2 + s_varint_size(lww->writer);
    return n;
}

static void s_lww_write(const lat_lww_t *lww, uint8_t *p)
{
    if (lww->ts)
        p = s_u64_put(p, 1, lww->ts);
    if (lww->value.len)
        p = s_ld_put(p, 2, lww->value.data, lww->value.len);
    if (lww->writer)
        s_u64_put(p, 100, lww->writer);
}

//  Size of a KeyTuple's body (every field, proto3 defaults omitted).
static size_t s_tuple_size(const KeyTuple *t)
{
    size_t n = 0, len;
    if ((len = s_str_len(t->key)))
        n += s_ld_size(1, len);
    if (t->lattice_type)
        n += 1 + s_varint_size(s_enum_wire((int)t->lattice_type));
    if (t->error)
        n += 1 + s_varint_size(s_enum_wire((int)t->error));
    if (t->payload.len)
        n += s_ld_size(4, t->payload.len);
    if (t->address_cache_size)
        n += 1 + s_varint_size(t->address_cache_size);
    n += t->invalidate ? 2 : 0;
    if (t->previous_payload.len)
        n += s_ld_size(7, t->previous_payload.len);
    n += t->delta ? 2 : 0;
    n += t->identical ? 2 : 0;
    if ((len = s_str_len(t->error_message)))
        n += s_ld_size(100, len);
    n += t->subscribe ? 3 : 0;
    n += t->unsubscribe ? 3 : 0;
    return n;
}

static uint8_t *s_tuple_put(uint8_t *p, const KeyTuple *t)
{
    size_t len;
    if ((len = s_str_len(t->key)))
        p = s_ld_put(p, 1, t->key, len);
    if (t->lattice_type)
        p = s_u64_put(p, 2, s_enum_wire((int)t->lattice_type));
    if (t->error)
        p = s_u64_put(p, 3, s_enum_wire((int)t->error));
    if (t->payload.len)
        p = s_ld_put(p, 4, t->payload.data, t->payload.len);
    if (t->address_cache_size)
        p = s_u64_put(p, 5, t->address_cache_size);
    if (t->invalidate)
        p = s_u64_put(p, 6, 1);
    if (t->previous_payload.len)
        p = s_ld_put(p, 7, t->previous_payload.data, t->previous_payload.len);
    if (t->delta)
        p = s_u64_put(p, 8, 1);
    if (t->identical)
        p = s_u64_put(p, 9, 1);
    if ((len = s_str_len(t->error_message)))
        p = s_ld_put(p, 100, t->error_message, len);
    if (t->subscribe)
        p = s_u64_put(p, 101, 1);
    if (t->unsubscribe)
        p = s_u64_put(p, 102, 1);
    return p;
}

//  Packs resp into a new message (what key_response__pack writes). Tuple sizes are kept in
//  sizes (n_tuples entries) between the two passes.
static void s_response_pack(const KeyResponse *resp, size_t *sizes, zmq_msg_t *msg)
{
    size_t n = 0, len;
    if (resp->type)
        n += 1 + s_varint_size(s_enum_wire((int)resp->type));
    for (size_t i = 0; i < resp->n_tuples; i++) {
        sizes[i] = s_tuple_size(resp->tuples[i]);
        n += s_ld_size(2, sizes[i]);
    }
    if ((len = s_str_len(resp->response_id)))
        n += s_ld_size(3, len);
    if (resp->error)
        n += 1 + s_varint_size(s_enum_wire((int)resp->error));
    if ((len = s_str_len(resp->error_message)))
        n += s_ld_size(100, len);
    zmq_msg_init_size(msg, n);
    uint8_t *p = zmq_msg_data(msg), *start = p;
    if (resp->type)
        p = s_u64_put(p, 1, s_enum_wire((int)resp->type));
    for (size_t i = 0; i < resp->n_tuples; i++) {
        p = s_varint_put(p, (2 << 3) | 2);
        p = s_varint_put(p, sizes[i]);
        uint8_t *body = p;
        p = s_tuple_put(p, resp->tuples[i]);
        assert((size_t)(p - body) == sizes[i]);
        (void)body;
    }
    if ((len = s_str_len(resp->response_id)))
        p = s_ld_put(p, 3, resp->response_id, len);
    if (resp->error)
        p = s_u64_put(p, 4, s_enum_wire((int)resp->error));
    if ((len = s_str_len(resp->error_message)))
        p = s_ld_put(p, 100, resp->error_message, len);
    assert((size_t)(p - start) == n);
    (void)start;
}

//  ---- GET / PUT ----------------------------------------------------------------------------

//  Changed keys are remembered for gossip only when some other thread or node may own them.
static int s_mark_flags(const anna_worker_t *self)
{
    return self->config.replication > 1 || !self->alone ? ANNA_STORE_MARK : 0;
}

//  The replication of a data key: its override, or the node's G and L.
static void s_rep(const anna_worker_t *self, const char *key, size_t len, uint32_t *global,
                  uint32_t *local)
{
    if (!anna_overrides_lookup(self->overrides, key, len, global, local)) {
        *global = anna_cluster_global_rep(self->cluster);
        *local = (uint32_t)self->config.replication;
    }
}

//  True if this node is among the `global` owner nodes of key.
static bool s_node_owns(const anna_worker_t *self, const char *key, size_t len, uint32_t global)
{
    return self->alone ||
           anna_cluster_node_owns_rep(self->cluster, self->self_ip, key, len, global);
}

//  Owner nodes of a key counting in a client's address cache: G, or fewer members.
static size_t s_owner_nodes(const anna_worker_t *self, uint32_t global)
{
    size_t members = anna_cluster_count(self->cluster);
    return self->alone ? 1 : members < global ? members : global;
}

//  Encodes text as an LWW value into the reply.
static void s_reply_text(anna_worker_t *self, const char *text, size_t len, KeyTuple *out)
{
    lat_t value;
    lat_init(&value, LAT_LWW);
    lat_lww_assign(&value, cb_clock_lww_now(), self->thread, text, len);
    cb_bytes_t *payload = s_reply_own(self);
    int rc = wire_encode(&value, payload);
    assert(rc == 0);
    (void)rc;
    lat_fini(&value);
    out->lattice_type = LATTICE_TYPE__LWW;
    out->payload.data = payload->data;
    out->payload.len = payload->len;
}

static void s_get_members(anna_worker_t *self, KeyTuple *out)
{
    size_t n = anna_cluster_count(self->cluster);
    size_t cap = 128 + n * (ANNA_CLUSTER_ADDRESS + 4);
    char *json = anna_arena_alloc(self->arena, cap);
    size_t len = (size_t)snprintf(json, cap, "{\"self\":\"%s\",\"members\":[", self->self_ip);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"%s\"", i ? "," : "",
                                anna_cluster_member(self->cluster, i));
    len += (size_t)snprintf(json + len, cap - len, "],\"global_replication\":%" PRIu32 "}",
                            anna_cluster_global_rep(self->cluster));
    s_reply_text(self, json, len, out);
}

static void s_get_stats(anna_worker_t *self, KeyTuple *out)
{
    anna_worker_stats_t snapshot = self->stats;
    snapshot.keys = anna_store_count(self->store);
    snapshot.bytes = anna_store_bytes(self->store);
    snapshot.subscriptions = anna_subs_count(self->subs);
    s_wal_stats(self, &snapshot);
    char json[2048];
    size_t len = anna_worker_stats_format(&snapshot, self->thread, true, json, sizeof json);
    s_reply_text(self, json, len, out);
}

static void s_get(anna_worker_t *self, const char *key, KeyTuple *out)
{
    size_t size = 0;
    const lat_t *value = anna_store_get_size(self->store, key, &size);
    if (!value) {
        s_tuple_error(self, out, ANNA_ERROR__KEY_DNE, "");
        return;
    }
    //  One request may name a big key many times: the reply is bounded so that it cannot
    //  exhaust memory (lat_size is an upper bound of the encoded size, give or take tags).
    int64_t budget = 4 * self->config.max_value_bytes + S_MSG_SLACK;
    if ((int64_t)(self->reply.bytes + size) > budget) {
        s_tuple_error(self, out, ANNA_ERROR__TOO_LARGE,
                      anna_arena_printf(self->arena,
                                        "reply would exceed %" PRId64
                                        " bytes: ask for fewer keys per request",
                                        budget));
        return;
    }
    out->lattice_type = (LatticeType)value->kind;
    if (value->kind == LAT_LWW) {
        //  The common case, encoded into the message's arena: no malloc and free per value.
        out->payload.len = s_lww_size(&value->u.lww);
        out->payload.data = anna_arena_alloc(self->arena, out->payload.len ? out->payload.len : 1);
        s_lww_write(&value->u.lww, out->payload.data);
    } else {
        cb_bytes_t *payload = s_reply_own(self);
        int rc = wire_encode(value, payload);
        assert(rc == 0);        //  we only store valid kinds
        (void)rc;
        out->payload.data = payload->data;
        out->payload.len = payload->len;
    }
    self->reply.bytes += out->payload.len > size ? out->payload.len : size;
}

//  The log cannot be written (disk full, I/O error): acknowledging would promise what a
//  crash can lose. The node stops at once; the log on disk is valid up to its last complete
//  record, and a restart replays it.
static void s_wal_check(anna_worker_t *self, int rc)
{
    if (rc == 0)
        return;
    cb_error("thread %" PRIu32 ": write-ahead log: %s; stopping the node", self->thread,
             cb_strerror(rc));
    _exit(1);
}

//  Logs a merge that changed the store (no-op without a log).
static void s_wal_append(anna_worker_t *self, const char *key, int kind, const void *payload,
                         size_t len)
{
    if (self->wal)
        s_wal_check(self, anna_wal_append(self->wal, key, kind, payload, len));
}

static void s_put(anna_worker_t *self, const KeyTuple *in, KeyTuple *out)
{
    const char *key = in->key;
    int kind = (int)in->lattice_type;
    out->lattice_type = in->lattice_type;
    if (kind == LAT_NONE) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST, "PUT needs a lattice_type");
        return;
    }
    if (!lat_kind_valid(kind)) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST,
                      anna_arena_printf(self->arena, "unknown lattice type %d", kind));
        return;
    }
    int64_t max = self->config.max_value_bytes;
    if ((int64_t)in->payload.len > max) {
        s_tuple_error(self, out, ANNA_ERROR__TOO_LARGE,
                      anna_arena_printf(self->arena,
                                        "value of %zu bytes exceeds max-value-bytes %" PRId64,
                                        in->payload.len, max));
        return;
    }
    size_t stored_size = 0;
    const lat_t *stored = anna_store_get_size(self->store, key, &stored_size);
    if (stored && (int)stored->kind != kind) {
        //  Never silently dropped (the original logs and acknowledges): the client learns
        //  what the key holds.
        s_tuple_error(self, out, ANNA_ERROR__LATTICE,
                      anna_arena_printf(self->arena, "key %.*s holds %s, not %s",
                                        s_quote_len(key), key, lat_kind_name(stored->kind),
                                        lat_kind_name((lat_kind_t)kind)));
        return;
    }
    lat_t value;
    int rc = wire_decode(kind, in->payload.data, in->payload.len, &value);
    if (rc) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST,
                      anna_arena_printf(self->arena, "malformed %s payload: %s",
                                        lat_kind_name((lat_kind_t)kind), cb_strerror(rc)));
        return;
    }
    int flags = s_mark_flags(self);
    if (stored && (int64_t)(stored_size + in->payload.len) > max) {
        //  The merge might grow the value past the limit (a set gaining elements): merge
        //  into a copy and keep it only if its encoding fits, so that stored values stay
        //  within what a GET reply or a gossip message may carry. (lat_size, kept by the
        //  store, is a cheap over-estimate for most kinds: most PUTs never come here.)
        lat_t merged;
        lat_copy(&merged, stored);
        rc = lat_merge(&merged, &value);
        lat_fini(&value);
        if (rc != 1) {
            lat_fini(&merged);      //  nothing new: an idempotent PUT always succeeds
            return;
        }
        cb_bytes_t encoded = {0};
        rc = wire_encode(&merged, &encoded);
        assert(rc == 0);
        size_t size = encoded.len;
        cb_bytes_fini(&encoded);
        if ((int64_t)size > max) {
            lat_fini(&merged);
            s_tuple_error(self, out, ANNA_ERROR__TOO_LARGE,
                          anna_arena_printf(self->arena,
                                            "merged value of key %.*s would be %zu bytes, over "
                                            "max-value-bytes %" PRId64,
                                            s_quote_len(key), key, size, max));
            return;
        }
        anna_store_replace(self->store, key, &merged, flags);
        anna_subs_touch(self->subs, key);
        s_wal_append(self, key, kind, in->payload.data, in->payload.len);
        return;
    }
    rc = anna_store_merge_move(self->store, key, &value, flags);
    assert(rc >= 0);            //  kind checked above
    if (rc == 1) {
        anna_subs_touch(self->subs, key);
        s_wal_append(self, key, kind, in->payload.data, in->payload.len);
    }
}

//  Our extension: the subscribe / unsubscribe flags of a GET tuple for a key we own.
//  Subscribing happens before the read, so the value answered and the pushes that follow
//  it miss no change. Returns false (with the tuple's error set) if the subscription is
//  refused; the GET is then not answered with a value.
static bool s_subscription(anna_worker_t *self, const KeyTuple *in, const char *update_address,
                           KeyTuple *out)
{
    const char *key = in->key;
    bool valid = update_address && update_address[0] &&
                 anna_pushcache_address_ok(update_address);
    if (in->unsubscribe && valid && anna_subs_remove(self->subs, key, update_address))
        self->stats.unsubscribes++;
    if (!in->subscribe)
        return true;
    if (!valid) {
        self->stats.subs_refused++;
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST,
                      anna_arena_printf(self->arena,
                                        "subscribe needs an update_address (tcp://IP:port or "
                                        "ipc://path), got '%.*s'",
                                        s_quote_len(update_address ? update_address : ""),
                                        update_address ? update_address : ""));
        return false;
    }
    int rc = anna_subs_add(self->subs, key, update_address, cb_clock_mono_ms());
    if (rc >= 0) {
        self->stats.subscribes++;
        return true;
    }
    //  TOO_LARGE, the "refused input" error: the subscriber should read without caching.
    self->stats.subs_refused++;
    s_tuple_error(self, out, ANNA_ERROR__TOO_LARGE,
                  rc == -EMLINK
                      ? anna_arena_printf(self->arena,
                                          "key %.*s has %d subscribers, the most it may have",
                                          s_quote_len(key), key, ANNA_SUBS_MAX_PER_KEY)
                      : anna_arena_printf(self->arena,
                                          "cannot subscribe to key %.*s: thread %" PRIu32
                                          " holds %zu subscriptions, its share of "
                                          "--max-subscriptions",
                                          s_quote_len(key), key, self->thread,
                                          anna_subs_count(self->subs)));
    return false;
}

static void s_broadcast_override(anna_worker_t *self, const char *meta_key, const void *payload,
                                 size_t len);
static void s_sweep_start(anna_worker_t *self);

//  "not owned by node 127.0.0.1; owners: 127.0.0.2 127.0.0.3" (in the arena).
static const char *s_not_here(anna_worker_t *self, const char *key, size_t len)
{
    uint32_t global, local;
    s_rep(self, key, len, &global, &local);
    const char *nodes[ANNA_OVERRIDES_MAX_GLOBAL];
    size_t n = anna_cluster_owners_rep(self->cluster, key, len, global, nodes,
                                       ANNA_OVERRIDES_MAX_GLOBAL);
    size_t cap = 64 + n * ANNA_CLUSTER_ADDRESS;
    char *text = anna_arena_alloc(self->arena, cap);
    size_t used = (size_t)snprintf(text, cap, "not owned by node %s; owners:", self->self_ip);
    for (size_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(text + used, cap - used, " %s", nodes[i]);
    return text;
}

//  GET or PUT of ANNA_REPLICATION_PREFIX "<key>": the override of <key>'s replication.
static void s_override(anna_worker_t *self, RequestType type, const char *meta_key,
                       const KeyTuple *in, bool answer, KeyTuple *out)
{
    const char *key = meta_key + sizeof ANNA_REPLICATION_PREFIX - 1;
    if (type == REQUEST_TYPE__GET) {
        const lat_t *value = anna_overrides_get(self->overrides, key);
        if (!value) {
            s_tuple_error(self, out, ANNA_ERROR__KEY_DNE, "");
            return;
        }
        if (answer) {
            cb_bytes_t *payload = s_reply_own(self);
            int rc = wire_encode(value, payload);
            assert(rc == 0);
            (void)rc;
            out->lattice_type = LATTICE_TYPE__LWW;
            out->payload.data = payload->data;
            out->payload.len = payload->len;
        }
        return;
    }
    out->lattice_type = in->lattice_type;
    lat_t value;
    char err[200];
    int rc = in->lattice_type == LATTICE_TYPE__LWW
                 ? wire_decode(LAT_LWW, in->payload.data, in->payload.len, &value)
                 : -EINVAL;
    if (rc == 0) {
        rc = anna_overrides_merge(self->overrides, key, &value,
                                  (uint32_t)self->config.threads, err, sizeof err);
        lat_fini(&value);
    } else
        snprintf(err, sizeof err, "a replication override is an LWW value \"G L\"");
    if (rc < 0) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST, anna_arena_printf(self->arena, "%s", err));
        return;
    }
    if (rc == 1) {
        //  Every thread of every node, and our routing thread, learn it now; the key's
        //  replicas move to its new owners with the walk.
        s_broadcast_override(self, meta_key, in->payload.data, in->payload.len);
        s_sweep_start(self);
    }
}

//  update_address: the request's (NULL if none). answer: the request has a response
//  address; without one, a GET only changes subscriptions (no one reads the value).
static void s_handle_tuple(anna_worker_t *self, RequestType type, const KeyTuple *in,
                           const char *update_address, bool answer, KeyTuple *out)
{
    const char *key = in->key ? in->key : "";
    out->key = (char *)key;
    if (type == REQUEST_TYPE__GET)
        self->stats.gets++;
    else
        self->stats.puts++;
    size_t len = strlen(key);
    if (len == 0) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST, "empty key");
        return;
    }
    if (len > ANNA_MAX_KEY_BYTES) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST,
                      anna_arena_printf(self->arena, "key of %zu bytes is longer than %d",
                                        len, ANNA_MAX_KEY_BYTES));
        return;
    }
    int stats_thread;
    anna_key_kind_t kind = anna_placement_classify(self->placement, key, len, &stats_thread);
    if (kind == ANNA_KEY_REPLICATION) {
        //  Every thread of every node keeps every override: any thread answers.
        s_override(self, type, key, in, answer, out);
        return;
    }
    if (kind != ANNA_KEY_DATA && type == REQUEST_TYPE__PUT) {
        s_tuple_error(self, out, ANNA_ERROR__BAD_REQUEST,
                      "keys starting with " ANNA_RESERVED_PREFIX " are reserved");
        return;
    }
    size_t owners;
    bool owns, node_owns = true;
    if (kind == ANNA_KEY_DATA) {
        //  Ours only on our owner threads of its owner nodes.
        uint32_t global, local;
        s_rep(self, key, len, &global, &local);
        owns = anna_placement_owns_rep(self->placement, self->thread, key, len, local, &owners);
        owners *= s_owner_nodes(self, global);
        node_owns = s_node_owns(self, key, len, global);
        owns = owns && node_owns;
    } else {
        owns = anna_placement_owns(self->placement, self->thread, key, len, &owners);
        //  The plain stats key is answered by whichever thread is asked, about itself; so
        //  is the members key.
        if ((kind == ANNA_KEY_STATS && stats_thread < 0) || kind == ANNA_KEY_MEMBERS)
            owns = true;
    }
    if (in->address_cache_size > 0 && in->address_cache_size != owners)
        out->invalidate = true;
    if (!owns) {
        //  A client asking the wrong node may be one without a routing tier of its own (the
        //  RESP front end): say where the key is.
        s_tuple_error(self, out, ANNA_ERROR__WRONG_THREAD,
                      node_owns ? "" : s_not_here(self, key, len));
        return;
    }
    if (kind == ANNA_KEY_STATS) {
        if (answer)
            s_get_stats(self, out);
    } else if (kind == ANNA_KEY_MEMBERS) {
        if (answer)
            s_get_members(self, out);
    } else if (type == REQUEST_TYPE__GET) {
        //  Only data keys change, so only they can be subscribed to.
        if (kind == ANNA_KEY_DATA && (in->subscribe || in->unsubscribe) &&
            !s_subscription(self, in, update_address, out))
            return;
        if (answer)
            s_get(self, key, out);
    } else
        s_put(self, in, out);
}

static void s_log_peer(anna_worker_t *self, const char *what, size_t size)
{
    if (cb_log_ratelimit(&self->log_last))
        cb_warn("thread %" PRIu32 ": dropped %s (%zu bytes; %" PRIu64 " malformed so far)",
                self->thread, what, size, self->stats.malformed);
}

//  The RESP thread named by an internal response address: "inproc://anna-resp-<i>" with i a
//  plain decimal below nresp. -1 for anything else.
static int s_internal_index(const char *address, int nresp)
{
    size_t plen = strlen(ANNA_INPROC_RESP);
    if (strncmp(address, ANNA_INPROC_RESP, plen) != 0)
        return -1;
    const char *p = address + plen;
    if (!*p || (p[0] == '0' && p[1]) || strlen(p) > 4)
        return -1;
    int i = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        i = i * 10 + (*p - '0');
    }
    return i < nresp ? i : -1;
}

//  Sends a reply to one of the node's RESP threads. Returns 0 or a negative errno.
static int s_send_internal(anna_worker_t *self, int index, zmq_msg_t *msg)
{
    void *sock = self->resp_out[index];
    if (!sock) {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, ANNA_INPROC_RESP "%d", index);
        sock = zmq_socket(self->ctx, ZMQ_PUSH);
        if (!sock) {
            int rc = -errno;
            zmq_msg_close(msg);
            return rc;
        }
        int linger = 0, zero = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
        if (zmq_connect(sock, endpoint) != 0) {
            int rc = -errno;
            zmq_close(sock);
            zmq_msg_close(msg);
            return rc;
        }
        self->resp_out[index] = sock;
    }
    if (zmq_msg_send(msg, sock, ZMQ_DONTWAIT) < 0) {
        int rc = -errno;
        zmq_msg_close(msg);
        return rc;
    }
    return 0;
}

//  internal: the request came from one of the node's RESP threads (the inproc key socket);
//  only such a request may name an internal (inproc://) response address. A peer on the
//  network cannot make us write to our own threads' sockets.
static void s_deliver(anna_worker_t *self, const char *address, zmq_msg_t *msg_p,
                      bool internal);

static void s_send_reply(anna_worker_t *self, const char *address, const KeyResponse *resp,
                         bool internal)
{
    zmq_msg_t msg;
    size_t *sizes = resp->n_tuples
                        ? anna_arena_alloc(self->arena, resp->n_tuples * sizeof *sizes)
                        : NULL;
    s_response_pack(resp, sizes, &msg);
    if (self->wal) {
        //  Sent after the loop iteration's commit of the log (s_flush_deferred).
        if (self->ndeferred == self->deferred_cap) {
            self->deferred_cap = self->deferred_cap ? 2 * self->deferred_cap : 64;
            self->deferred = cb_realloc(self->deferred,
                                        self->deferred_cap * sizeof *self->deferred);
        }
        s_deferred_t *d = &self->deferred[self->ndeferred++];
        d->address = cb_strdup(address);
        d->internal = internal;
        zmq_msg_init(&d->msg);
        zmq_msg_move(&d->msg, &msg);
        zmq_msg_close(&msg);
        return;
    }
    s_deliver(self, address, &msg, internal);
}

//  Sends a packed reply (takes msg).
static void s_deliver(anna_worker_t *self, const char *address, zmq_msg_t *msg_p,
                      bool internal)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_move(&msg, msg_p);
    zmq_msg_close(msg_p);
    int rc;
    if (strncmp(address, "inproc://", 9) == 0) {
        int index = internal ? s_internal_index(address, self->nresp) : -1;
        if (index >= 0)
            rc = s_send_internal(self, index, &msg);
        else {
            zmq_msg_close(&msg);
            rc = -EINVAL;
        }
    } else
        rc = anna_pushcache_send(self->replies, address, &msg);
    if (rc == 0)
        self->stats.replies++;
    else if (rc == -EAGAIN || rc == -ETERM)
        self->stats.replies_dropped++;
    else {
        self->stats.bad_address++;
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("thread %" PRIu32 ": cannot reply to response address '%.*s': %s",
                    self->thread, s_quote_len(address), address,
                    rc == -EINVAL ? "not tcp://IP:port or ipc://path" : zmq_strerror(-rc));
    }
}

//  Refuses a request with too many tuples: a reply with the error and no tuples, when the
//  request names a response address.
static void s_refuse_request(anna_worker_t *self, const wire_scan_t *scan, bool internal)
{
    self->stats.requests++;
    self->stats.bad_request++;
    if (cb_log_ratelimit(&self->log_last))
        cb_warn("thread %" PRIu32 ": refused a KeyRequest of %zu tuples (at most %d)",
                self->thread, scan->tuples, S_MAX_TUPLES);
    if (!scan->address_len)
        return;
    char *address = anna_arena_alloc(self->arena, scan->address_len + 1);
    memcpy(address, scan->address, scan->address_len);
    address[scan->address_len] = '\0';
    char *id = anna_arena_alloc(self->arena, scan->id_len + 1);
    if (scan->id_len)
        memcpy(id, scan->id, scan->id_len);
    id[scan->id_len] = '\0';
    KeyResponse resp = KEY_RESPONSE__INIT;
    resp.response_id = id;
    resp.error = ANNA_ERROR__BAD_REQUEST;
    resp.error_message = anna_arena_printf(self->arena,
                                           "%zu tuples in one request; at most %d are accepted",
                                           scan->tuples, S_MAX_TUPLES);
    s_send_reply(self, address, &resp, internal);
}

static void s_handle_request(anna_worker_t *self, const uint8_t *data, size_t size,
                             bool internal)
{
    //  Each tuple takes at least 2 bytes on the wire: only a message this large can hold
    //  too many, so smaller ones skip the scan.
    if (size >= 2 * (size_t)S_MAX_TUPLES) {
        wire_scan_t scan;
        if (!wire_scan_request(data, size, &scan)) {
            self->stats.malformed++;
            s_log_peer(self, "undecodable KeyRequest", size);
            return;
        }
        if (scan.tuples > S_MAX_TUPLES) {
            s_refuse_request(self, &scan, internal);
            return;
        }
    }
    KeyRequest *req = key_request__unpack(&self->pb_alloc, size, data);
    if (!req) {
        self->stats.malformed++;
        s_log_peer(self, "undecodable KeyRequest", size);
        return;
    }
    self->stats.requests++;
    KeyTuple *out = s_reply_tuples(self, req->n_tuples);
    KeyResponse resp = KEY_RESPONSE__INIT;
    resp.type = req->type;
    resp.tuples = self->reply.ptrs;
    resp.n_tuples = req->n_tuples;
    resp.response_id = req->request_id;
    bool answer = req->response_address && req->response_address[0];
    if (req->type == REQUEST_TYPE__GET || req->type == REQUEST_TYPE__PUT) {
        for (size_t i = 0; i < req->n_tuples; i++)
            s_handle_tuple(self, req->type, req->tuples[i], req->update_address, answer,
                           &out[i]);
    } else {
        const char *msg = anna_arena_printf(self->arena, "request type %d is not GET or PUT",
                                            (int)req->type);
        resp.error = ANNA_ERROR__BAD_REQUEST;
        resp.error_message = (char *)msg;
        self->stats.bad_request++;
        for (size_t i = 0; i < req->n_tuples; i++) {
            out[i].key = req->tuples[i]->key;
            out[i].error = ANNA_ERROR__BAD_REQUEST;
            out[i].error_message = (char *)msg;
        }
    }
    //  No response address: PUTs are merged, nothing is sent (fire and forget).
    if (answer)
        s_send_reply(self, req->response_address, &resp, internal);
    s_reply_release(self);
}

//  ---- gossip -------------------------------------------------------------------------------

//  Sends one gossip message to address, through fault injection when it is on. Consumes
//  *msg. Returns 0 (sent, or lost on purpose) or a negative errno (peer's queue full...).
static int s_gossip_send(anna_worker_t *self, const char *address, zmq_msg_t *msg)
{
    int delay = 0;
    switch (anna_faults_next(&self->faults, &delay)) {
    case ANNA_FAULT_DROP:
        self->stats.faults++;
        zmq_msg_close(msg);
        return 0;
    case ANNA_FAULT_DUP: {
        self->stats.faults++;
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, msg);
        anna_pushcache_send(self->gossip_out, address, &copy);
        break;
    }
    case ANNA_FAULT_DELAY:
        self->stats.faults++;
        if (self->ndelayed == self->delayed_cap) {
            self->delayed_cap = self->delayed_cap ? 2 * self->delayed_cap : 16;
            self->delayed = cb_realloc(self->delayed, self->delayed_cap * sizeof *self->delayed);
        }
        s_delayed_t *d = &self->delayed[self->ndelayed++];
        d->address = cb_strdup(address);
        zmq_msg_init(&d->msg);
        zmq_msg_move(&d->msg, msg);
        zmq_msg_close(msg);
        d->due_ms = cb_clock_mono_ms() + delay;
        return 0;
    case ANNA_FAULT_NONE:
        break;
    }
    return anna_pushcache_send(self->gossip_out, address, msg);
}

//  Sends the delayed messages that are due (all of them if all), in due order or not: the
//  order they leave in is part of the fault.
static void s_release_delayed(anna_worker_t *self, int64_t now, bool all)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->ndelayed; i++) {
        s_delayed_t *d = &self->delayed[i];
        if (all || d->due_ms <= now) {
            anna_pushcache_send(self->gossip_out, d->address, &d->msg);
            cb_free(d->address);
        } else
            self->delayed[kept++] = *d;
    }
    self->ndelayed = kept;
}

//  Sends every batch. Returns how many messages could not be sent; their keys are marked
//  again, so they go in the next round (merges are idempotent: a duplicate does no harm).
static size_t s_gossip_flush(anna_worker_t *self)
{
    size_t failed = 0;
    for (size_t d = 0; d < self->ndests; d++) {
        s_batch_t *batch = &self->dests[d].batch;
        if (batch->len == 0)
            continue;
        KeyTuple **ptrs = anna_arena_alloc(self->arena, batch->len * sizeof *ptrs);
        for (size_t i = 0; i < batch->len; i++)
            ptrs[i] = &batch->tuples[i];
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__PUT;
        req.tuples = ptrs;
        req.n_tuples = batch->len;
        zmq_msg_t msg;
        size_t size = key_request__get_packed_size(&req);
        zmq_msg_init_size(&msg, size);
        key_request__pack(&req, zmq_msg_data(&msg));
        int rc = s_gossip_send(self, self->dests[d].address, &msg);
        if (rc == 0) {
            self->stats.gossip_sent++;
            self->stats.gossip_keys_sent += batch->len;
        } else {
            failed++;
            self->stats.gossip_failed++;
            if (rc != -ETERM && cb_log_ratelimit(&self->log_last))
                cb_warn("thread %" PRIu32 ": gossip to %s not sent (%s); retrying",
                        self->thread, self->dests[d].address, cb_strerror(rc));
            for (size_t i = 0; i < batch->len; i++)
                anna_store_mark(self->store, batch->tuples[i].key);
        }
        batch->len = 0;
    }
    for (size_t i = 0; i < self->ngossip_payloads; i++)
        cb_bytes_fini(&self->gossip_payloads[i]);
    self->ngossip_payloads = 0;
    self->gossip_batched_bytes = 0;
    anna_arena_reset(self->arena);
    return failed;
}

//  The destination of the gossip port of thread t of node ip (added on first use).
static s_dest_t *s_dest(anna_worker_t *self, const char *ip, uint32_t t)
{
    for (size_t i = 0; i < self->ndests; i++)
        if (self->dests[i].thread == t && !strcmp(self->dests[i].ip, ip))
            return &self->dests[i];
    //  Our own threads are reached where we listen: the bind address, or loopback when
    //  bound to every interface.
    const char *host = strcmp(ip, self->self_ip) ? ip
                       : strcmp(self->config.bind, "0.0.0.0") ? self->config.bind
                                                               : "127.0.0.1";
    char address[96];
    snprintf(address, sizeof address, "tcp://%s:%d", host,
             ANNA_PORT_GOSSIP + self->config.port_offset + (int)t);
    if (self->ndests == self->dests_cap) {
        self->dests_cap = self->dests_cap ? 2 * self->dests_cap : 8;
        self->dests = cb_realloc(self->dests, self->dests_cap * sizeof *self->dests);
    }
    s_dest_t *dest = &self->dests[self->ndests++];
    memset(dest, 0, sizeof *dest);
    snprintf(dest->ip, sizeof dest->ip, "%s", ip);
    dest->thread = t;
    dest->address = cb_strdup(address);
    return dest;
}

//  Adds the key's full state to the batch of every other owner: each owner thread of each
//  owner node, but us.
static void s_gossip_key(void *arg, const char *key, const lat_t *value)
{
    anna_worker_t *self = arg;
    size_t klen = strlen(key);
    uint32_t global, local;
    s_rep(self, key, klen, &global, &local);
    uint32_t threads[ANNA_MAX_THREADS];
    size_t nt = anna_placement_owners_rep(self->placement, key, klen, local, threads);
    const char *nodes[ANNA_OVERRIDES_MAX_GLOBAL];
    size_t nn = 1;
    nodes[0] = self->self_ip;
    if (!self->alone)
        nn = anna_cluster_owners_rep(self->cluster, key, klen, global, nodes,
                                     ANNA_OVERRIDES_MAX_GLOBAL);
    s_batch_t *batches[ANNA_OVERRIDES_MAX_GLOBAL * ANNA_MAX_THREADS];
    size_t nb = 0;
    for (size_t i = 0; i < nn; i++)
        for (size_t k = 0; k < nt; k++)
            if (strcmp(nodes[i], self->self_ip) || threads[k] != self->thread)
                batches[nb++] = &s_dest(self, nodes[i], threads[k])->batch;
    if (nb == 0)
        return;
    if (self->ngossip_payloads == self->gossip_payloads_cap) {
        self->gossip_payloads_cap = self->gossip_payloads_cap ? 2 * self->gossip_payloads_cap : 64;
        self->gossip_payloads = cb_realloc(self->gossip_payloads,
                                           self->gossip_payloads_cap * sizeof(cb_bytes_t));
    }
    cb_bytes_t encoded = {0};
    int rc = wire_encode(value, &encoded);
    assert(rc == 0);
    (void)rc;
    //  Send what is batched first if this key would take the batch over the flush size:
    //  a message then holds either at most S_GOSSIP_FLUSH_BYTES or a single key, and stays
    //  below the receiver's limit of max-value-bytes + 1 MiB.
    //  The key count is bounded too, far below the receiver's S_MAX_TUPLES, since keys with
    //  empty values add next to no bytes. (s_dest pointers stay valid: flushing empties
    //  batches but never moves them.)
    if ((self->gossip_batched_bytes > 0 &&
         self->gossip_batched_bytes + encoded.len + klen > S_GOSSIP_FLUSH_BYTES) ||
        self->ngossip_payloads >= S_GOSSIP_MAX_KEYS)
        s_gossip_flush(self);
    cb_bytes_t *payload = &self->gossip_payloads[self->ngossip_payloads++];
    *payload = encoded;
    static const KeyTuple init = KEY_TUPLE__INIT;
    for (size_t i = 0; i < nb; i++) {
        s_batch_t *batch = batches[i];
        if (batch->len == batch->cap) {
            batch->cap = batch->cap ? 2 * batch->cap : 64;
            batch->tuples = cb_realloc(batch->tuples, batch->cap * sizeof *batch->tuples);
        }
        KeyTuple *tuple = &batch->tuples[batch->len++];
        *tuple = init;
        tuple->key = (char *)key;
        tuple->lattice_type = (LatticeType)value->kind;
        tuple->payload.data = payload->data;
        tuple->payload.len = payload->len;
    }
    self->gossip_batched_bytes += payload->len + klen;
}

//  Anna §2.7: the current full state of every key changed by a client since the last round,
//  batched as one PUT KeyRequest without response address per destination thread.
static void s_gossip(anna_worker_t *self)
{
    anna_store_drain_marked(self->store, s_gossip_key, self);
    s_gossip_flush(self);
}

//  Sends the override meta_key = payload to every thread of every member node but us (which
//  merge it without sending it on) and to our routing thread.
//  A PUT KeyRequest of one override, as gossip carries it.
static void s_override_msg(const char *meta_key, const void *payload, size_t len, zmq_msg_t *msg)
{
    KeyTuple tuple = KEY_TUPLE__INIT, *ptr = &tuple;
    tuple.key = (char *)meta_key;
    tuple.lattice_type = LATTICE_TYPE__LWW;
    tuple.payload.data = (uint8_t *)payload;
    tuple.payload.len = len;
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = REQUEST_TYPE__PUT;
    req.tuples = &ptr;
    req.n_tuples = 1;
    zmq_msg_init_size(msg, key_request__get_packed_size(&req));
    key_request__pack(&req, zmq_msg_data(msg));
}

static void s_broadcast_override(anna_worker_t *self, const char *meta_key, const void *payload,
                                 size_t len)
{
    zmq_msg_t msg;
    s_override_msg(meta_key, payload, len, &msg);
    size_t members = anna_cluster_count(self->cluster);
    for (size_t i = 0; i < members; i++) {
        const char *node = anna_cluster_member(self->cluster, i);
        for (uint32_t t = 0; t < (uint32_t)self->config.threads; t++) {
            if (!strcmp(node, self->self_ip) && t == self->thread)
                continue;
            s_dest_t *dest = s_dest(self, node, t);
            zmq_msg_t copy;
            zmq_msg_init(&copy);
            zmq_msg_copy(&copy, &msg);
            s_gossip_send(self, dest->address, &copy);
        }
    }
    if (zmq_msg_send(&msg, self->to_routing_meta, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&msg);
}

//  An override from another thread: merged, passed to our routing thread, keys moved.
static void s_gossip_override(anna_worker_t *self, const char *meta_key, const KeyTuple *in)
{
    lat_t value;
    char err[200];
    if (in->lattice_type != LATTICE_TYPE__LWW ||
        wire_decode(LAT_LWW, in->payload.data, in->payload.len, &value) != 0) {
        self->stats.gossip_rejected++;
        return;
    }
    int rc = anna_overrides_merge(self->overrides, meta_key + sizeof ANNA_REPLICATION_PREFIX - 1,
                                  &value, (uint32_t)self->config.threads, err, sizeof err);
    lat_fini(&value);
    if (rc < 0) {
        self->stats.gossip_rejected++;
        return;
    }
    self->stats.gossip_keys_received++;
    if (rc == 1) {
        zmq_msg_t msg;
        s_override_msg(meta_key, in->payload.data, in->payload.len, &msg);
        if (zmq_msg_send(&msg, self->to_routing_meta, ZMQ_DONTWAIT) < 0)
            zmq_msg_close(&msg);
        s_sweep_start(self);
    }
}

static void s_handle_gossip(anna_worker_t *self, const uint8_t *data, size_t size)
{
    wire_scan_t scan;
    if (size >= 2 * (size_t)S_MAX_TUPLES &&
        (!wire_scan_request(data, size, &scan) || scan.tuples > S_MAX_TUPLES)) {
        self->stats.malformed++;
        s_log_peer(self, "gossip with too many tuples", size);
        return;
    }
    KeyRequest *req = key_request__unpack(&self->pb_alloc, size, data);
    if (!req || req->type != REQUEST_TYPE__PUT) {
        self->stats.malformed++;
        s_log_peer(self, req ? "gossip that is not a PUT" : "undecodable gossip", size);
        return;
    }
    self->stats.gossip_received++;
    int flags = 0;
    for (size_t i = 0; i < req->n_tuples; i++) {
        const KeyTuple *in = req->tuples[i];
        const char *key = in->key ? in->key : "";
        size_t len = strlen(key);
        size_t owners;
        int stats_thread;
        lat_t value;
        if (len > 0 && len <= ANNA_MAX_KEY_BYTES &&
            anna_placement_classify(self->placement, key, len, &stats_thread) ==
                ANNA_KEY_REPLICATION) {
            s_gossip_override(self, key, in);
            continue;
        }
        uint32_t global, local;
        s_rep(self, key, len, &global, &local);
        //  Only keys of this thread, of a valid kind, and within the size limit are merged.
        //  Gossip is not gossiped again: the sender sends to every owner itself. The node
        //  is not checked: a sender may know of a membership change before us; a key we
        //  do not own leaves again with the next walk of the shard.
        if (len == 0 || len > ANNA_MAX_KEY_BYTES ||
            anna_placement_classify(self->placement, key, len, &stats_thread) != ANNA_KEY_DATA ||
            !anna_placement_owns_rep(self->placement, self->thread, key, len, local, &owners) ||
            !lat_kind_valid((int)in->lattice_type) ||
            (int64_t)in->payload.len > self->config.max_value_bytes ||
            wire_decode((int)in->lattice_type, in->payload.data, in->payload.len, &value) != 0) {
            self->stats.gossip_rejected++;
            continue;
        }
        int rc = anna_store_merge_move(self->store, key, &value, flags);
        if (rc == 1) {
            anna_subs_touch(self->subs, key);
            s_wal_append(self, key, (int)in->lattice_type, in->payload.data, in->payload.len);
        }
        if (rc < 0) {
            self->stats.gossip_rejected++;
            if (cb_log_ratelimit(&self->log_last))
                cb_warn("thread %" PRIu32 ": gossip for key %.*s has another lattice kind "
                        "than the stored value; dropped",
                        self->thread, s_quote_len(key), key);
            continue;
        }
        self->stats.gossip_keys_received++;
    }
}

//  ---- cluster: membership changes, walks of the shard, hand-over ---------------------------

//  One step of a walk: the next move_batch keys (from the end down, so that removing keys
//  already visited moves none that is not) go to their other owners; the ones we no longer
//  own are removed once every message of the step went out. Returns the messages that did
//  not (their keys are marked for the next gossip round).
static size_t s_sweep_step(anna_worker_t *self)
{
    size_t budget = (size_t)self->config.move_batch;
    while (budget-- > 0 && self->sweep_pos > 0) {
        const lat_t *value;
        const char *key = anna_store_at(self->store, --self->sweep_pos, &value);
        size_t len = strlen(key);
        s_gossip_key(self, key, value);
        self->stats.keys_moved++;
        uint32_t global, local;
        s_rep(self, key, len, &global, &local);
        if (!s_node_owns(self, key, len, global)) {
            if (self->ndrop == self->drop_cap) {
                self->drop_cap = self->drop_cap ? 2 * self->drop_cap : 64;
                self->drop = cb_realloc(self->drop, self->drop_cap * sizeof *self->drop);
            }
            self->drop[self->ndrop++] = cb_strdup(key);
        }
    }
    size_t failed = s_gossip_flush(self);
    for (size_t i = 0; i < self->ndrop; i++) {
        //  A key whose state may not have left stays until a later walk sends it.
        if (!failed && anna_store_remove(self->store, self->drop[i]))
            self->stats.keys_dropped++;
        cb_free(self->drop[i]);
    }
    self->ndrop = 0;
    if (self->sweep_pos == 0)
        self->sweeping = false;
    return failed;
}

//  Anti-entropy walks run when some key has another owner.
static bool s_anti_entropy_on(const anna_worker_t *self)
{
    return self->config.anti_entropy_ms > 0 && (self->config.replication > 1 || !self->alone);
}

static void s_sweep_start(anna_worker_t *self)
{
    //  Overrides first (new members need them before the keys they place), each a message.
    if (!self->alone)
        for (size_t i = 0; i < anna_overrides_count(self->overrides); i++) {
            const lat_t *value;
            const char *key = anna_overrides_at(self->overrides, i, &value);
            cb_bytes_t payload = {0};
            wire_encode(value, &payload);
            char *meta = anna_arena_printf(self->arena, ANNA_REPLICATION_PREFIX "%s", key);
            s_broadcast_override(self, meta, payload.data, payload.len);
            cb_bytes_fini(&payload);
        }
    self->sweeping = anna_store_count(self->store) > 0;
    self->sweep_pos = anna_store_count(self->store);
    if (self->sweeping)
        self->stats.sweeps++;
}

//  The node is leaving: every key goes to its owners among the other members (the walk
//  removes it here), retried until sent or the leave timeout; then the server is told.
static void s_handover(anna_worker_t *self)
{
    int64_t deadline = cb_clock_mono_ms() + self->config.leave_timeout_ms;
    if (anna_cluster_count(self->cluster) > 0 &&
        anna_cluster_contains(self->cluster, self->self_ip) == false) {
        s_sweep_start(self);
        while (self->sweeping && cb_clock_mono_ms() < deadline)
            s_sweep_step(self);
        while ((anna_store_marked(self->store) > 0 || anna_store_count(self->store) > 0) &&
               cb_clock_mono_ms() < deadline) {
            //  What could not be sent (a full queue) is marked: send it again, and walk
            //  what is left (keys kept because their step did not fully go out).
            s_gossip(self);
            s_sweep_start(self);
            while (self->sweeping && cb_clock_mono_ms() < deadline)
                s_sweep_step(self);
            if (anna_store_count(self->store) > 0)
                usleep(10 * 1000);
        }
        s_release_delayed(self, 0, true);
        if (anna_store_count(self->store) > 0)
            cb_warn("thread %" PRIu32 ": %zu keys not handed over within %d ms",
                    self->thread, anna_store_count(self->store),
                    self->config.leave_timeout_ms);
    }
    cb_bytes_t bytes = {0};
    anna_membership_encode(CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER_DONE, "", 0, "", NULL, NULL,
                           NULL, self->thread, &bytes);
    zmq_send(self->to_server, bytes.data, bytes.len, ZMQ_DONTWAIT);
    cb_bytes_fini(&bytes);
}

static void s_handle_members(anna_worker_t *self, const uint8_t *data, size_t size)
{
    const char *why;
    ClusterMessage *msg = anna_membership_decode(data, size, &self->pb_alloc, &why);
    if (!msg)
        return;                                 //  from our own routing thread: cannot be
    anna_cluster_t *cluster = anna_membership_cluster(
        msg, self->self_ip, anna_cluster_global_rep(self->cluster), (uint32_t)self->config.vnodes);
    bool handover = msg->type == CLUSTER_MESSAGE_TYPE__CLUSTER_HANDOVER;
    if (cluster) {
        anna_cluster_destroy(&self->cluster);
        self->cluster = cluster;
    } else if (handover) {
        //  The last member leaving: nobody to hand over to.
        s_handover(self);
        return;
    }
    self->alone = anna_cluster_count(self->cluster) == 1 &&
                  anna_cluster_contains(self->cluster, self->self_ip);
    if (handover)
        s_handover(self);
    else if (!self->alone)
        s_sweep_start(self);
}

//  ---- pushes to subscribers ----------------------------------------------------------------

static void s_push_flush(anna_worker_t *self)
{
    int64_t now = cb_clock_mono_ms();
    for (size_t a = 0; a < self->npush_active; a++) {
        uint32_t id = self->push_active[a];
        s_batch_t *batch = &self->push_batches[id];
        KeyTuple **ptrs = anna_arena_alloc(self->arena, batch->len * sizeof *ptrs);
        for (size_t i = 0; i < batch->len; i++)
            ptrs[i] = &batch->tuples[i];
        //  The same message as replica gossip: a PUT without response address.
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__PUT;
        req.tuples = ptrs;
        req.n_tuples = batch->len;
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, key_request__get_packed_size(&req));
        key_request__pack(&req, zmq_msg_data(&msg));
        const char *address = anna_subs_address(self->subs, id);
        int rc = anna_pushcache_send(self->pushes, address, &msg);
        if (rc == 0) {
            self->stats.pushes++;
            self->stats.push_keys += batch->len;
        } else {
            //  Not retried: a later change pushes the key's full value again, and a
            //  subscriber that keeps failing is dropped below.
            self->stats.push_dropped++;
            if (rc != -ETERM && cb_log_ratelimit(&self->log_last))
                cb_warn("thread %" PRIu32 ": update of %zu keys to %.*s dropped: %s",
                        self->thread, batch->len, s_quote_len(address), address,
                        cb_strerror(rc));
        }
        if (anna_subs_result(self->subs, id, rc == 0, now)) {
            if (self->npush_dead == self->push_dead_cap) {
                self->push_dead_cap = self->push_dead_cap ? 2 * self->push_dead_cap : 8;
                self->push_dead = cb_realloc(self->push_dead,
                                             self->push_dead_cap * sizeof *self->push_dead);
            }
            self->push_dead[self->npush_dead++] = id;
        }
        batch->len = 0;
    }
    self->npush_active = 0;
    for (size_t i = 0; i < self->npush_payloads; i++)
        cb_bytes_fini(&self->push_payloads[i]);
    self->npush_payloads = 0;
    self->push_batched_bytes = 0;
    anna_arena_reset(self->arena);
}

//  Visitor of the subscriptions' change set: the key's full value, encoded once, joins the
//  batch of each of its subscribers.
static void s_push_key(void *arg, const char *key, const uint32_t *ids, size_t n)
{
    anna_worker_t *self = arg;
    const lat_t *value = anna_store_get(self->store, key);
    if (!value)
        return;
    cb_bytes_t encoded = {0};
    int rc = wire_encode(value, &encoded);
    assert(rc == 0);
    (void)rc;
    size_t klen = strlen(key);
    if (self->push_batched_bytes > 0 &&
        self->push_batched_bytes + encoded.len + klen > S_PUSH_FLUSH_BYTES)
        s_push_flush(self);
    if (self->npush_payloads == self->push_payloads_cap) {
        self->push_payloads_cap = self->push_payloads_cap ? 2 * self->push_payloads_cap : 64;
        self->push_payloads = cb_realloc(self->push_payloads,
                                         self->push_payloads_cap * sizeof(cb_bytes_t));
    }
    cb_bytes_t *payload = &self->push_payloads[self->npush_payloads++];
    *payload = encoded;
    static const KeyTuple init = KEY_TUPLE__INIT;
    for (size_t i = 0; i < n; i++) {
        s_batch_t *batch = &self->push_batches[ids[i]];
        if (batch->len == 0) {
            //  At most one entry per subscriber id, and ids are below the id limit.
            self->push_active[self->npush_active++] = ids[i];
        }
        if (batch->len == batch->cap) {
            batch->cap = batch->cap ? 2 * batch->cap : 16;
            batch->tuples = cb_realloc(batch->tuples, batch->cap * sizeof *batch->tuples);
        }
        KeyTuple *tuple = &batch->tuples[batch->len++];
        *tuple = init;
        tuple->key = (char *)key;       //  the subscriptions' copy: kept until after the push
        tuple->lattice_type = (LatticeType)value->kind;
        tuple->payload.data = payload->data;
        tuple->payload.len = payload->len;
    }
    self->push_batched_bytes += payload->len + klen;
}

//  Pushes the value of every subscribed key changed since the last push, one message per
//  subscriber (or per S_PUSH_FLUSH_BYTES), then drops the subscribers found dead.
static void s_push(anna_worker_t *self)
{
    size_t limit = anna_subs_id_limit(self->subs);
    if (limit > self->push_batches_cap) {
        self->push_batches = cb_realloc(self->push_batches, limit * sizeof *self->push_batches);
        memset(self->push_batches + self->push_batches_cap, 0,
               (limit - self->push_batches_cap) * sizeof *self->push_batches);
        self->push_active = cb_realloc(self->push_active, limit * sizeof *self->push_active);
        self->push_batches_cap = limit;
    }
    anna_subs_drain(self->subs, s_push_key, self);
    s_push_flush(self);
    for (size_t i = 0; i < self->npush_dead; i++) {
        uint32_t id = self->push_dead[i];
        const char *address = anna_subs_address(self->subs, id);
        if (!address)
            continue;           //  listed twice (two flushes in one push), dropped already
        if (cb_log_ratelimit(&self->log_last))
            cb_warn("thread %" PRIu32 ": subscriber %.*s is not taking updates; dropping its "
                    "subscriptions",
                    self->thread, s_quote_len(address), address);
        self->stats.subs_dropped += anna_subs_drop(self->subs, id);
    }
    self->npush_dead = 0;
}

//  ---- the actor loop -----------------------------------------------------------------------

typedef enum { S_FROM_KEYS, S_FROM_RESP, S_FROM_GOSSIP, S_FROM_MEMBERS } s_from_t;

//  Receives and handles up to S_BATCH messages from sock.
static void s_drain(anna_worker_t *self, void *sock, s_from_t from)
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
        if (zmq_msg_more(&msg)) {
            //  Anna messages are one frame. The parts of a multi-frame message arrive
            //  together, so the rest is there to be discarded.
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
                ;
            self->stats.malformed++;
            s_log_peer(self, "multi-frame message", size);
        } else if (size == 0) {
            //  An empty frame decodes as a KeyRequest with no type, no tuples, no address:
            //  it can only be noise.
            self->stats.malformed++;
            s_log_peer(self, "empty frame", 0);
        } else if (from == S_FROM_GOSSIP)
            s_handle_gossip(self, zmq_msg_data(&msg), size);
        else if (from == S_FROM_MEMBERS)
            s_handle_members(self, zmq_msg_data(&msg), size);
        else
            s_handle_request(self, zmq_msg_data(&msg), size, from == S_FROM_RESP);
        zmq_msg_close(&msg);
        anna_arena_reset(self->arena);
    }
}

//  Sends (or, at shutdown, drops) the replies held back for the log's commit.
static void s_flush_deferred(anna_worker_t *self, bool send)
{
    for (size_t i = 0; i < self->ndeferred; i++) {
        s_deferred_t *d = &self->deferred[i];
        if (send)
            s_deliver(self, d->address, &d->msg, d->internal);
        else
            zmq_msg_close(&d->msg);
        cb_free(d->address);
    }
    self->ndeferred = 0;
}

//  The poll timeout: until the next thing due (gossip, log sync, a walk step, a delayed
//  message, anti-entropy), or -1 when nothing is, so that an idle server sleeps.
static long s_poll_timeout(anna_worker_t *self, int64_t now)
{
    int64_t due = -1;
#define S_DUE(t) do { int64_t t_ = (t) < now ? now : (t); if (due < 0 || t_ < due) due = t_; } while (0)
    if (anna_store_marked(self->store) > 0)
        S_DUE(self->next_gossip_ms);
    if (self->wal) {
        long ms = anna_wal_due_ms(self->wal, now);
        if (ms >= 0)
            S_DUE(now + ms);
    }
    //  A walk goes a step per millisecond at most: clients keep being served between steps.
    if (self->sweeping)
        S_DUE(now + 1);
    for (size_t i = 0; i < self->ndelayed; i++)
        S_DUE(self->delayed[i].due_ms);
    if (s_anti_entropy_on(self))
        S_DUE(self->next_anti_entropy_ms);
#undef S_DUE
    return due < 0 ? -1 : (long)(due - now);
}

static void *s_run(void *arg)
{
    anna_worker_t *self = arg;
    self->next_gossip_ms = cb_clock_mono_ms();
    self->next_anti_entropy_ms = self->next_gossip_ms + self->config.anti_entropy_ms;
    while (!self->terminated) {
        zmq_pollitem_t items[] = {{self->keys, 0, ZMQ_POLLIN, 0},
                                  {self->gossip, 0, ZMQ_POLLIN, 0},
                                  {self->members, 0, ZMQ_POLLIN, 0},
                                  {self->ikeys, 0, ZMQ_POLLIN, 0}};
        long timeout = s_poll_timeout(self, cb_clock_mono_ms());
        if (zmq_poll(items, self->ikeys ? 4 : 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ETERM)
                cb_error("thread %" PRIu32 ": zmq_poll: %s", self->thread, zmq_strerror(errno));
            break;
        }
        if (self->ikeys && (items[3].revents & ZMQ_POLLIN))
            s_drain(self, self->ikeys, S_FROM_RESP);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain(self, self->keys, S_FROM_KEYS);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain(self, self->gossip, S_FROM_GOSSIP);
        if (items[2].revents & ZMQ_POLLIN)
            s_drain(self, self->members, S_FROM_MEMBERS);
        //  Nothing is acknowledged before the log holds it (and, with --fsync always, the
        //  disk): one commit for the whole iteration, then its replies. Gossip merges are
        //  logged too.
        if (self->wal) {
            s_wal_check(self, anna_wal_tick(self->wal, cb_clock_mono_ms(), self->store));
            s_flush_deferred(self, true);
        }
        if (anna_subs_changed(self->subs) > 0)
            s_push(self);
        int64_t now = cb_clock_mono_ms();
        if (anna_store_marked(self->store) > 0 && now >= self->next_gossip_ms) {
            s_gossip(self);
            self->next_gossip_ms = now + self->config.gossip_ms;
        }
        if (self->ndelayed)
            s_release_delayed(self, now, false);
        if (s_anti_entropy_on(self) && now >= self->next_anti_entropy_ms) {
            //  Repairs what gossip lost (a peer's full queue, a restart, injected faults).
            if (!self->sweeping)
                s_sweep_start(self);
            self->next_anti_entropy_ms = now + self->config.anti_entropy_ms;
        }
        if (self->sweeping)
            s_sweep_step(self);
    }
    //  The context is shut down: close our sockets so that zmq_ctx_term can finish.
    s_flush_deferred(self, false);
    s_close_sockets(self);
    return NULL;
}

int anna_worker_start(anna_worker_t *self)
{
    assert(self && !self->started);
    int rc = pthread_create(&self->tid, NULL, s_run, self);
    if (rc)
        return -rc;
    self->started = true;
    return 0;
}

void anna_worker_join(anna_worker_t *self)
{
    if (self->started && !self->joined) {
        pthread_join(self->tid, NULL);
        self->joined = true;
    }
}

//  ---- self-test ----------------------------------------------------------------------------

void anna_worker_test(bool verbose)
{
    anna_worker_stats_t stats = {0};
    stats.requests = 7;
    stats.malformed = 3;
    stats.bytes = 12345678901ULL;
    char buf[1024];
    size_t len = anna_worker_stats_format(&stats, 2, true, buf, sizeof buf);
    assert(len == strlen(buf));
    assert(strncmp(buf, "{\"thread\":2,\"requests\":7,", 25) == 0);
    assert(strstr(buf, "\"malformed\":3,") && strstr(buf, "\"bytes\":12345678901}"));
    len = anna_worker_stats_format(&stats, 0, false, buf, sizeof buf);
    assert(strncmp(buf, "thread 0: requests=7 ", 21) == 0 && strstr(buf, " malformed=3 "));
    //  Truncation never overflows and keeps a terminated string.
    char small[16];
    len = anna_worker_stats_format(&stats, 0, true, small, sizeof small);
    assert(len == sizeof small - 1 && strlen(small) == len);
    if (verbose)
        printf("  %s\n", buf);

    //  The scanner agrees with protobuf-c on what it counts, and refuses broken framing.
    KeyTuple a = KEY_TUPLE__INIT, b = KEY_TUPLE__INIT;
    a.key = "k1";
    b.key = "";
    b.payload.data = (uint8_t *)"xyz";
    b.payload.len = 3;
    KeyTuple *tuples[3] = {&a, &b, &a};
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = REQUEST_TYPE__PUT;
    req.tuples = tuples;
    req.n_tuples = 3;
    req.response_address = "tcp://127.0.0.1:6800";
    req.request_id = "id-7";
    uint8_t packed[256];
    size_t size = key_request__get_packed_size(&req);
    assert(size <= sizeof packed);
    key_request__pack(&req, packed);
    wire_scan_t scan;
    assert(wire_scan_request(packed, size, &scan));
    assert(scan.tuples == 3);
    assert(scan.address_len == 20 && memcmp(scan.address, "tcp://127.0.0.1:6800", 20) == 0);
    assert(scan.id_len == 4 && memcmp(scan.id, "id-7", 4) == 0);
    for (size_t cut = 1; cut < size; cut++) {
        //  A prefix is either broken framing or ends on a field boundary.
        bool ok = wire_scan_request(packed, cut, &scan);
        KeyRequest *back = key_request__unpack(NULL, cut, packed);
        assert(ok == (back != NULL));
        if (back)
            key_request__free_unpacked(back, NULL);
    }
    assert(!wire_scan_request((const uint8_t *)"\xff\xff", 2, &scan));
    assert(!wire_scan_request((const uint8_t *)"\x0b", 1, &scan));     //  group
    assert(wire_scan_request((const uint8_t *)"", 0, &scan) && scan.tuples == 0);

    //  Internal response addresses: exactly the RESP threads' names, nothing else.
    assert(s_internal_index(ANNA_INPROC_RESP "0", 2) == 0);
    assert(s_internal_index(ANNA_INPROC_RESP "1", 2) == 1);
    assert(s_internal_index(ANNA_INPROC_RESP "12", 13) == 12);
    const char *junk[] = {ANNA_INPROC_RESP "2", ANNA_INPROC_RESP "", ANNA_INPROC_RESP "01",
                          ANNA_INPROC_RESP "1x", ANNA_INPROC_RESP "-1", ANNA_INPROC_RESP "99999",
                          ANNA_INPROC_RESP "1 ", "inproc://anna-resp", "inproc://anna",
                          ANNA_INPROC_KEYS "0", "inproc://", "tcp://127.0.0.1:6200", ""};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        assert(s_internal_index(junk[i], 2) < 0);
    assert(s_internal_index(ANNA_INPROC_RESP "0", 0) < 0);

    //  The hand encoders write exactly what protobuf-c and wire_encode write.
    static uint8_t big[300];
    memset(big, 'v', sizeof big);
    const uint64_t stamps[] = {0, 1, 127, 128, UINT64_MAX};
    const uint32_t writers[] = {0, 1, 300, UINT32_MAX};
    const size_t lens[] = {0, 1, 127, 128, sizeof big};
    for (size_t si = 0; si < 5; si++)
        for (size_t wi = 0; wi < 4; wi++)
            for (size_t li = 0; li < 5; li++) {
                lat_t v;
                lat_init(&v, LAT_LWW);
                lat_lww_assign(&v, stamps[si], writers[wi], big, lens[li]);
                cb_bytes_t want = {0};
                assert(wire_encode(&v, &want) == 0);
                uint8_t got[400];
                assert(s_lww_size(&v.u.lww) == want.len);
                s_lww_write(&v.u.lww, got);
                assert(want.len == 0 || memcmp(got, want.data, want.len) == 0);
                cb_bytes_fini(&want);
                lat_fini(&v);
            }
    KeyTuple t[6];
    KeyTuple *tp[6];
    static const KeyTuple tinit = KEY_TUPLE__INIT;
    for (int i = 0; i < 6; i++) {
        t[i] = tinit;
        tp[i] = &t[i];
    }
    t[0].key = "k";
    t[0].lattice_type = LATTICE_TYPE__LWW;
    t[0].payload.data = big;
    t[0].payload.len = 200;
    t[1].key = "absent";
    t[1].error = ANNA_ERROR__KEY_DNE;
    t[1].error_message = "";
    t[1].invalidate = true;
    t[2].key = "";
    t[2].lattice_type = (LatticeType)-3;        //  echoed from a peer's PUT
    t[2].error = ANNA_ERROR__BAD_REQUEST;
    t[2].error_message = "unknown lattice type -3";
    t[3].address_cache_size = 1000;
    t[3].previous_payload.data = big;
    t[3].previous_payload.len = 3;
    t[3].delta = t[3].identical = t[3].subscribe = t[3].unsubscribe = true;
    t[4].key = (char *)"x";
    t[4].payload.data = big;
    t[4].payload.len = sizeof big;
    KeyResponse resps[4];
    static const KeyResponse rinit = KEY_RESPONSE__INIT;
    for (int i = 0; i < 4; i++)
        resps[i] = rinit;
    resps[0].type = REQUEST_TYPE__GET;
    resps[0].tuples = tp;
    resps[0].n_tuples = 6;
    resps[0].response_id = "42";
    resps[1].type = REQUEST_TYPE__PUT;
    resps[1].response_id = "";
    resps[1].error = ANNA_ERROR__BAD_REQUEST;
    resps[1].error_message = "too many tuples";
    resps[2].type = (RequestType)7;
    resps[2].tuples = tp + 1;
    resps[2].n_tuples = 2;
    for (int i = 0; i < 4; i++) {
        size_t sizes[6];
        zmq_msg_t msg;
        s_response_pack(&resps[i], sizes, &msg);
        size_t want = key_response__get_packed_size(&resps[i]);
        uint8_t packed_want[2048];
        assert(want <= sizeof packed_want && zmq_msg_size(&msg) == want);
        key_response__pack(&resps[i], packed_want);
        assert(memcmp(zmq_msg_data(&msg), packed_want, want) == 0);
        zmq_msg_close(&msg);
    }
}
