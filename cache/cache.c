//  cache/cache.c: the cache actor. One loop polls five sockets (executors' routing and data
//  sockets, the KVS's pushes, the KVS workers' answers, the KVS routing tier's answers) with
//  a timeout that is the next deadline; it drains a batch from each ready socket, then does
//  the deferred work of the iteration (Redis beforeSleep style): send the batched address
//  lookups, fail what ran out of time, evict down to the byte bound, report.
//
//  State of a request that cannot be answered from memory:
//  - a call (s_call_t) holds the executor's request until every tuple has its answer; its
//    tuples wait on operations (s_op_t), each one request to the KVS with its own id;
//  - a fetch is keyed by key as well, so concurrent misses on a key wait on one fetch;
//  - an operation whose key has no known KVS worker waits in `waits` (by key) for a batched
//    KeyAddressRequest, itself an operation;
//  - operations sit on one list in deadline order (every timeout is the same, so creation
//    order is deadline order) and fail with TIMEOUT when their deadline passes.
//  Operations are found again by id, never by pointer, from anything that may outlive them
//  (route waits, answers of the KVS), so a late answer can only miss.
//
//  Ordering rule that keeps subscriptions right: for one key, subscribe (fetch), write and
//  unsubscribe requests all go to the same KVS worker through one PUSH socket, in the order
//  the cache decides them, and no unsubscribe is sent while a fetch of the key is in
//  flight. Pushes can overtake the answer of a fetch (different sockets), so the fetch
//  keeps what was pushed meanwhile and merges it into the answer.
//  SPDX-License-Identifier: Apache-2.0
#include "cache/cache.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "anna.pb-c.h"
#include "anna/arena.h"
#include "anna/pushcache.h"
#include "cache/cut.h"
#include "cache/map.h"
#include "cache/store.h"
#include "cloudburst.pb-c.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/counters.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/scan.h"
#include "proto/wire.h"

//  Messages taken from one socket before looking at the others.
#define S_BATCH 256
//  Most tuples in one request from an executor (BAD_REQUEST beyond): unpacking costs memory
//  per tuple, far more than the 2 bytes a tuple may take on the wire.
#define S_MAX_TUPLES (1 << 16)
//  Slack above max-value-bytes for the rest of a message.
#define S_MSG_SLACK (1 << 20)
//  Largest address lookup from an executor.
#define S_MAX_LOOKUP_MSG (1 << 20)
//  Same key bound as anna-server.
#define S_MAX_KEY_BYTES 65536
//  Tuples waiting for the KVS at most; beyond, executors are told at once (TIMEOUT,
//  "overloaded") instead of the cache growing without bound while the KVS is slow.
#define S_MAX_WAITING (1 << 20)
//  Keys in one KeyAddressRequest to the KVS routing tier.
#define S_ROUTE_BATCH 1024
//  Keys in the address cache; it is emptied when full (a lookup refills what is used).
#define S_MAX_ADDRS (1 << 20)
//  Distinct KVS worker addresses (nodes x threads).
#define S_MAX_WORKERS 4096
//  Keys listed in one status report.
#define S_REPORT_KEYS 10000
//  Longest key quoted in an error message.
#define S_QUOTE_MAX 128
//  Issue 4: snapshots of repeatable-read sessions kept at most, and for how long.
#define S_MAX_SNAPS (1 << 20)
#define S_SNAP_TTL_MS 120000
#define S_RESERVED_PREFIX "ANNA_METADATA|"
#define S_STATS_KEY "ANNA_METADATA|stats"

typedef struct s_call s_call_t;
typedef struct s_op s_op_t;

//  One answer of a call, owned.
typedef struct {
    char *key;
    int error;                  //  AnnaError
    char *message;              //  NULL when none
    int kind;                   //  lattice type of payload
    cb_bytes_t payload;
    bool waiting;               //  not answered yet
} s_result_t;

struct s_call {
    s_call_t *prev, *next;      //  the list of calls in progress
    char *session;              //  owned: REPEATABLE_READ session id of a GET, or NULL
    char *response_address;     //  owned
    char *request_id;           //  owned
    int type;                   //  RequestType of the request
    size_t outstanding;         //  answers still missing, plus one while being set up
    size_t n;
    s_result_t results[];
};

//  A tuple of a call waiting for an operation. call NULL: no one wants the answer (a PUT
//  without response address).
typedef struct {
    s_call_t *call;
    uint32_t index;
} s_waiter_t;

typedef enum { S_ROUTE, S_FETCH, S_PUT } s_kind_t;

struct s_op {
    s_kind_t kind;
    char id[32];                //  request id, the key of `ops`
    int64_t deadline_ms;
    s_op_t *prev, *next;        //  the deadline list
    char *key;                  //  FETCH, PUT: owned
    int32_t worker;             //  FETCH, PUT: KVS worker, -1 until routed
    bool sent;
    bool retried;               //  resent once after WRONG_THREAD
    //  FETCH
    s_waiter_t *waiters;
    size_t nwaiters, waiters_cap;
    bool subscribe;             //  subscribe and cache (false: reserved key, refused)
    bool keyed;                 //  the fetch of its key in `fetches`
    lat_t pushed;               //  updates pushed while in flight; LAT_NONE if none
    //  PUT
    s_waiter_t waiter;
    int lattice;                //  lattice type
    cb_bytes_t payload;         //  as the executor sent it
    lat_t value;                //  decoded, merged into the cached copy once the KVS acked
    bool pinned;                //  the cached entry of key is pinned for us
    //  ROUTE
    char **keys;                //  owned
    size_t nkeys;
};

typedef struct {
    char *key;                  //  owned; the key of `waits`
    char (*ids)[32];            //  operations waiting for its address
    size_t n, cap;
} s_wait_t;

typedef struct {
    int32_t worker;
    char key[];                 //  the key of `addrs`
} s_addr_t;

//  Issue 4: the version a repeatable-read session's first read of a key got here. Every
//  later read of the key in the session gets the same answer.
typedef struct s_snap s_snap_t;
struct s_snap {
    s_snap_t *prev, *next;      //  creation order (= expiry order: one TTL)
    int64_t expire_ms;
    size_t sid_len;             //  the session id is mkey[0..sid_len)
    int error;                  //  AnnaError: NONE or KEY_DNE
    int kind;
    cb_bytes_t payload;
    char mkey[];                //  session id, 0x1f, key: the key of `snaps`
};

typedef struct {
    int32_t worker;
    char *key;                  //  owned
} s_unsub_t;

struct _cache_t {
    cache_config_t config;      //  copy
    void *ctx;
    void *routing;              //  PULL: KeyAddressRequests from executors
    void *data;                 //  PULL: KeyRequests from executors
    void *updates;              //  PULL: pushes from the KVS
    void *answers;              //  PULL: KeyResponses from KVS workers
    void *lookups;              //  PULL: KeyAddressResponses from the KVS routing tier
    void *kvs_routing;          //  PUSH to the KVS routing tier
    void *scheduler;            //  PUSH for status reports; NULL without one
    anna_pushcache_t *clients;  //  PUSH to executors' response addresses
    anna_pushcache_t *kvs;      //  PUSH to KVS workers
    char routing_addr[CACHE_ADDR_MAX];
    char data_addr[CACHE_ADDR_MAX];
    char updates_addr[CACHE_ADDR_MAX];
    char answers_addr[CACHE_ADDR_MAX];
    char lookups_addr[CACHE_ADDR_MAX];
    cache_store_t *store;
    cache_map_t *ops;           //  id -> s_op_t
    s_op_t *ops_head, *ops_tail;    //  by deadline
    cache_map_t *fetches;       //  key -> s_op_t (the subscribing fetch of the key)
    cache_map_t *waits;         //  key -> s_wait_t
    char **route_batch;         //  keys of new waits, looked up at the end of the iteration
    size_t nroute_batch, route_batch_cap;
    cache_map_t *addrs;         //  key -> s_addr_t
    cache_map_t *worker_ids;    //  address -> index + 1 (as a pointer)
    char *workers[S_MAX_WORKERS];   //  owned addresses
    size_t nworkers;
    s_unsub_t *unsubs;          //  unsubscribes to send (s_unsub_flush)
    size_t nunsubs, unsubs_cap;
    cb_bytes_t *owned;          //  payloads referenced by the reply being built
    size_t nowned, owned_cap;
    uint64_t next_id;
    size_t waiting;             //  tuples waiting for the KVS
    s_call_t *calls;            //  calls in progress (freed by destroy if still there)
    cache_map_t *snaps;         //  issue 4: "session\x1fkey" -> s_snap_t
    cache_map_t *held;          //  issue 4: key -> s_held_t, versions outside the causal cut
    int64_t next_held_ms;       //  when held versions' dependencies are asked for again
    s_snap_t *snaps_head, *snaps_tail;
    anna_arena_t *arena;        //  scratch of the message being handled
    ProtobufCAllocator pb_alloc;
    int64_t next_report_ms;
    long long log_last;
    cache_stats_t stats;
};

//  Issue 4: versions of a multi-key causal value this cache holds back because some of
//  their dependencies are not visible here yet (see cache/cut.h).
typedef struct {
    char *key;                  //  owned; the key of `held`
    lat_t value;                //  LAT_MULTI_CAUSAL: the versions held back, joined
} s_held_t;

static void s_held_free(void *p)
{
    s_held_t *h = p;
    cb_free(h->key);
    lat_fini(&h->value);
    cb_free(h);
}

//  ---- counters -----------------------------------------------------------------------------

#define S_COUNTER(field) CB_COUNTER(cache_stats_t, field)
static const cb_counter_t s_counters[] = {
    S_COUNTER(requests),     S_COUNTER(lookups),         S_COUNTER(gets),
    S_COUNTER(puts),         S_COUNTER(hits),            S_COUNTER(negative_hits),
    S_COUNTER(misses),       S_COUNTER(coalesced),       S_COUNTER(kvs_fetches),
    S_COUNTER(kvs_puts),     S_COUNTER(kvs_lookups),     S_COUNTER(kvs_errors),
    S_COUNTER(kvs_timeouts), S_COUNTER(kvs_late),        S_COUNTER(updates),
    S_COUNTER(updates_applied), S_COUNTER(unsubscribes), S_COUNTER(evictions),
    S_COUNTER(overloaded),   S_COUNTER(malformed),       S_COUNTER(bad_request),
    S_COUNTER(replies),      S_COUNTER(replies_dropped), S_COUNTER(reports),
    S_COUNTER(causal_held),  S_COUNTER(causal_released), S_COUNTER(causal_superseded),
    S_COUNTER(causal_dropped),
    S_COUNTER(keys),         S_COUNTER(bytes),
};

size_t cache_stats_format(const cache_stats_t *stats, const char *node, bool json, char *buf,
                          size_t len)
{
    assert(node);
    char head[160];
    snprintf(head, sizeof head, json ? "{\"node\":\"%.120s\"" : "%.120s:", node);
    return cb_counters_format(s_counters, sizeof s_counters / sizeof s_counters[0], stats, head,
                              json, buf, len);
}

void cache_stats(const cache_t *self, cache_stats_t *out)
{
    *out = self->stats;
    out->keys = cache_store_count(self->store);
    out->bytes = cache_store_bytes(self->store);
}

//  ---- helpers ------------------------------------------------------------------------------

static int s_quote_len(const char *key)
{
    size_t len = strnlen(key, S_QUOTE_MAX + 1);
    return len > S_QUOTE_MAX ? S_QUOTE_MAX : (int)len;
}

static void s_log_peer(cache_t *self, const char *what, size_t size)
{
    if (cb_log_ratelimit(&self->log_last))
        cb_warn("dropped %s (%zu bytes; %" PRIu64 " malformed so far)", what, size,
                self->stats.malformed);
}

//  Keeps an encoded payload alive until the reply being built is sent.
static cb_bytes_t *s_own(cache_t *self)
{
    if (self->nowned == self->owned_cap) {
        self->owned_cap = self->owned_cap ? 2 * self->owned_cap : 8;
        self->owned = cb_realloc(self->owned, self->owned_cap * sizeof *self->owned);
    }
    cb_bytes_t *b = &self->owned[self->nowned++];
    b->data = NULL;
    b->len = 0;
    return b;
}

static void s_own_release(cache_t *self)
{
    for (size_t i = 0; i < self->nowned; i++)
        cb_bytes_fini(&self->owned[i]);
    self->nowned = 0;
}

//  Binds a PULL socket; writes the bound endpoint (ephemeral port resolved) to resolved.
static void *s_bind_pull(cache_t *self, const char *address, int64_t maxmsg, char *resolved,
                         char *err, size_t errlen)
{
    void *sock = zmq_socket(self->ctx, ZMQ_PULL);
    if (!sock) {
        snprintf(err, errlen, "cannot create socket for %s: %s", address, zmq_strerror(errno));
        return NULL;
    }
    //  A peer sending more is disconnected by ZeroMQ before the message is allocated.
    int linger = 0, hwm = 100000;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(sock, address) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", address, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    size_t len = CACHE_ADDR_MAX;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, resolved, &len) != 0)
        snprintf(resolved, CACHE_ADDR_MAX, "%s", address);
    //  Bound to every interface: peers on this machine reach it on loopback.
    if (!strncmp(resolved, "tcp://0.0.0.0:", 14)) {
        char port[16];
        snprintf(port, sizeof port, "%s", resolved + 14);
        snprintf(resolved, CACHE_ADDR_MAX, "tcp://127.0.0.1:%s", port);
    }
    return sock;
}

//  The IP our answer sockets bind to: the updates address's, when it names one, so that a
//  KVS that can push to us can answer us too.
static void s_answer_endpoint(const cache_config_t *config, char *out, size_t len)
{
    const char *u = config->updates;
    const char *colon = strrchr(u, ':');
    if (!strncmp(u, "tcp://", 6) && colon && colon > u + 6 && (size_t)(colon - u) < len - 3) {
        snprintf(out, len, "%.*s:*", (int)(colon - u), u);
        if (strncmp(out, "tcp://0.0.0.0:", 14) != 0)
            return;
    }
    snprintf(out, len, "tcp://127.0.0.1:*");
}

//  ---- set-up -------------------------------------------------------------------------------

cache_t *cache_new(const cache_config_t *config, char *err, size_t errlen)
{
    assert(config);
    cache_t *self = cb_calloc(1, sizeof *self);
    self->config = *config;
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        snprintf(err, errlen, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        cb_free(self);
        return NULL;
    }
    zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 1);
    self->store = cache_store_new((size_t)config->max_bytes);
    self->ops = cache_map_new();
    self->fetches = cache_map_new();
    self->snaps = cache_map_new();
    self->held = cache_map_new();
    self->waits = cache_map_new();
    self->addrs = cache_map_new();
    self->worker_ids = cache_map_new();
    self->arena = anna_arena_new(64 * 1024);
    self->pb_alloc = anna_arena_protobuf(self->arena);
    //  Executors' replies: few distinct addresses (the executors of the node). KVS
    //  workers: enough sockets for every worker of a large cluster, so that one key's
    //  requests always share a connection (their order is what keeps subscriptions right).
    self->clients = anna_pushcache_new(self->ctx, 256, 10000, 100);
    self->kvs = anna_pushcache_new(self->ctx, 1024, 10000, 1000);
    int64_t maxmsg = config->max_value_bytes + S_MSG_SLACK;
    char answers[CACHE_ADDR_MAX];
    s_answer_endpoint(config, answers, sizeof answers);
    self->routing = s_bind_pull(self, config->routing, S_MAX_LOOKUP_MSG, self->routing_addr,
                                err, errlen);
    if (self->routing)
        self->data = s_bind_pull(self, config->data, maxmsg, self->data_addr, err, errlen);
    if (self->data)
        self->updates = s_bind_pull(self, config->updates, maxmsg, self->updates_addr, err,
                                    errlen);
    if (self->updates)
        self->answers = s_bind_pull(self, answers, maxmsg, self->answers_addr, err, errlen);
    if (self->answers)
        self->lookups = s_bind_pull(self, answers, maxmsg, self->lookups_addr, err, errlen);
    if (!self->lookups) {
        cache_destroy(&self);
        return NULL;
    }
    self->kvs_routing = zmq_socket(self->ctx, ZMQ_PUSH);
    int linger = 0, hwm = 10000;
    zmq_setsockopt(self->kvs_routing, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->kvs_routing, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(self->kvs_routing, config->kvs) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", config->kvs, zmq_strerror(errno));
        cache_destroy(&self);
        return NULL;
    }
    if (config->scheduler[0]) {
        //  Reports replace each other: a few queued are enough while the scheduler is away.
        self->scheduler = zmq_socket(self->ctx, ZMQ_PUSH);
        int report_hwm = 4;
        zmq_setsockopt(self->scheduler, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(self->scheduler, ZMQ_SNDHWM, &report_hwm, sizeof report_hwm);
        if (zmq_connect(self->scheduler, config->scheduler) != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", config->scheduler,
                     zmq_strerror(errno));
            cache_destroy(&self);
            return NULL;
        }
    }
    return self;
}

static void s_op_destroy(s_op_t *op);
static void s_call_free(cache_t *self, s_call_t *call);

static void s_free_value(void *value)
{
    cb_free(value);
}

static void s_free_wait(void *value)
{
    s_wait_t *wait = value;
    cb_free(wait->key);
    cb_free(wait->ids);
    cb_free(wait);
}

void cache_destroy(cache_t **self_p)
{
    assert(self_p);
    cache_t *self = *self_p;
    if (!self)
        return;
    void *socks[] = {self->routing, self->data,        self->updates,  self->answers,
                     self->lookups, self->kvs_routing, self->scheduler};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
        if (socks[i])
            zmq_close(socks[i]);
    anna_pushcache_destroy(&self->clients);
    anna_pushcache_destroy(&self->kvs);
    for (s_op_t *op = self->ops_head, *next; op; op = next) {
        next = op->next;
        s_op_destroy(op);
    }
    while (self->calls)
        s_call_free(self, self->calls);
    while (self->snaps_head) {
        s_snap_t *sn = self->snaps_head;
        self->snaps_head = sn->next;
        cb_bytes_fini(&sn->payload);
        cb_free(sn);
    }
    cache_map_destroy(&self->snaps);
    if (self->held)
        cache_map_clear(self->held, s_held_free);
    cache_map_destroy(&self->held);
    cache_map_destroy(&self->ops);
    cache_map_destroy(&self->fetches);
    if (self->waits)
        cache_map_clear(self->waits, s_free_wait);
    cache_map_destroy(&self->waits);
    if (self->addrs)
        cache_map_clear(self->addrs, s_free_value);
    cache_map_destroy(&self->addrs);
    cache_map_destroy(&self->worker_ids);
    for (size_t i = 0; i < self->nworkers; i++)
        cb_free(self->workers[i]);
    for (size_t i = 0; i < self->nunsubs; i++)
        cb_free(self->unsubs[i].key);
    cb_free(self->unsubs);
    cb_free(self->route_batch);
    s_own_release(self);
    cb_free(self->owned);
    cache_store_destroy(&self->store);
    anna_arena_destroy(&self->arena);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    cb_free(self);
    *self_p = NULL;
}

const char *cache_routing_address(const cache_t *self)
{
    return self->routing_addr;
}

const char *cache_data_address(const cache_t *self)
{
    return self->data_addr;
}

const char *cache_updates_address(const cache_t *self)
{
    return self->updates_addr;
}

//  ---- replies to executors -----------------------------------------------------------------

static void s_send_client(cache_t *self, const char *address, zmq_msg_t *msg)
{
    int rc = anna_pushcache_send(self->clients, address, msg);
    if (rc == 0) {
        self->stats.replies++;
        return;
    }
    self->stats.replies_dropped++;
    if (rc != -EAGAIN && rc != -ETERM && cb_log_ratelimit(&self->log_last))
        cb_warn("cannot reply to response address '%.*s': %s", s_quote_len(address), address,
                rc == -EINVAL ? "not tcp://IP:port or ipc://path" : zmq_strerror(-rc));
}

static void s_send_response(cache_t *self, const char *address, const KeyResponse *resp)
{
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, key_response__get_packed_size(resp));
    key_response__pack(resp, zmq_msg_data(&msg));
    s_send_client(self, address, &msg);
}

static void s_call_free(cache_t *self, s_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        self->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    for (size_t i = 0; i < call->n; i++) {
        cb_free(call->results[i].key);
        cb_free(call->results[i].message);
        cb_bytes_fini(&call->results[i].payload);
    }
    cb_free(call->response_address);
    cb_free(call->request_id);
    cb_free(call->session);
    cb_free(call);
}

//  ---- repeatable-read snapshots (issue 4) --------------------------------------------------

static void s_snap_unlink(cache_t *self, s_snap_t *sn)
{
    if (sn->prev)
        sn->prev->next = sn->next;
    else
        self->snaps_head = sn->next;
    if (sn->next)
        sn->next->prev = sn->prev;
    else
        self->snaps_tail = sn->prev;
    cache_map_remove(self->snaps, sn->mkey);
    cb_bytes_fini(&sn->payload);
    cb_free(sn);
}

static void s_snap_expire(cache_t *self, int64_t now)
{
    while (self->snaps_head && self->snaps_head->expire_ms <= now)
        s_snap_unlink(self, self->snaps_head);
}

//  The session is over (its sink ran): its snapshots go.
static void s_snap_drop(cache_t *self, const char *sid)
{
    size_t len = strlen(sid);
    for (s_snap_t *sn = self->snaps_head, *next; sn; sn = next) {
        next = sn->next;
        if (sn->sid_len == len && !memcmp(sn->mkey, sid, len))
            s_snap_unlink(self, sn);
    }
}

//  A GET answer of a session: the session's snapshot of key if it has one (the answer is
//  replaced by it), else the answer becomes the snapshot. Errors other than KEY_DNE are
//  passed through and not kept. *error, *kind, *data, *len are in/out; *data then borrows
//  the snapshot (valid until the end of the loop iteration).
static void s_snap_apply(cache_t *self, const char *sid, const char *key, int *error,
                         const char **message, int *kind, const uint8_t **data, size_t *len)
{
    if (*error != ANNA_ERROR__NO_ERROR && *error != ANNA_ERROR__KEY_DNE)
        return;
    size_t sl = strlen(sid), kl = strlen(key);
    char *mkey = anna_arena_alloc(self->arena, sl + kl + 2);
    memcpy(mkey, sid, sl);
    mkey[sl] = 0x1f;
    memcpy(mkey + sl + 1, key, kl + 1);
    s_snap_t *sn = cache_map_get(self->snaps, mkey);
    if (!sn) {
        if (cache_map_count(self->snaps) >= S_MAX_SNAPS) {
            //  Never an unrepeatable read: the read fails instead.
            *error = ANNA_ERROR__TIMEOUT;
            *message = "repeatable read: the cache holds too many session snapshots";
            *kind = 0;
            *data = NULL;
            *len = 0;
            return;
        }
        sn = cb_calloc(1, sizeof *sn + sl + kl + 2);
        memcpy(sn->mkey, mkey, sl + kl + 2);
        sn->sid_len = sl;
        sn->error = *error;
        sn->kind = *kind;
        if (*error == ANNA_ERROR__NO_ERROR && *len)
            cb_bytes_set(&sn->payload, *data, *len);
        sn->expire_ms = cb_clock_mono_ms() + S_SNAP_TTL_MS;
        sn->prev = self->snaps_tail;
        if (self->snaps_tail)
            self->snaps_tail->next = sn;
        else
            self->snaps_head = sn;
        self->snaps_tail = sn;
        cache_map_put(self->snaps, sn->mkey, sn);
    }
    *error = sn->error;
    *message = "";
    *kind = sn->kind;
    *data = sn->payload.data;
    *len = sn->payload.len;
}

//  Sends the call's answer (if anyone asked) and frees it.
static void s_call_finish(cache_t *self, s_call_t *call)
{
    if (call->session) {
        for (size_t i = 0; i < call->n; i++) {
            s_result_t *r = &call->results[i];
            int error = r->error, kind = r->kind;
            const char *message = r->message ? r->message : "";
            const uint8_t *data = r->payload.data;
            size_t len = r->payload.len;
            s_snap_apply(self, call->session, r->key, &error, &message, &kind, &data, &len);
            if (data != r->payload.data || len != r->payload.len) {
                cb_bytes_t copy = {0};
                if (len)
                    cb_bytes_set(&copy, data, len);
                cb_bytes_fini(&r->payload);
                r->payload = copy;
            }
            if (message != (r->message ? r->message : "")) {
                cb_free(r->message);
                r->message = message[0] ? cb_strdup(message) : NULL;
            }
            r->error = error;
            r->kind = kind;
        }
    }
    if (call->response_address[0]) {
        KeyTuple *tuples = anna_arena_alloc(self->arena, call->n * sizeof *tuples);
        KeyTuple **ptrs = anna_arena_alloc(self->arena, call->n * sizeof *ptrs);
        static const KeyTuple init = KEY_TUPLE__INIT;
        for (size_t i = 0; i < call->n; i++) {
            const s_result_t *r = &call->results[i];
            tuples[i] = init;
            tuples[i].key = r->key;
            tuples[i].error = (AnnaError)r->error;
            tuples[i].error_message = r->message ? r->message : "";
            tuples[i].lattice_type = (LatticeType)r->kind;
            tuples[i].payload.data = r->payload.data;
            tuples[i].payload.len = r->payload.len;
            ptrs[i] = &tuples[i];
        }
        KeyResponse resp = KEY_RESPONSE__INIT;
        resp.type = (RequestType)call->type;
        resp.tuples = ptrs;
        resp.n_tuples = call->n;
        resp.response_id = call->request_id;
        s_send_response(self, call->response_address, &resp);
    }
    s_call_free(self, call);
}

//  One answer of a waiting tuple. payload (borrowed) is copied.
static void s_resolve(cache_t *self, const s_waiter_t *w, int error, const char *message,
                      int kind, const cb_bytes_t *payload)
{
    self->waiting--;
    s_call_t *call = w->call;
    if (!call)
        return;
    s_result_t *r = &call->results[w->index];
    assert(r->waiting);
    r->waiting = false;
    r->error = error;
    r->message = message && message[0] ? cb_strdup(message) : NULL;
    r->kind = kind;
    if (payload && payload->len)
        cb_bytes_set(&r->payload, payload->data, payload->len);
    if (--call->outstanding == 0)
        s_call_finish(self, call);
}

//  ---- operations ---------------------------------------------------------------------------

static s_op_t *s_op_new(cache_t *self, s_kind_t kind, const char *key)
{
    s_op_t *op = cb_calloc(1, sizeof *op);
    op->kind = kind;
    snprintf(op->id, sizeof op->id, "c%" PRIu64, ++self->next_id);
    op->deadline_ms = cb_clock_mono_ms() + self->config.timeout_ms;
    op->key = key ? cb_strdup(key) : NULL;
    op->worker = -1;
    cache_map_put(self->ops, op->id, op);
    op->prev = self->ops_tail;
    if (self->ops_tail)
        self->ops_tail->next = op;
    else
        self->ops_head = op;
    self->ops_tail = op;
    return op;
}

static void s_op_destroy(s_op_t *op)
{
    cb_free(op->key);
    cb_free(op->waiters);
    lat_fini(&op->pushed);
    lat_fini(&op->value);
    cb_bytes_fini(&op->payload);
    for (size_t i = 0; i < op->nkeys; i++)
        cb_free(op->keys[i]);
    cb_free(op->keys);
    cb_free(op);
}

//  Unlinks op from every index and frees it.
static void s_op_free(cache_t *self, s_op_t *op)
{
    cache_map_remove(self->ops, op->id);
    if (op->keyed)
        cache_map_remove(self->fetches, op->key);
    if (op->pinned)
        cache_store_pin(self->store, op->key, -1);
    if (op->prev)
        op->prev->next = op->next;
    else
        self->ops_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        self->ops_tail = op->prev;
    s_op_destroy(op);
}

//  Answers every waiter of op with an error, then frees op.
static void s_op_fail(cache_t *self, s_op_t *op, int error, const char *message)
{
    for (size_t i = 0; i < op->nwaiters; i++)
        s_resolve(self, &op->waiters[i], error, message, 0, NULL);
    if (op->kind == S_PUT)
        s_resolve(self, &op->waiter, error, message, op->lattice, NULL);
    s_op_free(self, op);
}

static const char *s_worker_address(const cache_t *self, int32_t worker)
{
    return worker >= 0 ? self->workers[worker] : self->config.kvs;
}

//  Index of a KVS worker address (interned), -1 when there are too many.
static int32_t s_worker_intern(cache_t *self, const char *address)
{
    uintptr_t id = (uintptr_t)cache_map_get(self->worker_ids, address);
    if (id)
        return (int32_t)(id - 1);
    if (self->nworkers == S_MAX_WORKERS)
        return -1;
    self->workers[self->nworkers] = cb_strdup(address);
    cache_map_put(self->worker_ids, self->workers[self->nworkers],
                  (void *)(uintptr_t)(self->nworkers + 1));
    return (int32_t)self->nworkers++;
}

static int32_t s_addr_get(cache_t *self, const char *key)
{
    const s_addr_t *a = cache_map_get(self->addrs, key);
    return a ? a->worker : -1;
}

static void s_addr_put(cache_t *self, const char *key, int32_t worker)
{
    s_addr_t *a = cache_map_get(self->addrs, key);
    if (a) {
        a->worker = worker;
        return;
    }
    if (cache_map_count(self->addrs) >= S_MAX_ADDRS)
        cache_map_clear(self->addrs, s_free_value);
    size_t len = strlen(key);
    a = cb_malloc(sizeof *a + len + 1);
    a->worker = worker;
    memcpy(a->key, key, len + 1);
    cache_map_put(self->addrs, a->key, a);
}

static void s_addr_drop(cache_t *self, const char *key)
{
    cb_free(cache_map_remove(self->addrs, key));
}

//  Sends op's request to its worker. On a refused send the op fails at once.
static void s_op_send(cache_t *self, s_op_t *op)
{
    assert(op->worker >= 0 && op->kind != S_ROUTE);
    KeyTuple tuple = KEY_TUPLE__INIT;
    KeyTuple *ptrs[1] = {&tuple};
    tuple.key = op->key;
    KeyRequest req = KEY_REQUEST__INIT;
    req.tuples = ptrs;
    req.n_tuples = 1;
    req.response_address = self->answers_addr;
    req.request_id = op->id;
    if (op->kind == S_FETCH) {
        req.type = REQUEST_TYPE__GET;
        tuple.subscribe = op->subscribe;
        if (op->subscribe)
            req.update_address = self->updates_addr;
    } else {
        req.type = REQUEST_TYPE__PUT;
        tuple.lattice_type = (LatticeType)op->lattice;
        tuple.payload.data = op->payload.data;
        tuple.payload.len = op->payload.len;
    }
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, key_request__get_packed_size(&req));
    key_request__pack(&req, zmq_msg_data(&msg));
    const char *address = self->workers[op->worker];
    int rc = anna_pushcache_send(self->kvs, address, &msg);
    if (rc != 0) {
        self->stats.kvs_timeouts++;
        char why[400];
        snprintf(why, sizeof why, "key %.*s: the KVS worker %s is not taking requests (%s)",
                 s_quote_len(op->key), op->key, address, cb_strerror(rc));
        s_op_fail(self, op, ANNA_ERROR__TIMEOUT, why);
        return;
    }
    op->sent = true;
    if (op->kind == S_FETCH)
        self->stats.kvs_fetches++;
    else
        self->stats.kvs_puts++;
}

//  Sends op, or has it wait for its key's address.
static void s_op_start(cache_t *self, s_op_t *op)
{
    op->worker = s_addr_get(self, op->key);
    op->sent = false;
    if (op->worker >= 0) {
        s_op_send(self, op);
        return;
    }
    s_wait_t *wait = cache_map_get(self->waits, op->key);
    if (!wait) {
        wait = cb_calloc(1, sizeof *wait);
        wait->key = cb_strdup(op->key);
        cache_map_put(self->waits, wait->key, wait);
        if (self->nroute_batch == self->route_batch_cap) {
            self->route_batch_cap = self->route_batch_cap ? 2 * self->route_batch_cap : 64;
            self->route_batch = cb_realloc(self->route_batch,
                                           self->route_batch_cap * sizeof *self->route_batch);
        }
        self->route_batch[self->nroute_batch++] = wait->key;
    }
    if (wait->n == wait->cap) {
        wait->cap = wait->cap ? 2 * wait->cap : 4;
        wait->ids = cb_realloc(wait->ids, wait->cap * sizeof *wait->ids);
    }
    memcpy(wait->ids[wait->n++], op->id, sizeof op->id);
}

//  The end of a route wait: sends each op still waiting to worker, or fails it.
static void s_wait_finish(cache_t *self, const char *key, int32_t worker, int error,
                          const char *message)
{
    s_wait_t *wait = cache_map_remove(self->waits, key);
    if (!wait)
        return;
    if (worker >= 0)
        s_addr_put(self, key, worker);
    for (size_t i = 0; i < wait->n; i++) {
        s_op_t *op = cache_map_get(self->ops, wait->ids[i]);
        if (!op || op->sent)
            continue;
        if (worker >= 0) {
            op->worker = worker;
            s_op_send(self, op);
        } else
            s_op_fail(self, op, error, message);
    }
    s_free_wait(wait);
}

//  One KeyAddressRequest per S_ROUTE_BATCH keys that need an address.
static void s_route_flush(cache_t *self)
{
    size_t at = 0;
    while (at < self->nroute_batch) {
        size_t n = self->nroute_batch - at;
        if (n > S_ROUTE_BATCH)
            n = S_ROUTE_BATCH;
        s_op_t *op = s_op_new(self, S_ROUTE, NULL);
        op->keys = cb_malloc(n * sizeof *op->keys);
        for (size_t i = 0; i < n; i++)
            op->keys[i] = cb_strdup(self->route_batch[at + i]);
        op->nkeys = n;
        at += n;
        KeyAddressRequest req = KEY_ADDRESS_REQUEST__INIT;
        req.response_address = self->lookups_addr;
        req.keys = op->keys;
        req.n_keys = n;
        req.request_id = op->id;
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, key_address_request__get_packed_size(&req));
        key_address_request__pack(&req, zmq_msg_data(&msg));
        if (zmq_msg_send(&msg, self->kvs_routing, ZMQ_DONTWAIT) >= 0) {
            op->sent = true;
            self->stats.kvs_lookups++;
            continue;
        }
        zmq_msg_close(&msg);
        self->stats.kvs_timeouts++;
        char why[400];
        snprintf(why, sizeof why, "the KVS routing tier %s is not taking requests",
                 self->config.kvs);
        for (size_t i = 0; i < op->nkeys; i++)
            s_wait_finish(self, op->keys[i], -1, ANNA_ERROR__TIMEOUT, why);
        s_op_free(self, op);
    }
    self->nroute_batch = 0;
}

//  ---- unsubscribing ------------------------------------------------------------------------

//  Queues an unsubscribe of key at worker, unless a fetch of the key is in flight: that fetch
//  subscribes again, and an unsubscribe sent after it would undo it.
static void s_unsub(cache_t *self, int32_t worker, const char *key)
{
    if (worker < 0 || cache_map_get(self->fetches, key))
        return;
    if (self->nunsubs == self->unsubs_cap) {
        self->unsubs_cap = self->unsubs_cap ? 2 * self->unsubs_cap : 16;
        self->unsubs = cb_realloc(self->unsubs, self->unsubs_cap * sizeof *self->unsubs);
    }
    self->unsubs[self->nunsubs].worker = worker;
    self->unsubs[self->nunsubs].key = cb_strdup(key);
    self->nunsubs++;
}

//  Sends the queued unsubscribes, one GET per worker without response address (the worker
//  only changes its subscriptions).
static void s_unsub_flush(cache_t *self)
{
    if (self->nunsubs == 0)
        return;
    KeyTuple *tuples = anna_arena_alloc(self->arena, self->nunsubs * sizeof *tuples);
    KeyTuple **ptrs = anna_arena_alloc(self->arena, self->nunsubs * sizeof *ptrs);
    bool *done = anna_arena_alloc(self->arena, self->nunsubs * sizeof *done);
    memset(done, 0, self->nunsubs * sizeof *done);
    static const KeyTuple init = KEY_TUPLE__INIT;
    for (size_t i = 0; i < self->nunsubs; i++) {
        if (done[i])
            continue;
        int32_t worker = self->unsubs[i].worker;
        size_t n = 0;
        for (size_t j = i; j < self->nunsubs; j++)
            if (!done[j] && self->unsubs[j].worker == worker) {
                done[j] = true;
                tuples[n] = init;
                tuples[n].key = self->unsubs[j].key;
                tuples[n].unsubscribe = true;
                ptrs[n] = &tuples[n];
                n++;
            }
        KeyRequest req = KEY_REQUEST__INIT;
        req.type = REQUEST_TYPE__GET;
        req.tuples = ptrs;
        req.n_tuples = n;
        req.update_address = self->updates_addr;
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, key_request__get_packed_size(&req));
        key_request__pack(&req, zmq_msg_data(&msg));
        //  A lost unsubscribe costs only pushes, which are dropped and answered by another
        //  unsubscribe: nothing to retry.
        if (anna_pushcache_send(self->kvs, self->workers[worker], &msg) == 0)
            self->stats.unsubscribes += n;
    }
    for (size_t i = 0; i < self->nunsubs; i++)
        cb_free(self->unsubs[i].key);
    self->nunsubs = 0;
}

static void s_on_evict(void *arg, const char *key, uint32_t home)
{
    cache_t *self = arg;
    self->stats.evictions++;
    s_unsub(self, (int32_t)home, key);
}

//  ---- issue 4: the causal cut ---------------------------------------------------------------
//  A multi-key causal version becomes visible here (cached, answered) once this cache shows
//  every key it depends on at a version at or after the one depended on; until then it is
//  held back and the cache keeps showing what it showed. Values enter the store in three
//  places (a fetch's answer, a push, the acknowledgement of a write), all of which admit
//  them through s_cut_admit first and release what became visible after (s_cut_release).
//  What a held version waits for is fetched (and so subscribed to), and asked for again
//  every S_HELD_RETRY_MS in case a push was lost. Since every visible version's
//  dependencies were visible when it was released, the visible store is a causal cut
//  (eviction can drop a dependency; it is then fetched from the KVS, which has at least
//  the version depended on, since caches show only what the KVS acknowledged).

//  Keys with held versions at most; beyond, new versions that cannot be shown yet are
//  dropped (counted): the KVS has them, and the next fetch or push brings them again.
#define S_MAX_HELD (1 << 16)
#define S_HELD_RETRY_MS 500

static const lat_t *s_cut_lookup(void *arg, const char *key)
{
    cache_t *self = arg;
    cache_view_t view;
    return cache_store_peek(self->store, key, &view) ? view.value : NULL;
}

//  Fetches key from the KVS (and so subscribes to it) unless a fetch is in flight; force:
//  also when it is cached (a push may have been lost).
static void s_cut_fetch(cache_t *self, const char *key, bool force)
{
    cache_view_t view;
    if (cache_map_get(self->fetches, key) || self->waiting >= S_MAX_WAITING ||
        !strncmp(key, S_RESERVED_PREFIX, strlen(S_RESERVED_PREFIX)) ||
        (!force && cache_store_peek(self->store, key, &view) && view.value->kind != LAT_NONE))
        return;
    s_op_t *op = s_op_new(self, S_FETCH, key);
    op->subscribe = true;
    op->keyed = true;
    cache_map_put(self->fetches, op->key, op);
    s_op_start(self, op);
}

//  Fetches what the versions of a held value wait for.
static void s_cut_fetch_missing(cache_t *self, const lat_t *held, bool force)
{
    for (size_t i = 0; i < held->u.causal.len; i++) {
        const char *missing = NULL;
        if (!cache_cut_ready(&held->u.causal.items[i], s_cut_lookup, self, &missing))
            s_cut_fetch(self, missing, force);
    }
}

//  Takes the versions of value (about to enter the store at key) that cannot be shown yet.
static void s_cut_admit(cache_t *self, const char *key, lat_t *value)
{
    if (value->kind != LAT_MULTI_CAUSAL)
        return;
    lat_t held;
    lat_init(&held, LAT_NONE);
    size_t moved = cache_cut_split(value, s_cut_lookup, self, &held);
    if (!moved)
        return;
    s_held_t *h = cache_map_get(self->held, key);
    if (!h && cache_map_count(self->held) >= S_MAX_HELD) {
        self->stats.causal_dropped += moved;
        lat_fini(&held);
        return;
    }
    self->stats.causal_held += moved;
    if (!h) {
        h = cb_calloc(1, sizeof *h);
        h->key = cb_strdup(key);
        h->value = held;
        cache_map_put(self->held, h->key, h);
    } else {
        lat_merge(&h->value, &held);
        lat_fini(&held);
    }
    s_cut_fetch_missing(self, &h->value, false);
}

//  Moves the held versions that became visible into the store, until none does. A held
//  key that is no longer cached is forgotten (not subscribed: its next fetch brings what
//  the KVS has). retry: ask again for what the others wait for.
static void s_cut_release(cache_t *self, bool retry)
{
    size_t n = cache_map_count(self->held);
    if (!n)
        return;
    s_held_t **all = cb_malloc(n * sizeof *all);
    bool changed = true;
    for (int round = 0; changed && round < 64; round++) {
        changed = false;
        size_t cursor = 0, count = 0;
        for (s_held_t *h; (h = cache_map_next(self->held, &cursor)) && count < n;)
            all[count++] = h;
        for (size_t i = 0; i < count; i++) {
            s_held_t *h = all[i];
            cache_view_t view;
            bool cached = cache_store_peek(self->store, h->key, &view);
            lat_t wait;
            lat_init(&wait, LAT_NONE);
            if (cached) {
                //  Versions the cache shows newer ones of are of no use; the rest split
                //  into those that can be shown now and those that still wait.
                self->stats.causal_superseded += cache_cut_prune(&h->value, view.value);
                (void)cache_cut_split(&h->value, s_cut_lookup, self, &wait);
            }
            if (cached && h->value.u.causal.len) {
                if (cache_store_merge(self->store, h->key, &h->value) >= 0) {
                    self->stats.causal_released += h->value.u.causal.len;
                    changed = true;
                } else
                    self->stats.causal_dropped += h->value.u.causal.len;
            } else if (!cached)
                self->stats.causal_dropped += h->value.u.causal.len;
            lat_fini(&h->value);
            if (wait.kind == LAT_NONE || !wait.u.causal.len) {
                lat_fini(&wait);
                cache_map_remove(self->held, h->key);
                s_held_free(h);
            } else
                h->value = wait;
        }
        n = cache_map_count(self->held);
        if (!n)
            break;
        all = cb_realloc(all, n * sizeof *all);
    }
    if (retry) {
        size_t cursor = 0;
        for (s_held_t *h; (h = cache_map_next(self->held, &cursor));)
            s_cut_fetch_missing(self, &h->value, true);
    }
    cb_free(all);
}

//  ---- answers of the KVS -------------------------------------------------------------------

//  Joins value (borrowed) into *acc, a value pushed while a fetch was in flight. A value of
//  another kind replaces it: the KVS's latest word wins.
static void s_accumulate(lat_t *acc, const lat_t *value)
{
    if (acc->kind == LAT_NONE || lat_merge(acc, value) < 0) {
        lat_fini(acc);
        lat_copy(acc, value);
    }
}

//  Stores a fetched value: merged into a cached value of its kind (an update may have come
//  first), else replacing whatever is there.
static void s_store_value(cache_t *self, const char *key, lat_t *value, int32_t worker)
{
    s_cut_admit(self, key, value);
    cache_view_t view;
    if (cache_store_peek(self->store, key, &view) && view.value->kind == value->kind) {
        cache_store_merge(self->store, key, value);
        lat_fini(value);
        cache_store_get(self->store, key, NULL);    //  most recently used
        return;
    }
    cache_store_put(self->store, key, value, (uint32_t)worker, cb_clock_mono_ms());
}

static void s_fetch_done(cache_t *self, s_op_t *op, const KeyTuple *t)
{
    int error = t->error;
    const char *message = t->error_message;
    if (error == ANNA_ERROR__WRONG_THREAD && !op->retried) {
        //  The address was stale: ask the routing tier again, once.
        op->retried = true;
        s_addr_drop(self, op->key);
        s_op_start(self, op);
        return;
    }
    if (error == ANNA_ERROR__TOO_LARGE && op->subscribe) {
        //  The KVS refused the subscription (its bounds), or the value is too large to
        //  send. Read once more without subscribing; the answer is passed on, not cached.
        op->subscribe = false;
        s_op_send(self, op);
        return;
    }
    lat_t value;
    lat_init(&value, LAT_NONE);
    char why[256];
    if (error == ANNA_ERROR__NO_ERROR &&
        wire_decode((int)t->lattice_type, t->payload.data, t->payload.len, &value) != 0) {
        error = ANNA_ERROR__BAD_REQUEST;
        snprintf(why, sizeof why, "key %.*s: the KVS sent a %s value that does not decode",
                 s_quote_len(op->key), op->key, lat_kind_name((lat_kind_t)t->lattice_type));
        message = why;
    }
    if (op->pushed.kind != LAT_NONE &&
        (error == ANNA_ERROR__NO_ERROR || error == ANNA_ERROR__KEY_DNE)) {
        //  Updates that overtook the answer are newer than (or as new as) it: join them in.
        //  After KEY_DNE, the key was created since.
        if (error == ANNA_ERROR__NO_ERROR) {
            s_accumulate(&op->pushed, &value);
            lat_fini(&value);
        }
        value = op->pushed;
        lat_init(&op->pushed, LAT_NONE);
        error = ANNA_ERROR__NO_ERROR;
    }
    if (error == ANNA_ERROR__NO_ERROR) {
        cb_bytes_t encoded = {0};
        const cb_bytes_t *payload = &encoded;
        int kind = value.kind;
        cache_view_t view;
        if (op->subscribe) {
            s_store_value(self, op->key, &value, op->worker);
            bool ok = cache_store_peek(self->store, op->key, &view);
            assert(ok);
            (void)ok;
            payload = view.payload;
            kind = view.value->kind;
        } else {
            int rc = wire_encode(&value, &encoded);
            assert(rc == 0);
            (void)rc;
            lat_fini(&value);
        }
        //  Resolving finishes calls, which never touch the store: view stays valid.
        for (size_t i = 0; i < op->nwaiters; i++)
            s_resolve(self, &op->waiters[i], ANNA_ERROR__NO_ERROR, NULL, kind, payload);
        cb_bytes_fini(&encoded);
    } else {
        lat_fini(&value);
        if (error == ANNA_ERROR__KEY_DNE) {
            if (op->subscribe) {
                //  Subscribed: the KVS pushes the key when it is created. Cached as absent
                //  for negative-ms at most, in case that push is lost.
                cache_view_t view;
                if (self->config.negative_ms > 0) {
                    if (!cache_store_peek(self->store, op->key, &view) ||
                        view.value->kind == LAT_NONE)
                        cache_store_put(self->store, op->key, &value, (uint32_t)op->worker,
                                        cb_clock_mono_ms());
                } else {
                    op->keyed = false;
                    cache_map_remove(self->fetches, op->key);
                    s_unsub(self, op->worker, op->key);
                }
            }
        } else
            self->stats.kvs_errors++;
        for (size_t i = 0; i < op->nwaiters; i++)
            s_resolve(self, &op->waiters[i], error, message, 0, NULL);
    }
    op->nwaiters = 0;
    s_op_free(self, op);
    s_cut_release(self, false);
    s_unsub_flush(self);
}

static void s_put_done(cache_t *self, s_op_t *op, const KeyTuple *t)
{
    int error = t->error;
    if (error == ANNA_ERROR__WRONG_THREAD && !op->retried) {
        op->retried = true;
        s_addr_drop(self, op->key);
        s_op_start(self, op);
        return;
    }
    if (error == ANNA_ERROR__NO_ERROR) {
        //  Write-through: the KVS holds the value now, so the cached copy may too (the
        //  versions of it that this cache can show: the causal cut).
        s_cut_admit(self, op->key, &op->value);
        cache_view_t view;
        if (cache_store_peek(self->store, op->key, &view) &&
            cache_store_merge(self->store, op->key, &op->value) == -EINVAL) {
            //  Our copy has another kind than the KVS's. Made an expired negative entry
            //  (pins kept): the next GET asks the KVS again.
            lat_t none;
            lat_init(&none, LAT_NONE);
            cache_store_put(self->store, op->key, &none, view.home, INT64_MIN / 2);
        }
        s_op_t *fetch = cache_map_get(self->fetches, op->key);
        if (fetch)
            s_accumulate(&fetch->pushed, &op->value);
    } else
        self->stats.kvs_errors++;
    s_resolve(self, &op->waiter, error, t->error_message, op->lattice, NULL);
    s_op_free(self, op);
    s_cut_release(self, false);
}

static void s_handle_answer(cache_t *self, const uint8_t *data, size_t size)
{
    KeyResponse *resp = key_response__unpack(&self->pb_alloc, size, data);
    if (!resp) {
        self->stats.malformed++;
        s_log_peer(self, "undecodable KeyResponse from the KVS", size);
        return;
    }
    s_op_t *op = resp->response_id ? cache_map_get(self->ops, resp->response_id) : NULL;
    if (!op || op->kind == S_ROUTE || !op->sent) {
        self->stats.kvs_late++;
        return;
    }
    const KeyTuple *t = NULL;
    for (size_t i = 0; i < resp->n_tuples && !t; i++)
        if (resp->tuples[i]->key && !strcmp(resp->tuples[i]->key, op->key))
            t = resp->tuples[i];
    if (!t) {
        //  A request-level error (or a broken answer): it applies to our one key.
        KeyTuple fake = KEY_TUPLE__INIT;
        fake.key = op->key;
        fake.error = resp->error != ANNA_ERROR__NO_ERROR ? resp->error : ANNA_ERROR__BAD_REQUEST;
        fake.error_message = resp->error != ANNA_ERROR__NO_ERROR && resp->error_message
                                 ? resp->error_message
                                 : "the KVS answered without the key";
        if (fake.error == ANNA_ERROR__TOO_LARGE || fake.error == ANNA_ERROR__WRONG_THREAD)
            fake.error = ANNA_ERROR__BAD_REQUEST;   //  no retry for what the key did not cause
        t = &fake;
        if (op->kind == S_FETCH)
            s_fetch_done(self, op, t);
        else
            s_put_done(self, op, t);
        return;
    }
    if (op->kind == S_FETCH)
        s_fetch_done(self, op, t);
    else
        s_put_done(self, op, t);
}

static void s_handle_lookup_answer(cache_t *self, const uint8_t *data, size_t size)
{
    KeyAddressResponse *resp = key_address_response__unpack(&self->pb_alloc, size, data);
    if (!resp) {
        self->stats.malformed++;
        s_log_peer(self, "undecodable KeyAddressResponse from the KVS", size);
        return;
    }
    s_op_t *op = resp->response_id ? cache_map_get(self->ops, resp->response_id) : NULL;
    if (!op || op->kind != S_ROUTE) {
        self->stats.kvs_late++;
        return;
    }
    char why[400];
    for (size_t i = 0; i < resp->n_addresses; i++) {
        const KeyAddressResponse__KeyAddress *a = resp->addresses[i];
        if (!a->key)
            continue;
        //  The first address is the key's primary owner. Every request of ours for the key
        //  goes there: one thread holds our subscription and sees our writes first.
        int32_t worker = -1;
        if (a->n_ips > 0 && anna_pushcache_address_ok(a->ips[0]))
            worker = s_worker_intern(self, a->ips[0]);
        snprintf(why, sizeof why, "key %.*s: the KVS routing tier gave no usable address",
                 s_quote_len(a->key), a->key);
        s_wait_finish(self, a->key, worker, ANNA_ERROR__NO_SERVERS, why);
    }
    //  Keys the answer did not cover: NO_SERVERS (or the routing tier's error).
    snprintf(why, sizeof why, "the KVS routing tier %s knows no server for the key",
             self->config.kvs);
    for (size_t i = 0; i < op->nkeys; i++)
        s_wait_finish(self, op->keys[i], -1,
                      resp->error != ANNA_ERROR__NO_ERROR ? (int)resp->error
                                                          : ANNA_ERROR__NO_SERVERS,
                      why);
    s_op_free(self, op);
}

//  ---- pushes from the KVS ------------------------------------------------------------------

static void s_handle_update(cache_t *self, const uint8_t *data, size_t size)
{
    KeyRequest *req = key_request__unpack(&self->pb_alloc, size, data);
    if (!req || req->type != REQUEST_TYPE__PUT) {
        self->stats.malformed++;
        s_log_peer(self, req ? "update that is not a PUT" : "undecodable update", size);
        return;
    }
    int64_t now = cb_clock_mono_ms();
    for (size_t i = 0; i < req->n_tuples; i++) {
        const KeyTuple *t = req->tuples[i];
        self->stats.updates++;
        lat_t value;
        if (!t->key || !t->key[0] || !lat_kind_valid((int)t->lattice_type) ||
            wire_decode((int)t->lattice_type, t->payload.data, t->payload.len, &value) != 0) {
            self->stats.malformed++;
            continue;
        }
        bool applied = false;
        cache_view_t view;
        s_cut_admit(self, t->key, &value);
        if (cache_store_peek(self->store, t->key, &view)) {
            if (cache_store_merge(self->store, t->key, &value) == -EINVAL) {
                //  The key was recreated with another kind (or we cached a stale one):
                //  adopt the KVS's value.
                lat_t copy;
                lat_copy(&copy, &value);
                cache_store_put(self->store, t->key, &copy, view.home, now);
            }
            applied = true;
        }
        s_op_t *fetch = cache_map_get(self->fetches, t->key);
        if (fetch) {
            s_accumulate(&fetch->pushed, &value);
            applied = true;
        }
        if (applied)
            self->stats.updates_applied++;
        else {
            //  Not held (evicted, or subscribed by an earlier run of this cache, or by a
            //  fetch that timed out here): stop the pushes.
            s_unsub(self, s_addr_get(self, t->key), t->key);
        }
        lat_fini(&value);
    }
    s_cut_release(self, false);
    s_unsub_flush(self);
}

//  ---- requests from executors --------------------------------------------------------------

static void s_handle_lookup(cache_t *self, const uint8_t *data, size_t size)
{
    KeyAddressRequest *req = key_address_request__unpack(&self->pb_alloc, size, data);
    if (!req) {
        self->stats.malformed++;
        s_log_peer(self, "undecodable KeyAddressRequest", size);
        return;
    }
    self->stats.lookups++;
    if (!req->response_address || !req->response_address[0]) {
        self->stats.replies_dropped++;
        return;
    }
    //  Every key lives here: the data socket.
    KeyAddressResponse__KeyAddress *entries =
        anna_arena_alloc(self->arena, (req->n_keys ? req->n_keys : 1) * sizeof *entries);
    KeyAddressResponse__KeyAddress **ptrs =
        anna_arena_alloc(self->arena, (req->n_keys ? req->n_keys : 1) * sizeof *ptrs);
    char *ips[1] = {self->data_addr};
    for (size_t i = 0; i < req->n_keys; i++) {
        key_address_response__key_address__init(&entries[i]);
        entries[i].key = req->keys[i];
        entries[i].ips = ips;
        entries[i].n_ips = 1;
        ptrs[i] = &entries[i];
    }
    KeyAddressResponse resp = KEY_ADDRESS_RESPONSE__INIT;
    resp.addresses = ptrs;
    resp.n_addresses = req->n_keys;
    resp.response_id = req->request_id;
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, key_address_response__get_packed_size(&resp));
    key_address_response__pack(&resp, zmq_msg_data(&msg));
    s_send_client(self, req->response_address, &msg);
}

static void s_tuple_error(cache_t *self, KeyTuple *out, int error, const char *message)
{
    out->error = (AnnaError)error;
    out->error_message = (char *)message;
    if (error == ANNA_ERROR__BAD_REQUEST || error == ANNA_ERROR__LATTICE)
        self->stats.bad_request++;
}

static void s_stats_tuple(cache_t *self, KeyTuple *out)
{
    cache_stats_t snapshot;
    cache_stats(self, &snapshot);
    char json[2048];
    size_t len = cache_stats_format(&snapshot, self->config.node, true, json, sizeof json);
    lat_t value;
    lat_init(&value, LAT_LWW);
    lat_lww_assign(&value, cb_clock_lww_now(), 0, json, len);
    cb_bytes_t *payload = s_own(self);
    int rc = wire_encode(&value, payload);
    assert(rc == 0);
    (void)rc;
    lat_fini(&value);
    out->lattice_type = LATTICE_TYPE__LWW;
    out->payload.data = payload->data;
    out->payload.len = payload->len;
}

//  The call of the request being handled, made when its first tuple has to wait.
typedef struct {
    const KeyRequest *req;
    s_call_t *call;
    bool *waiting;              //  per tuple (arena)
} s_ctx_t;

//  The session of a GET that reads under REPEATABLE_READ, or NULL.
static const char *s_session_of(const KeyRequest *req)
{
    if (req->type != REQUEST_TYPE__GET || !req->session_id || !req->session_id[0] ||
        req->consistency != 1)
        return NULL;
    return req->session_id;
}

static s_waiter_t s_waiter(cache_t *self, s_ctx_t *ctx, size_t index)
{
    s_waiter_t w = {NULL, (uint32_t)index};
    self->waiting++;
    ctx->waiting[index] = true;
    const KeyRequest *req = ctx->req;
    if (!req->response_address || !req->response_address[0])
        return w;
    if (!ctx->call) {
        s_call_t *call = cb_calloc(1, sizeof *call + req->n_tuples * sizeof(s_result_t));
        call->response_address = cb_strdup(req->response_address);
        call->request_id = cb_strdup(req->request_id ? req->request_id : "");
        call->type = req->type;
        call->n = req->n_tuples;
        if (s_session_of(req))
            call->session = cb_strdup(req->session_id);
        call->outstanding = 1;          //  held until the request is set up
        call->next = self->calls;
        if (self->calls)
            self->calls->prev = call;
        self->calls = call;
        ctx->call = call;
    }
    ctx->call->results[index].waiting = true;
    ctx->call->outstanding++;
    w.call = ctx->call;
    return w;
}

static void s_get_tuple(cache_t *self, s_ctx_t *ctx, size_t index, const char *key,
                        KeyTuple *out)
{
    bool answer = ctx->req->response_address && ctx->req->response_address[0];
    if (!strcmp(key, S_STATS_KEY)) {
        if (answer)
            s_stats_tuple(self, out);
        return;
    }
    if (!answer)
        return;                 //  no one reads the value
    bool reserved = !strncmp(key, S_RESERVED_PREFIX, strlen(S_RESERVED_PREFIX));
    cache_view_t view;
    if (!reserved && cache_store_get(self->store, key, &view)) {
        if (view.value->kind != LAT_NONE) {
            self->stats.hits++;
            out->lattice_type = (LatticeType)view.value->kind;
            //  Borrowed from the store, which no tuple of this request changes.
            out->payload.data = view.payload->data;
            out->payload.len = view.payload->len;
            return;
        }
        if (cb_clock_mono_ms() - view.since_ms < self->config.negative_ms) {
            self->stats.negative_hits++;
            s_tuple_error(self, out, ANNA_ERROR__KEY_DNE, "");
            return;
        }
        //  A negative entry too old to trust: asked again below (it stays until then).
    }
    self->stats.misses++;
    if (self->waiting >= S_MAX_WAITING) {
        self->stats.overloaded++;
        s_tuple_error(self, out, ANNA_ERROR__TIMEOUT,
                      anna_arena_printf(self->arena,
                                        "cache overloaded: %zu requests wait for the KVS",
                                        self->waiting));
        return;
    }
    //  Reserved keys (another node's stats) are read through, neither shared nor cached.
    s_op_t *op = reserved ? NULL : cache_map_get(self->fetches, key);
    if (op)
        self->stats.coalesced++;
    else {
        op = s_op_new(self, S_FETCH, key);
        op->subscribe = !reserved;
        if (!reserved) {
            op->keyed = true;
            cache_map_put(self->fetches, op->key, op);
        }
    }
    if (op->nwaiters == op->waiters_cap) {
        op->waiters_cap = op->waiters_cap ? 2 * op->waiters_cap : 2;
        op->waiters = cb_realloc(op->waiters, op->waiters_cap * sizeof *op->waiters);
    }
    op->waiters[op->nwaiters++] = s_waiter(self, ctx, index);
    if (op->nwaiters == 1)
        s_op_start(self, op);
}

static void s_put_tuple(cache_t *self, s_ctx_t *ctx, size_t index, const KeyTuple *in,
                        KeyTuple *out)
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
    cache_view_t view;
    bool cached = cache_store_peek(self->store, key, &view) && view.value->kind != LAT_NONE;
    if (cached && (int)view.value->kind != kind) {
        //  What the KVS would say: our copy has the KVS's kind.
        s_tuple_error(self, out, ANNA_ERROR__LATTICE,
                      anna_arena_printf(self->arena, "key %.*s holds %s, not %s",
                                        s_quote_len(key), key, lat_kind_name(view.value->kind),
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
    if (self->waiting >= S_MAX_WAITING) {
        lat_fini(&value);
        self->stats.overloaded++;
        s_tuple_error(self, out, ANNA_ERROR__TIMEOUT,
                      anna_arena_printf(self->arena,
                                        "cache overloaded: %zu requests wait for the KVS",
                                        self->waiting));
        return;
    }
    s_op_t *op = s_op_new(self, S_PUT, key);
    op->lattice = kind;
    op->value = value;
    cb_bytes_set(&op->payload, in->payload.data, in->payload.len);
    //  The entry stays until the KVS acked, so the write lands in it then.
    op->pinned = cache_store_pin(self->store, key, 1);
    op->waiter = s_waiter(self, ctx, index);
    s_op_start(self, op);
}

static void s_handle_request(cache_t *self, const uint8_t *data, size_t size)
{
    if (size >= 2 * (size_t)S_MAX_TUPLES) {
        wire_scan_t scan;
        if (!wire_scan_request(data, size, &scan)) {
            self->stats.malformed++;
            s_log_peer(self, "undecodable KeyRequest", size);
            return;
        }
        if (scan.tuples > S_MAX_TUPLES) {
            self->stats.requests++;
            self->stats.bad_request++;
            if (!scan.address_len)
                return;
            KeyResponse resp = KEY_RESPONSE__INIT;
            resp.response_id = anna_arena_printf(self->arena, "%.*s", (int)scan.id_len,
                                                 scan.id ? (const char *)scan.id : "");
            resp.error = ANNA_ERROR__BAD_REQUEST;
            resp.error_message = anna_arena_printf(
                self->arena, "%zu tuples in one request; at most %d are accepted", scan.tuples,
                S_MAX_TUPLES);
            char *address = anna_arena_printf(self->arena, "%.*s", (int)scan.address_len,
                                              (const char *)scan.address);
            s_send_response(self, address, &resp);
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
    if (req->session_done) {
        if (req->session_id && req->session_id[0])
            s_snap_drop(self, req->session_id);
        s_own_release(self);
        return;
    }
    bool answer = req->response_address && req->response_address[0];
    size_t n = req->n_tuples;
    KeyTuple *out = anna_arena_alloc(self->arena, (n ? n : 1) * sizeof *out);
    KeyTuple **ptrs = anna_arena_alloc(self->arena, (n ? n : 1) * sizeof *ptrs);
    s_ctx_t ctx = {req, NULL, anna_arena_alloc(self->arena, n ? n : 1)};
    memset(ctx.waiting, 0, n ? n : 1);
    static const KeyTuple init = KEY_TUPLE__INIT;
    bool known = req->type == REQUEST_TYPE__GET || req->type == REQUEST_TYPE__PUT;
    const char *type_msg = known ? NULL
                                 : anna_arena_printf(self->arena,
                                                     "request type %d is not GET or PUT",
                                                     (int)req->type);
    for (size_t i = 0; i < n; i++) {
        out[i] = init;
        ptrs[i] = &out[i];
        const KeyTuple *in = req->tuples[i];
        const char *key = in->key ? in->key : "";
        out[i].key = (char *)key;
        if (!known) {
            s_tuple_error(self, &out[i], ANNA_ERROR__BAD_REQUEST, type_msg);
            continue;
        }
        if (req->type == REQUEST_TYPE__GET)
            self->stats.gets++;
        else
            self->stats.puts++;
        size_t len = strlen(key);
        if (len == 0)
            s_tuple_error(self, &out[i], ANNA_ERROR__BAD_REQUEST, "empty key");
        else if (len > S_MAX_KEY_BYTES)
            s_tuple_error(self, &out[i], ANNA_ERROR__BAD_REQUEST,
                          anna_arena_printf(self->arena, "key of %zu bytes is longer than %d",
                                            len, S_MAX_KEY_BYTES));
        else if (req->type == REQUEST_TYPE__GET)
            s_get_tuple(self, &ctx, i, key, &out[i]);
        else
            s_put_tuple(self, &ctx, i, in, &out[i]);
    }
    KeyResponse resp = KEY_RESPONSE__INIT;
    resp.type = req->type;
    resp.tuples = ptrs;
    resp.n_tuples = n;
    resp.response_id = req->request_id;
    if (!known) {
        resp.error = ANNA_ERROR__BAD_REQUEST;
        resp.error_message = (char *)type_msg;
    }
    if (!ctx.call) {
        const char *sid = s_session_of(req);
        for (size_t i = 0; sid && answer && i < n; i++) {
            if (!out[i].key[0] || strlen(out[i].key) > S_MAX_KEY_BYTES)
                continue;
            int error = out[i].error, kind = out[i].lattice_type;
            const char *message = out[i].error_message ? out[i].error_message : "";
            const uint8_t *bytes = out[i].payload.data;
            size_t nbytes = out[i].payload.len;
            s_snap_apply(self, sid, out[i].key, &error, &message, &kind, &bytes, &nbytes);
            out[i].error = (AnnaError)error;
            out[i].error_message = (char *)message;
            out[i].lattice_type = (LatticeType)kind;
            out[i].payload.data = (uint8_t *)bytes;
            out[i].payload.len = nbytes;
        }
        if (answer)
            s_send_response(self, req->response_address, &resp);
    } else {
        //  Some tuples wait for the KVS: the answers known now go into the call, which
        //  answers when the last one is in (perhaps already: an operation can fail at once).
        s_call_t *call = ctx.call;
        for (size_t i = 0; i < n; i++) {
            s_result_t *r = &call->results[i];
            r->key = cb_strdup(out[i].key);
            if (ctx.waiting[i])
                continue;
            r->error = out[i].error;
            r->message = out[i].error_message && out[i].error_message[0]
                             ? cb_strdup(out[i].error_message)
                             : NULL;
            r->kind = out[i].lattice_type;
            if (out[i].payload.len)
                cb_bytes_set(&r->payload, out[i].payload.data, out[i].payload.len);
        }
        if (--call->outstanding == 0)
            s_call_finish(self, call);
    }
    s_own_release(self);
}

//  ---- the loop -----------------------------------------------------------------------------

//  Fails every operation whose deadline has passed (the list is in deadline order).
static void s_expire(cache_t *self, int64_t now)
{
    char why[512];
    while (self->ops_head && self->ops_head->deadline_ms <= now) {
        s_op_t *op = self->ops_head;
        self->stats.kvs_timeouts++;
        if (op->kind == S_ROUTE) {
            snprintf(why, sizeof why, "no answer from the KVS routing tier %s within %d ms",
                     self->config.kvs, self->config.timeout_ms);
            for (size_t i = 0; i < op->nkeys; i++)
                s_wait_finish(self, op->keys[i], -1, ANNA_ERROR__TIMEOUT, why);
            s_op_free(self, op);
            continue;
        }
        snprintf(why, sizeof why, "key %.*s: no answer from the KVS (%s) within %d ms",
                 s_quote_len(op->key), op->key, s_worker_address(self, op->sent ? op->worker : -1),
                 self->config.timeout_ms);
        s_op_fail(self, op, ANNA_ERROR__TIMEOUT, why);
    }
}

typedef struct {
    char **keys;
    size_t n;
} s_keys_t;

static void s_collect_key(void *arg, const char *key)
{
    s_keys_t *keys = arg;
    keys->keys[keys->n++] = (char *)key;
}

static void s_report(cache_t *self)
{
    if (!self->scheduler)
        return;
    NodeInfo info = NODE_INFO__INIT;
    info.node = self->config.node;
    info.cache_address = self->routing_addr;
    info.cached_keys = cache_store_count(self->store);
    info.cached_bytes = cache_store_bytes(self->store);
    StatusReport report = STATUS_REPORT__INIT;
    report.body_case = STATUS_REPORT__BODY_NODE;
    report.node = &info;
    size_t max = cache_store_count(self->store) < S_REPORT_KEYS ? cache_store_count(self->store)
                                                                : S_REPORT_KEYS;
    s_keys_t keys = {anna_arena_alloc(self->arena, (max ? max : 1) * sizeof(char *)), 0};
    //  Most recently used first: the keys a scheduler should place calls near.
    cache_store_keys(self->store, max, s_collect_key, &keys);
    report.cached_keys = keys.keys;
    report.n_cached_keys = keys.n;
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, status_report__get_packed_size(&report));
    status_report__pack(&report, zmq_msg_data(&msg));
    if (zmq_msg_send(&msg, self->scheduler, ZMQ_DONTWAIT) >= 0)
        self->stats.reports++;
    else
        zmq_msg_close(&msg);
    anna_arena_reset(self->arena);
}

typedef enum { S_SOCK_ROUTING, S_SOCK_DATA, S_SOCK_UPDATES, S_SOCK_ANSWERS, S_SOCK_LOOKUPS } s_sock_t;

static void s_drain(cache_t *self, void *sock, s_sock_t which)
{
    for (int n = 0; n < S_BATCH; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        size_t size = zmq_msg_size(&msg);
        if (zmq_msg_more(&msg)) {
            //  Our messages are one frame; the rest of a multi-frame one is there already.
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
                ;
            self->stats.malformed++;
            s_log_peer(self, "multi-frame message", size);
        } else if (size == 0) {
            self->stats.malformed++;
            s_log_peer(self, "empty frame", 0);
        } else {
            const uint8_t *data = zmq_msg_data(&msg);
            switch (which) {
            case S_SOCK_ROUTING: s_handle_lookup(self, data, size); break;
            case S_SOCK_DATA: s_handle_request(self, data, size); break;
            case S_SOCK_UPDATES: s_handle_update(self, data, size); break;
            case S_SOCK_ANSWERS: s_handle_answer(self, data, size); break;
            case S_SOCK_LOOKUPS: s_handle_lookup_answer(self, data, size); break;
            }
        }
        zmq_msg_close(&msg);
        anna_arena_reset(self->arena);
    }
}

int cache_run(cache_t *self, int stop_fd)
{
    assert(self);
    self->next_report_ms = cb_clock_mono_ms();
    for (;;) {
        zmq_pollitem_t items[] = {
            {self->routing, 0, ZMQ_POLLIN, 0}, {self->data, 0, ZMQ_POLLIN, 0},
            {self->updates, 0, ZMQ_POLLIN, 0}, {self->answers, 0, ZMQ_POLLIN, 0},
            {self->lookups, 0, ZMQ_POLLIN, 0}, {NULL, stop_fd, ZMQ_POLLIN, 0},
        };
        int64_t now = cb_clock_mono_ms();
        int64_t next = self->scheduler ? self->next_report_ms : INT64_MAX;
        if (self->ops_head && self->ops_head->deadline_ms < next)
            next = self->ops_head->deadline_ms;
        if (cache_map_count(self->held) && self->next_held_ms < next)
            next = self->next_held_ms;
        long timeout = next == INT64_MAX ? -1 : next <= now ? 0 : (long)(next - now);
        if (zmq_poll(items, 6, timeout) < 0) {
            if (errno == EINTR)
                continue;
            cb_error("zmq_poll: %s", zmq_strerror(errno));
            return -errno;
        }
        if (items[5].revents & ZMQ_POLLIN)
            return 0;
        //  Answers first: they complete work and free memory before new work comes in.
        if (items[3].revents & ZMQ_POLLIN)
            s_drain(self, self->answers, S_SOCK_ANSWERS);
        if (items[4].revents & ZMQ_POLLIN)
            s_drain(self, self->lookups, S_SOCK_LOOKUPS);
        if (items[2].revents & ZMQ_POLLIN)
            s_drain(self, self->updates, S_SOCK_UPDATES);
        if (items[0].revents & ZMQ_POLLIN)
            s_drain(self, self->routing, S_SOCK_ROUTING);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain(self, self->data, S_SOCK_DATA);
        //  The deferred work of the iteration.
        if (self->nroute_batch)
            s_route_flush(self);
        now = cb_clock_mono_ms();
        s_expire(self, now);
        s_snap_expire(self, now);
        if (now >= self->next_held_ms) {
            s_cut_release(self, true);
            self->next_held_ms = now + S_HELD_RETRY_MS;
        }
        if (cache_store_bytes(self->store) > cache_store_max_bytes(self->store)) {
            cache_store_evict(self->store, s_on_evict, self);
            s_unsub_flush(self);
        }
        if (self->scheduler && now >= self->next_report_ms) {
            s_report(self);
            self->next_report_ms = now + self->config.report_ms;
        }
        anna_arena_reset(self->arena);
    }
}

//  ---- self-test ----------------------------------------------------------------------------

void cache_cache_test(bool verbose)
{
    //  @selftest
    cache_stats_t stats = {0};
    stats.hits = 41;
    stats.bytes = 12345678901ULL;
    char buf[2048];
    size_t len = cache_stats_format(&stats, "n0", true, buf, sizeof buf);
    assert(len == strlen(buf));
    assert(!strncmp(buf, "{\"node\":\"n0\",\"requests\":0,", 26));
    assert(strstr(buf, "\"hits\":41,") && strstr(buf, "\"bytes\":12345678901}"));
    len = cache_stats_format(&stats, "n1", false, buf, sizeof buf);
    assert(!strncmp(buf, "n1: requests=0 ", 15) && strstr(buf, " hits=41 "));
    char small[12];
    len = cache_stats_format(&stats, "n0", true, small, sizeof small);
    assert(len == sizeof small - 1 && strlen(small) == len);

    //  The scanner agrees with protobuf-c on what it counts, and refuses broken framing.
    KeyTuple a = KEY_TUPLE__INIT;
    a.key = "k";
    KeyTuple *tuples[2] = {&a, &a};
    KeyRequest req = KEY_REQUEST__INIT;
    req.type = REQUEST_TYPE__GET;
    req.tuples = tuples;
    req.n_tuples = 2;
    req.response_address = "tcp://127.0.0.1:1";
    req.request_id = "id";
    uint8_t packed[128];
    size_t size = key_request__get_packed_size(&req);
    assert(size <= sizeof packed);
    key_request__pack(&req, packed);
    wire_scan_t scan;
    assert(wire_scan_request(packed, size, &scan) && scan.tuples == 2 && scan.address_len == 17);
    assert(scan.id_len == 2 && !memcmp(scan.id, "id", 2));
    for (size_t cut = 1; cut < size; cut++) {
        bool ok = wire_scan_request(packed, cut, &scan);
        KeyRequest *back = key_request__unpack(NULL, cut, packed);
        assert(ok == (back != NULL));
        if (back)
            key_request__free_unpacked(back, NULL);
    }
    assert(!wire_scan_request((const uint8_t *)"\xff\xff", 2, &scan));

    //  The answer sockets bind where the updates address points.
    cache_config_t cfg;
    cache_config_defaults(&cfg);
    char ep[CACHE_ADDR_MAX];
    s_answer_endpoint(&cfg, ep, sizeof ep);
    assert(!strcmp(ep, "tcp://127.0.0.1:*"));
    snprintf(cfg.updates, sizeof cfg.updates, "tcp://127.0.0.3:7000");
    s_answer_endpoint(&cfg, ep, sizeof ep);
    assert(!strcmp(ep, "tcp://127.0.0.3:*"));
    snprintf(cfg.updates, sizeof cfg.updates, "ipc:///tmp/x");
    s_answer_endpoint(&cfg, ep, sizeof ep);
    assert(!strcmp(ep, "tcp://127.0.0.1:*"));
    //  @end
    if (verbose)
        printf("  %s\n", buf);
}
