//  client/kvs.c: the client library of the KVS (see kvs.h for the contract).
//
//  One call = a set of keys. Each call runs at most S_MAX_ATTEMPTS attempts; an attempt
//    1. asks the routing tier for the workers of every key not in the address cache (one
//       KeyAddressRequest for all of them; a routing address that does not answer in time,
//       or cannot be sent to, passes the request to the next one of the list),
//    2. picks one cached replica per key, at random among those not suspected (below), and
//       sends one KeyRequest per worker,
//    3. collects replies on our PULL socket until every key has an answer or the attempt's
//       deadline passes.
//  A key answered WRONG_THREAD loses its cached addresses and goes into the next attempt
//  (once). A worker that does not answer in time becomes a suspect for a while: every key
//  cached on it is dropped (the routing tier may know better), and its keys go into the next
//  attempt, which prefers a replica they have not tried yet (from the fresh lookup, or, when
//  no routing address answers it, from the replicas that were cached); a key gives up when
//  each of its replicas failed it once (at least two attempts, so a key with one replica is
//  sent twice).
//  Every reply is matched by its request id against the requests of the current attempt;
//  anything else is counted and dropped, so a late reply can never pass for the answer to a
//  newer request.
//  SPDX-License-Identifier: Apache-2.0
#include "client/kvs.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#include "client/codec.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/rand.h"
#include "proto/wire.h"

#define S_DEFAULT_TIMEOUT_MS 5000
#define S_MAX_TIMEOUT_MS 3600000
//  PUSH sockets kept open (least recently used closed first). A call that needs more keeps
//  them until it ends: closing a socket with linger 0 would drop its unsent request.
#define S_MAX_SOCKETS 64
//  Keys in the address cache. When a lookup would pass this, the cache is emptied: simpler
//  than an LRU, and refilling costs one routing round trip per batch of keys.
#define S_MAX_CACHED_KEYS 65536
//  Replies larger than this are refused by ZeroMQ before they are allocated.
#define S_MAX_REPLY_BYTES (256LL << 20)
#define S_MAX_ADDRESS_LEN 255
//  Routing addresses in a config's list (kvs.h).
#define S_MAX_ROUTING 16
//  Attempts of one key in one call: enough to try each replica of a key replicated up to
//  four times, and what bounds a call (kvs.h).
#define S_MAX_ATTEMPTS 4
//  A worker that did not answer is avoided for max(2 x timeout, this): long enough to cover
//  the calls that follow, short enough that a node that was only slow is used again soon.
#define S_SUSPECT_MIN_MS 5000
//  Suspects remembered; when full, the one that expires first is forgotten.
#define S_MAX_SUSPECTS 64

typedef struct s_entry_s s_entry_t;
struct s_entry_s {
    s_entry_t *next;            //  hash chain
    char *key;                  //  owned
    char **addrs;               //  owned array of owned worker addresses; n > 0
    size_t n;
};

typedef struct {
    char *addr;                 //  owned
    void *sock;                 //  PUSH, connected to addr
    uint64_t used;              //  number of the call that used it last (LRU, and pinning)
} s_push_t;

typedef struct {
    char *addr;                 //  owned: a worker that did not answer in time
    int64_t until;              //  monotonic ms when it stops being suspected
} s_suspect_t;

struct _cb_kvs_t {
    void *ctx;                  //  our own ZeroMQ context: one io thread
    void *pull;                 //  every reply comes here
    char *response_address;     //  "tcp://ip:port" of pull
    char *routing[S_MAX_ROUTING];   //  owned routing tier addresses, in the config's order
    size_t n_routing;
    size_t routing_cur;         //  the one asked first; moves on when it fails (kept)
    uint32_t routing_failed;    //  bit r: routing[r] failed during the current call
    int64_t call_deadline;      //  backstop on the whole call (kvs.h's bound)
    s_suspect_t suspects[S_MAX_SUSPECTS];
    size_t n_suspects;
    int timeout_ms;
    uint32_t writer_id;
    uint64_t counter;           //  request ids: "<writer>:<counter>"
    uint64_t call;              //  calls made, to pin the sockets a call uses
    s_entry_t **buckets;        //  address cache: key -> worker addresses
    size_t n_buckets;
    size_t n_keys;
    s_push_t *pushes;           //  PUSH sockets by address
    size_t n_pushes;
    size_t cap_pushes;
    cb_rand_t rand;             //  replica choice
    cb_kvs_stats_t stats;
    char error[512];            //  text of the last failure; "" after a success
};

//  --------------------------------------------------------------------------------------
//  Small helpers

//  Writes key for a message: printable ASCII kept, other bytes as \xNN, cut at 64 bytes.
static void s_quote_key(const char *key, char *buf, size_t cap)
{
    size_t o = 0, i = 0;
    assert(cap >= 8);
    for (; key[i] && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i >= 64) {
            break;
        } else if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        }
    }
    if (key[i] && o + 4 <= cap)
        o += (size_t)snprintf(buf + o, cap - o, "...");
    buf[o < cap ? o : cap - 1] = '\0';
}

//  AnnaError -> negative errno (kvs.h). Unknown codes are a protocol error.
static int s_error_from_anna(int anna)
{
    switch (anna) {
    case CB_ANNA_NO_ERROR:
        return 0;
    case CB_ANNA_KEY_DNE:
        return -ENOENT;
    case CB_ANNA_WRONG_THREAD:
        return -EAGAIN;
    case CB_ANNA_TIMEOUT:
        return -ETIMEDOUT;
    case CB_ANNA_LATTICE:
        return -EINVAL;
    case CB_ANNA_NO_SERVERS:
        return -EHOSTUNREACH;
    case CB_ANNA_BAD_REQUEST:
        return -EBADMSG;
    case CB_ANNA_TOO_LARGE:
        return -EMSGSIZE;
    default:
        return -EPROTO;
    }
}

static void s_next_id(cb_kvs_t *self, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u:%llu", self->writer_id, (unsigned long long)self->counter++);
}

//  True if message starts with "key K" or "key 'K'" where K is key: it says which key itself.
static bool s_names_key(const char *message, const char *key)
{
    size_t n = strlen(key);
    if (!message || strncmp(message, "key ", 4))
        return false;
    message += 4;
    if (*message == '\'')
        return !strncmp(message + 1, key, n) && message[1 + n] == '\'';
    return !strncmp(message, key, n) && (message[n] == ' ' || message[n] == ':' || !message[n]);
}

//  Fills the error text: "key 'k' does not exist" for -ENOENT, else "key 'k': why", where why
//  is the server's (or our) message, or the errno text; a message that starts by naming the
//  key ("key k holds SET, not LWW") is kept alone. Bytes a terminal should not see become '?'.
static void s_set_error(cb_kvs_t *self, const char *key, int err, const char *why)
{
    char q[300];
    s_quote_key(key, q, sizeof q);
    if (err == -ENOENT)
        snprintf(self->error, sizeof self->error, "key '%s' does not exist", q);
    else if (s_names_key(why, key))
        snprintf(self->error, sizeof self->error, "%s", why);
    else
        snprintf(self->error, sizeof self->error, "key '%s': %s", q, why ? why : cb_strerror(err));
    for (char *p = self->error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

//  --------------------------------------------------------------------------------------
//  Address cache

static uint64_t s_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;          //  FNV-1a
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static s_entry_t *s_cache_find(const cb_kvs_t *self, const char *key)
{
    for (s_entry_t *e = self->buckets[s_hash(key) % self->n_buckets]; e; e = e->next)
        if (!strcmp(e->key, key))
            return e;
    return NULL;
}

static void s_entry_free(s_entry_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        cb_free(e->addrs[i]);
    cb_free(e->addrs);
    cb_free(e->key);
    cb_free(e);
}

static bool s_cache_drop_key(cb_kvs_t *self, const char *key)
{
    for (s_entry_t **pp = &self->buckets[s_hash(key) % self->n_buckets]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->key, key)) {
            s_entry_t *e = *pp;
            *pp = e->next;
            s_entry_free(e);
            self->n_keys--;
            return true;
        }
    return false;
}

static void s_cache_clear(cb_kvs_t *self)
{
    for (size_t b = 0; b < self->n_buckets; b++)
        while (self->buckets[b]) {
            s_entry_t *e = self->buckets[b];
            self->buckets[b] = e->next;
            s_entry_free(e);
        }
    self->n_keys = 0;
}

static void s_cache_grow(cb_kvs_t *self)
{
    size_t n = self->n_buckets * 4;
    s_entry_t **buckets = cb_calloc(n, sizeof *buckets);
    for (size_t b = 0; b < self->n_buckets; b++)
        while (self->buckets[b]) {
            s_entry_t *e = self->buckets[b];
            self->buckets[b] = e->next;
            e->next = buckets[s_hash(e->key) % n];
            buckets[s_hash(e->key) % n] = e;
        }
    cb_free(self->buckets);
    self->buckets = buckets;
    self->n_buckets = n;
}

//  Replaces key's addresses with copies of addrs[0..n); n == 0 only drops them.
static void s_cache_set(cb_kvs_t *self, const char *key, const char *const *addrs, size_t n)
{
    s_cache_drop_key(self, key);
    if (!n)
        return;
    if (self->n_keys >= self->n_buckets)
        s_cache_grow(self);
    s_entry_t *e = cb_calloc(1, sizeof *e);
    e->key = cb_strdup(key);
    e->addrs = cb_calloc(n, sizeof *e->addrs);
    for (size_t i = 0; i < n; i++)
        e->addrs[i] = cb_strdup(addrs[i]);
    e->n = n;
    size_t b = s_hash(key) % self->n_buckets;
    e->next = self->buckets[b];
    self->buckets[b] = e;
    self->n_keys++;
}

//  Drops every key that has worker among its addresses: the worker is suspected dead, and
//  the routing tier may now know better for all of them (as the C++ client does).
static void s_cache_drop_worker(cb_kvs_t *self, const char *worker)
{
    for (size_t b = 0; b < self->n_buckets; b++)
        for (s_entry_t **pp = &self->buckets[b]; *pp;) {
            bool hit = false;
            for (size_t i = 0; i < (*pp)->n && !hit; i++)
                hit = !strcmp((*pp)->addrs[i], worker);
            if (hit) {
                s_entry_t *e = *pp;
                *pp = e->next;
                s_entry_free(e);
                self->n_keys--;
            } else {
                pp = &(*pp)->next;
            }
        }
}

//  --------------------------------------------------------------------------------------
//  Suspects: workers that did not answer in time. now is passed in (monotonic ms) so that
//  the self-test can move the clock.

static bool s_suspected(cb_kvs_t *self, const char *worker, int64_t now)
{
    for (size_t i = 0; i < self->n_suspects; i++)
        if (!strcmp(self->suspects[i].addr, worker)) {
            if (self->suspects[i].until > now)
                return true;
            cb_free(self->suspects[i].addr);            //  expired: forget it
            self->suspects[i] = self->suspects[--self->n_suspects];
            return false;
        }
    return false;
}

static void s_suspect_clear(cb_kvs_t *self, const char *worker)
{
    for (size_t i = 0; i < self->n_suspects; i++)
        if (!strcmp(self->suspects[i].addr, worker)) {
            cb_free(self->suspects[i].addr);
            self->suspects[i] = self->suspects[--self->n_suspects];
            return;
        }
}

static void s_suspect_add(cb_kvs_t *self, const char *worker, int64_t now)
{
    int64_t span = 2 * (int64_t)self->timeout_ms;
    int64_t until = now + (span > S_SUSPECT_MIN_MS ? span : S_SUSPECT_MIN_MS);
    s_suspect_clear(self, worker);
    if (self->n_suspects == S_MAX_SUSPECTS) {
        size_t first = 0;
        for (size_t i = 1; i < self->n_suspects; i++)
            if (self->suspects[i].until < self->suspects[first].until)
                first = i;
        cb_free(self->suspects[first].addr);
        self->suspects[first] = self->suspects[--self->n_suspects];
    }
    self->suspects[self->n_suspects++] = (s_suspect_t){cb_strdup(worker), until};
}

static void s_suspects_clear(cb_kvs_t *self)
{
    while (self->n_suspects)
        cb_free(self->suspects[--self->n_suspects].addr);
}

//  --------------------------------------------------------------------------------------
//  Sockets

static void s_push_close_at(cb_kvs_t *self, size_t i)
{
    zmq_close(self->pushes[i].sock);                //  linger 0: unsent requests are dropped
    cb_free(self->pushes[i].addr);
    self->pushes[i] = self->pushes[--self->n_pushes];
}

static void s_push_close(cb_kvs_t *self, const char *addr)
{
    for (size_t i = 0; i < self->n_pushes; i++)
        if (!strcmp(self->pushes[i].addr, addr)) {
            s_push_close_at(self, i);
            return;
        }
}

//  Closes least recently used sockets not used by the current call until at most max remain.
static void s_push_trim(cb_kvs_t *self, size_t max)
{
    while (self->n_pushes > max) {
        size_t lru = SIZE_MAX;
        for (size_t i = 0; i < self->n_pushes; i++)
            if (self->pushes[i].used != self->call
                && (lru == SIZE_MAX || self->pushes[i].used < self->pushes[lru].used))
                lru = i;
        if (lru == SIZE_MAX)
            return;                                 //  all in use by this call
        s_push_close_at(self, lru);
    }
}

//  Finds or opens the PUSH socket to addr. Returns 0, or -EINVAL if ZeroMQ refuses the
//  address (a malformed endpoint from a peer), or another negative errno.
static int s_push_get(cb_kvs_t *self, const char *addr, void **sock_p)
{
    for (size_t i = 0; i < self->n_pushes; i++)
        if (!strcmp(self->pushes[i].addr, addr)) {
            self->pushes[i].used = self->call;
            *sock_p = self->pushes[i].sock;
            return 0;
        }
    if (strlen(addr) > S_MAX_ADDRESS_LEN)
        return -EINVAL;
    s_push_trim(self, S_MAX_SOCKETS - 1);
    void *sock = zmq_socket(self->ctx, ZMQ_PUSH);
    if (!sock)
        return -errno;
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(sock, addr) != 0) {
        int rc = -errno;
        zmq_close(sock);
        return rc;
    }
    if (self->n_pushes == self->cap_pushes) {
        self->cap_pushes = self->cap_pushes ? self->cap_pushes * 2 : 16;
        self->pushes = cb_realloc(self->pushes, self->cap_pushes * sizeof *self->pushes);
    }
    self->pushes[self->n_pushes++] = (s_push_t){cb_strdup(addr), sock, self->call};
    *sock_p = sock;
    return 0;
}

static long s_remaining(int64_t deadline)
{
    int64_t left = deadline - cb_clock_mono_ms();
    return left > 0 ? (long)left : 0;
}

//  Sends one frame, waiting for room until deadline. 0, -ETIMEDOUT or a negative errno.
static int s_send(void *sock, const cb_bytes_t *bytes, int64_t deadline)
{
    for (;;) {
        if (zmq_send(sock, bytes->data, bytes->len, ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        long left = s_remaining(deadline);
        if (!left)
            return -ETIMEDOUT;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
        if (zmq_poll(&item, 1, left) < 0 && errno != EINTR)
            return -errno;
    }
}

//  Receives one frame into *msg (initialised by the caller) before deadline.
static int s_recv(cb_kvs_t *self, zmq_msg_t *msg, int64_t deadline)
{
    for (;;) {
        if (zmq_msg_recv(msg, self->pull, ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        long left = s_remaining(deadline);
        if (!left)
            return -ETIMEDOUT;
        zmq_pollitem_t item = {self->pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, left) < 0 && errno != EINTR)
            return -errno;
    }
}

//  --------------------------------------------------------------------------------------
//  Construction

//  Splits list ("tcp://a:6450,tcp://b:6450"; blanks around an address are ignored) into
//  out[0..*n), owned copies. 0, or -EINVAL (nothing freed then: out holds *n copies).
static int s_routing_parse(const char *list, char **out, size_t *n)
{
    *n = 0;
    for (const char *p = list;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (*n == S_MAX_ROUTING || len > S_MAX_ADDRESS_LEN || len <= 6
            || (strncmp(p, "tcp://", 6) && strncmp(p, "ipc://", 6)) || memchr(p, ' ', len))
            return -EINVAL;
        out[(*n)++] = cb_strndup(p, len);
        if (!end)
            return 0;
        p = end + 1;
    }
}

//  Checks a config (but not its routing list) and fills the defaults. 0 or -EINVAL.
static int s_config_check(const cb_kvs_config_t *config, const char **bind_ip, int *timeout_ms)
{
    if (!config || !config->routing)
        return -EINVAL;
    //  Replies are sent to the address we bind, so it must be one a server can connect to.
    *bind_ip = config->bind_ip ? config->bind_ip : "127.0.0.1";
    struct in_addr addr;
    if (inet_pton(AF_INET, *bind_ip, &addr) != 1 || addr.s_addr == htonl(INADDR_ANY))
        return -EINVAL;
    if (config->timeout_ms > S_MAX_TIMEOUT_MS)
        return -EINVAL;
    *timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : S_DEFAULT_TIMEOUT_MS;
    return 0;
}

static uint64_t s_random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)cb_clock_wall_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)cb_clock_mono_us();
    return r;
}

cb_kvs_t *cb_kvs_new(const cb_kvs_config_t *config)
{
    const char *bind_ip;
    int timeout_ms;
    if (s_config_check(config, &bind_ip, &timeout_ms) != 0) {
        errno = EINVAL;
        return NULL;
    }
    cb_kvs_t *self = cb_calloc(1, sizeof *self);
    if (s_routing_parse(config->routing, self->routing, &self->n_routing) != 0) {
        while (self->n_routing)
            cb_free(self->routing[--self->n_routing]);
        cb_free(self);
        errno = EINVAL;
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    uint64_t r = s_random64();
    self->writer_id = config->writer_id ? config->writer_id : ((uint32_t)r | 1);
    //  Ids start at a random counter so that a process that reuses an ephemeral port of an
    //  earlier client cannot match that client's late replies.
    self->counter = (r >> 32) << 8;
    cb_rand_seed(&self->rand, r ^ (uint64_t)cb_clock_mono_us());
    self->n_buckets = 64;
    self->buckets = cb_calloc(self->n_buckets, sizeof *self->buckets);

    int err = 0;
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        err = errno;
        goto fail;
    }
    zmq_ctx_set(self->ctx, ZMQ_IO_THREADS, 1);
    self->pull = zmq_socket(self->ctx, ZMQ_PULL);
    if (!self->pull) {
        err = errno;
        goto fail;
    }
    int zero = 0;
    int64_t max_reply = S_MAX_REPLY_BYTES;
    zmq_setsockopt(self->pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->pull, ZMQ_MAXMSGSIZE, &max_reply, sizeof max_reply);
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", bind_ip);
    if (zmq_bind(self->pull, endpoint) != 0) {
        err = errno;
        goto fail;
    }
    size_t len = sizeof endpoint;
    if (zmq_getsockopt(self->pull, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0) {
        err = errno;
        goto fail;
    }
    self->response_address = cb_strdup(endpoint);
    return self;
fail:
    cb_kvs_destroy(&self);
    errno = err ? err : EIO;
    return NULL;
}

void cb_kvs_destroy(cb_kvs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cb_kvs_t *self = *self_p;
    while (self->n_pushes)
        s_push_close_at(self, self->n_pushes - 1);
    cb_free(self->pushes);
    if (self->pull)
        zmq_close(self->pull);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    s_cache_clear(self);
    cb_free(self->buckets);
    while (self->n_routing)
        cb_free(self->routing[--self->n_routing]);
    s_suspects_clear(self);
    cb_free(self->response_address);
    cb_free(self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------
//  The engine

enum { S_TODO, S_SENT, S_DONE };

typedef struct {
    const char *key;            //  borrowed from the caller
    cb_bytes_t payload;         //  PUT: encoded value, owned
    int kind;                   //  PUT: lattice kind
    int state;
    bool retried;               //  its one retry after WRONG_THREAD is used
    uint32_t cache_size;        //  address_cache_size sent with it
    char *why;                  //  owned reason for its error (or of its last timeout), NULL
                                //  for the errno text
    const char *worker;         //  borrowed: the replica it must go to (level ALL); NULL = any
    char *silent[S_MAX_ATTEMPTS];   //  owned: workers that did not answer it, in order
    size_t n_silent;
    char **fallback;            //  owned: its other cached replicas when one timed out, for
    size_t n_fallback;          //  when the fresh lookup gets no answer; NULL if none
} s_slot_t;

typedef struct {
    char id[48];
    char *worker;               //  owned
    size_t *slots;              //  owned indexes into the call's slots, in request order
    size_t n;
    size_t cap;
    size_t next;                //  where the next answer is looked for first (see below)
    size_t answered;
    bool done;
} s_req_t;

typedef struct {
    int type;                   //  CB_CODEC_GET / CB_CODEC_PUT
    s_slot_t *slots;
    cb_kvs_result_t *results;
    size_t n;
    int rc;                     //  error that stopped the whole call, or 0
} s_call_t;

static void s_slot_fail(s_call_t *call, size_t i, int err, const char *why)
{
    s_slot_t *slot = &call->slots[i];
    slot->state = S_DONE;
    call->results[i].error = err;
    if (why != slot->why) {
        cb_free(slot->why);
        slot->why = why ? cb_strdup(why) : NULL;
    }
    if (err == -ETIMEDOUT && !call->rc)
        call->rc = -ETIMEDOUT;
}

static void s_slot_fallback_free(s_slot_t *slot)
{
    for (size_t k = 0; k < slot->n_fallback; k++)
        cb_free(slot->fallback[k]);
    cb_free(slot->fallback);
    slot->fallback = NULL;
    slot->n_fallback = 0;
}

static bool s_slot_tried(const s_slot_t *slot, const char *worker)
{
    for (size_t k = 0; k < slot->n_silent; k++)
        if (!strcmp(slot->silent[k], worker))
            return true;
    return false;
}

//  The replica of e that slot goes to: at random among those it has not tried in this call
//  and that are not suspected; else among those it has not tried; else, while it has had
//  only one attempt, any (a key with one replica is retried once on it). -1: every replica
//  failed it already.
static int s_pick(cb_kvs_t *self, const s_entry_t *e, const s_slot_t *slot, int64_t now)
{
    size_t fresh[16], untried[16], n_fresh = 0, n_untried = 0;
    for (size_t i = 0; i < e->n && n_untried < 16; i++) {
        if (s_slot_tried(slot, e->addrs[i]))
            continue;
        untried[n_untried++] = i;
        if (!s_suspected(self, e->addrs[i], now))
            fresh[n_fresh++] = i;
    }
    if (n_fresh)
        return (int)fresh[n_fresh > 1 ? cb_rand_below(&self->rand, n_fresh) : 0];
    if (n_untried)
        return (int)untried[n_untried > 1 ? cb_rand_below(&self->rand, n_untried) : 0];
    if (slot->n_silent < 2)
        return (int)(e->n > 1 ? cb_rand_below(&self->rand, e->n) : 0);
    return -1;
}

//  "no replica answered within 500 ms (tried tcp://a, tcp://b)" into buf; with one replica
//  tried, "no answer from tcp://a within 500 ms".
static void s_silent_why(const cb_kvs_t *self, const s_slot_t *slot, char *buf, size_t cap)
{
    bool one = true;
    for (size_t k = 1; k < slot->n_silent && one; k++)
        one = !strcmp(slot->silent[k], slot->silent[0]);
    if (one && slot->n_silent) {
        snprintf(buf, cap, "no answer from %.250s within %d ms", slot->silent[0], self->timeout_ms);
        return;
    }
    size_t o = (size_t)snprintf(buf, cap, "no replica answered within %d ms (tried",
                                self->timeout_ms);
    for (size_t k = 0; k < slot->n_silent && o < cap; k++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = !strcmp(slot->silent[j], slot->silent[k]);
        if (!seen)
            o += (size_t)snprintf(buf + o, cap - o, "%s %.120s", k ? "," : "", slot->silent[k]);
    }
    if (o < cap)
        snprintf(buf + o, cap - o, ")");
}

static int s_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

//  The end of a wait that starts now: timeout_ms later, but not past the call's backstop.
static int64_t s_wait_deadline(const cb_kvs_t *self)
{
    int64_t deadline = cb_clock_mono_ms() + self->timeout_ms;
    return deadline < self->call_deadline ? deadline : self->call_deadline;
}

//  Starts a call: no error yet, sockets pinned to it, every routing address worth asking,
//  and the backstop of kvs.h's bound.
static void s_call_begin(cb_kvs_t *self)
{
    self->error[0] = '\0';
    self->call++;
    self->routing_failed = 0;
    self->call_deadline = cb_clock_mono_ms()
                          + (int64_t)(S_MAX_ATTEMPTS + self->n_routing) * self->timeout_ms;
}

//  One KeyAddressRequest for want[0..n) to routing address addr, and its answer put in the
//  address cache. 0, -ETIMEDOUT (not sent, or not answered, in time), -EPROTO, or the
//  routing tier's error (-EHOSTUNREACH for NO_SERVERS).
static int s_lookup(cb_kvs_t *self, const char *addr, const char **want, size_t n)
{
    char id[48];
    s_next_id(self, id, sizeof id);
    cb_bytes_t msg = {0};
    int rc = cb_codec_address_request(want, n, self->response_address, id, &msg);
    assert(rc == 0);
    int64_t deadline = s_wait_deadline(self);
    void *sock;
    rc = s_push_get(self, addr, &sock);
    if (rc == 0)
        rc = s_send(sock, &msg, deadline);
    cb_bytes_fini(&msg);
    self->stats.lookups++;
    while (rc == 0) {
        zmq_msg_t zmsg;
        zmq_msg_init(&zmsg);
        rc = s_recv(self, &zmsg, deadline);
        if (rc) {
            zmq_msg_close(&zmsg);
            break;
        }
        const uint8_t *data = zmq_msg_data(&zmsg);
        size_t len = zmq_msg_size(&zmsg);
        const char *rid;
        size_t rid_len;
        cb_codec_addresses_t addrs;
        if (cb_codec_response_id(data, len, &rid, &rid_len) != 0 || rid_len != strlen(id)
            || memcmp(rid, id, rid_len) != 0) {
            self->stats.discarded++;            //  a late reply, or not for us
            zmq_msg_close(&zmsg);
            continue;
        }
        rc = cb_codec_addresses_decode(data, len, &addrs);
        zmq_msg_close(&zmsg);
        if (rc)
            break;
        if (addrs.error == CB_ANNA_NO_ERROR)
            for (size_t i = 0; i < addrs.len; i++)
                s_cache_set(self, addrs.addresses[i].key,
                            (const char *const *)addrs.addresses[i].ips, addrs.addresses[i].n_ips);
        rc = s_error_from_anna(addrs.error);
        cb_codec_addresses_fini(&addrs);
        return rc;
    }
    if (rc == -ETIMEDOUT)
        self->stats.timeouts++;
    return rc == -EPROTO ? rc : -ETIMEDOUT;
}

//  Step 1: fills the address cache for every TODO key. The routing addresses are asked in
//  turn from the current one: one that does not take or answer the request in time is
//  skipped for the rest of the call and the next one becomes current (for later calls too).
//  When every one failed, or one answered with an error, every TODO key that needed it fails
//  and the error is returned (and becomes the call's error); a key the routing tier has no
//  address for fails alone (-EHOSTUNREACH).
static int s_resolve(cb_kvs_t *self, s_call_t *call)
{
    size_t missing = 0;
    for (size_t i = 0; i < call->n; i++)
        if (call->slots[i].state == S_TODO && !s_cache_find(self, call->slots[i].key))
            missing++;
    if (!missing)
        return 0;
    if (self->n_keys + missing > S_MAX_CACHED_KEYS)
        s_cache_clear(self);
    const char **want = cb_malloc(call->n * sizeof *want);
    size_t nw = 0;
    for (size_t i = 0; i < call->n; i++)
        if (call->slots[i].state == S_TODO && !s_cache_find(self, call->slots[i].key))
            want[nw++] = call->slots[i].key;
    qsort(want, nw, sizeof *want, s_key_cmp);
    size_t uniq = 0;
    for (size_t i = 0; i < nw; i++)
        if (!uniq || strcmp(want[uniq - 1], want[i]))
            want[uniq++] = want[i];

    int rc = -ETIMEDOUT;
    const char *addr = self->routing[self->routing_cur];
    for (size_t tried = 0; tried < self->n_routing; tried++) {
        size_t r = self->routing_cur;
        addr = self->routing[r];
        if (self->routing_failed & (1u << r)) {
            self->routing_cur = (r + 1) % self->n_routing;
            continue;
        }
        rc = s_lookup(self, addr, want, uniq);
        if (rc != -ETIMEDOUT)
            break;
        //  Drop what is still queued for it: a routing tier that comes back should not
        //  answer a backlog of lookups nobody waits for.
        s_push_close(self, addr);
        self->routing_failed |= 1u << r;
        self->routing_cur = (r + 1) % self->n_routing;
    }
    cb_free(want);
    if (rc == 0) {
        for (size_t i = 0; i < call->n; i++)
            if (call->slots[i].state == S_TODO && !s_cache_find(self, call->slots[i].key))
                s_slot_fail(call, i, -EHOSTUNREACH, "the routing tier has no server for it");
        return 0;
    }
    char why[400];
    if (rc == -ETIMEDOUT && self->n_routing == 1) {
        snprintf(why, sizeof why, "the routing tier at %s did not answer within %d ms", addr,
                 self->timeout_ms);
    } else if (rc == -ETIMEDOUT) {
        size_t o = (size_t)snprintf(why, sizeof why,
                                    "none of the %zu routing addresses answered within %d ms (",
                                    self->n_routing, self->timeout_ms);
        for (size_t r = 0; r < self->n_routing && o < sizeof why; r++)
            o += (size_t)snprintf(why + o, sizeof why - o, "%s%.100s", r ? ", " : "",
                                  self->routing[r]);
        if (o < sizeof why)
            snprintf(why + o, sizeof why - o, ")");
    } else if (rc == -EHOSTUNREACH) {
        snprintf(why, sizeof why, "the routing tier at %s knows no servers", addr);
    } else if (rc == -EPROTO) {
        snprintf(why, sizeof why, "malformed reply from the routing tier at %s", addr);
    } else {
        snprintf(why, sizeof why, "routing tier %s: %s", addr, cb_strerror(rc));
    }
    //  Keys with cached addresses do not need the routing tier: they go ahead. So do keys
    //  being retried after a timeout that had other replicas cached: they get those back.
    bool failed = false;
    for (size_t i = 0; i < call->n; i++) {
        s_slot_t *slot = &call->slots[i];
        if (slot->state != S_TODO || s_cache_find(self, slot->key))
            continue;
        if (slot->n_fallback) {
            s_cache_set(self, slot->key, (const char *const *)slot->fallback, slot->n_fallback);
            s_slot_fallback_free(slot);
        } else {
            s_slot_fail(call, i, rc, why);
            failed = true;
        }
    }
    if (failed)
        call->rc = rc;
    return failed ? rc : 0;
}

//  Applies one answer (a reply tuple, or a response-level error) to slot i of req.
static void s_settle(cb_kvs_t *self, s_call_t *call, s_req_t *req, size_t i, int anna,
                     const char *message, bool invalidate, lat_t *value, int value_rc)
{
    s_slot_t *slot = &call->slots[i];
    if (invalidate) {
        //  Our address list for the key is stale (replication changed): the answer still
        //  counts, the next request asks the routing tier again.
        s_cache_drop_key(self, slot->key);
        self->stats.invalidations++;
    }
    req->answered++;
    if (req->answered == req->n)
        req->done = true;
    if (anna == CB_ANNA_WRONG_THREAD) {
        self->stats.wrong_thread++;
        s_cache_drop_key(self, slot->key);
        if (!slot->retried) {
            slot->retried = true;
            slot->state = S_TODO;
            self->stats.retries++;
        } else {
            s_slot_fail(call, i, -EAGAIN, "the server answered WRONG_THREAD after a fresh address lookup");
        }
        return;
    }
    if (anna != CB_ANNA_NO_ERROR) {
        s_slot_fail(call, i, s_error_from_anna(anna), message);
        return;
    }
    if (call->type == CB_CODEC_GET) {
        if (!value || value->kind == LAT_NONE) {
            s_slot_fail(call, i, -EPROTO, value_rc ? "the server sent a value that does not decode"
                                                   : "the server sent no value");
            return;
        }
        call->results[i].value = *value;            //  moved: the reply no longer owns it
        lat_init(value, LAT_NONE);
    }
    slot->state = S_DONE;
    call->results[i].error = 0;
}

//  Handles one reply of the current attempt. Returns false if it matches no request.
static bool s_handle_reply(cb_kvs_t *self, s_call_t *call, s_req_t *reqs, size_t n_reqs,
                           const uint8_t *data, size_t len)
{
    const char *rid;
    size_t rid_len;
    if (cb_codec_response_id(data, len, &rid, &rid_len) != 0)
        return false;
    s_req_t *req = NULL;
    for (size_t r = 0; r < n_reqs && !req; r++)
        if (!reqs[r].done && strlen(reqs[r].id) == rid_len && !memcmp(reqs[r].id, rid, rid_len))
            req = &reqs[r];
    if (!req)
        return false;
    s_suspect_clear(self, req->worker);             //  it answers: it is alive
    cb_codec_reply_t reply;
    if (cb_codec_reply_decode(data, len, &reply) != 0) {
        char why[400];
        snprintf(why, sizeof why, "malformed reply from %s", req->worker);
        for (size_t j = 0; j < req->n; j++)
            if (call->slots[req->slots[j]].state == S_SENT)
                s_slot_fail(call, req->slots[j], -EPROTO, why);
        req->done = true;
        return true;
    }
    if (reply.len == 0 && reply.error != CB_ANNA_NO_ERROR) {
        //  An error for the request as a whole applies to each of its keys.
        for (size_t j = 0; j < req->n; j++)
            if (call->slots[req->slots[j]].state == S_SENT)
                s_settle(self, call, req, req->slots[j], reply.error, reply.error_message,
                         false, NULL, 0);
    }
    for (size_t t = 0; t < reply.len; t++) {
        cb_codec_reply_tuple_t *tuple = &reply.tuples[t];
        //  Keys may be answered in any order, over several responses with this id, and a key
        //  asked twice gets its answers in turn. Servers answer in request order, so the
        //  search starts after the last match: a batch of n keys costs O(n), not O(n^2).
        for (size_t k = 0; k < req->n; k++) {
            size_t j = (req->next + k) % req->n;
            size_t i = req->slots[j];
            if (call->slots[i].state == S_SENT && !strcmp(call->slots[i].key, tuple->key)) {
                req->next = (j + 1) % req->n;
                s_settle(self, call, req, i, tuple->error, tuple->error_message,
                         tuple->invalidate, &tuple->value, tuple->value_rc);
                break;
            }
        }
    }
    cb_codec_reply_fini(&reply);
    return true;
}

//  Steps 2 and 3: sends the TODO keys (all of which have cached addresses now), one
//  KeyRequest per worker, and collects the answers until deadline.
static void s_attempt(cb_kvs_t *self, s_call_t *call, int64_t deadline)
{
    s_req_t *reqs = NULL;
    size_t n_reqs = 0;
    int64_t now = cb_clock_mono_ms();
    for (size_t i = 0; i < call->n; i++) {
        s_slot_t *slot = &call->slots[i];
        if (slot->state != S_TODO)
            continue;
        const s_entry_t *e = s_cache_find(self, slot->key);
        if (!e && !slot->worker) {                  //  the lookup cleared a full cache
            s_slot_fail(call, i, -EHOSTUNREACH, "the routing tier has no server for it");
            continue;
        }
        const char *worker = slot->worker;
        if (!worker) {
            int pick = s_pick(self, e, slot, now);
            if (pick < 0) {                         //  the fresh list holds only silent ones
                char why[400];
                s_silent_why(self, slot, why, sizeof why);
                s_slot_fail(call, i, -ETIMEDOUT, why);
                continue;
            }
            worker = e->addrs[pick];
        }
        slot->cache_size = e ? (uint32_t)e->n : 0;
        size_t r = 0;
        while (r < n_reqs && strcmp(reqs[r].worker, worker))
            r++;
        if (r == n_reqs) {
            reqs = cb_realloc(reqs, (n_reqs + 1) * sizeof *reqs);
            memset(&reqs[r], 0, sizeof reqs[r]);
            reqs[r].worker = cb_strdup(worker);
            n_reqs++;
        }
        if (reqs[r].n == reqs[r].cap) {
            reqs[r].cap = reqs[r].cap ? reqs[r].cap * 2 : 4;
            reqs[r].slots = cb_realloc(reqs[r].slots, reqs[r].cap * sizeof *reqs[r].slots);
        }
        reqs[r].slots[reqs[r].n++] = i;
        slot->state = S_SENT;
    }

    size_t outstanding = 0;
    for (size_t r = 0; r < n_reqs; r++) {
        s_req_t *req = &reqs[r];
        cb_codec_tuple_t *tuples = cb_calloc(req->n, sizeof *tuples);
        for (size_t j = 0; j < req->n; j++) {
            const s_slot_t *slot = &call->slots[req->slots[j]];
            tuples[j] = (cb_codec_tuple_t){slot->key, slot->kind, slot->payload.data,
                                           slot->payload.len, slot->cache_size};
        }
        s_next_id(self, req->id, sizeof req->id);
        cb_bytes_t msg = {0};
        int rc = cb_codec_key_request(call->type, tuples, req->n, self->response_address, req->id, &msg);
        assert(rc == 0);
        cb_free(tuples);
        void *sock;
        rc = s_push_get(self, req->worker, &sock);
        if (rc) {
            char why[400];
            snprintf(why, sizeof why, "cannot send to worker '%.250s': %s", req->worker, cb_strerror(rc));
            for (size_t j = 0; j < req->n; j++) {
                s_cache_drop_key(self, call->slots[req->slots[j]].key);
                s_slot_fail(call, req->slots[j], -EHOSTUNREACH, why);
            }
            req->done = true;
        } else {
            //  A send that fails (full queue until the deadline) is left to the timeout path:
            //  either way the worker is not taking requests.
            (void)s_send(sock, &msg, deadline);
            self->stats.requests++;
            outstanding++;
        }
        cb_bytes_fini(&msg);
    }

    while (outstanding) {
        zmq_msg_t zmsg;
        zmq_msg_init(&zmsg);
        int rc = s_recv(self, &zmsg, deadline);
        if (rc) {
            zmq_msg_close(&zmsg);
            break;
        }
        if (!s_handle_reply(self, call, reqs, n_reqs, zmq_msg_data(&zmsg), zmq_msg_size(&zmsg)))
            self->stats.discarded++;
        zmq_msg_close(&zmsg);
        outstanding = 0;
        for (size_t r = 0; r < n_reqs; r++)
            outstanding += !reqs[r].done;
    }

    for (size_t r = 0; r < n_reqs; r++) {
        s_req_t *req = &reqs[r];
        if (!req->done) {
            //  Suspect the worker. Its keys go again, to another replica if they have one
            //  left to try; then every key cached on it is forgotten, with its socket (and
            //  whatever is still queued on it).
            self->stats.timeouts++;
            s_suspect_add(self, req->worker, cb_clock_mono_ms());
            char why[400];
            snprintf(why, sizeof why, "no answer from %.250s within %d ms", req->worker,
                     self->timeout_ms);
            for (size_t j = 0; j < req->n; j++) {
                size_t i = req->slots[j];
                s_slot_t *slot = &call->slots[i];
                if (slot->state != S_SENT)
                    continue;
                if (slot->worker) {                 //  level ALL: that replica must answer
                    s_slot_fail(call, i, -ETIMEDOUT, why);
                    continue;
                }
                if (slot->n_silent < S_MAX_ATTEMPTS)
                    slot->silent[slot->n_silent++] = cb_strdup(req->worker);
                //  Another attempt if one is left and a replica it has not tried may answer:
                //  one cached, or (after its first attempt only) one the lookup may bring.
                const s_entry_t *e = s_cache_find(self, slot->key);
                bool untried = slot->n_silent < 2;
                for (size_t k = 0; e && k < e->n && !untried; k++)
                    untried = !s_slot_tried(slot, e->addrs[k]);
                if (slot->n_silent < S_MAX_ATTEMPTS && untried) {
                    s_slot_fallback_free(slot);
                    for (size_t k = 0; e && k < e->n; k++)
                        if (!s_slot_tried(slot, e->addrs[k])) {
                            slot->fallback = cb_realloc(slot->fallback, (slot->n_fallback + 1)
                                                                            * sizeof *slot->fallback);
                            slot->fallback[slot->n_fallback++] = cb_strdup(e->addrs[k]);
                        }
                    slot->state = S_TODO;
                    cb_free(slot->why);
                    slot->why = cb_strdup(why);
                    self->stats.retries++;
                } else if (slot->n_silent > 1) {
                    char all[400];
                    s_silent_why(self, slot, all, sizeof all);
                    s_slot_fail(call, i, -ETIMEDOUT, all);
                } else {
                    s_slot_fail(call, i, -ETIMEDOUT, why);
                }
            }
            s_cache_drop_worker(self, req->worker);
            s_push_close(self, req->worker);
        }
        cb_free(req->worker);
        cb_free(req->slots);
    }
    cb_free(reqs);
}

//  Runs one call over keys[0..n) (values for PUT) and fills results. See kvs.h. workers,
//  if not NULL, names the replica each key must go to (borrowed; level ALL). The caller has
//  begun the call (s_call_begin).
static int s_run(cb_kvs_t *self, int type, const char *const *keys, const lat_t *values,
                 size_t n, cb_kvs_result_t *results, const char *const *workers)
{
    assert(self);
    assert(n == 0 || (keys && results));
    s_call_t call = {type, cb_calloc(n ? n : 1, sizeof(s_slot_t)), results, n, 0};
    for (size_t i = 0; i < n; i++) {
        assert(keys[i]);
        results[i].error = 0;
        lat_init(&results[i].value, LAT_NONE);
        call.slots[i].key = keys[i];
        call.slots[i].state = S_TODO;
        call.slots[i].worker = workers ? workers[i] : NULL;
        if (type == CB_CODEC_PUT) {
            call.slots[i].kind = values[i].kind;
            if (wire_encode(&values[i], &call.slots[i].payload) != 0)
                s_slot_fail(&call, i, -EINVAL, "the value has no lattice kind");
        }
    }
    for (;;) {
        bool todo = false;
        for (size_t i = 0; i < n && !todo; i++)
            todo = call.slots[i].state == S_TODO;
        if (!todo)
            break;
        if (cb_clock_mono_ms() >= self->call_deadline) {
            //  The backstop (kvs.h's bound): no attempt is started without time for it.
            for (size_t i = 0; i < n; i++)
                if (call.slots[i].state == S_TODO)
                    s_slot_fail(&call, i, -ETIMEDOUT, call.slots[i].why ? call.slots[i].why
                                                      : "the call ran out of time");
            break;
        }
        s_resolve(self, &call);
        s_attempt(self, &call, s_wait_deadline(self));
    }
    bool reported = false;
    for (size_t i = 0; i < n; i++) {
        if (results[i].error && !reported) {
            s_set_error(self, keys[i], results[i].error, call.slots[i].why);
            reported = true;
        }
        cb_bytes_fini(&call.slots[i].payload);
        cb_free(call.slots[i].why);
        for (size_t k = 0; k < call.slots[i].n_silent; k++)
            cb_free(call.slots[i].silent[k]);
        s_slot_fallback_free(&call.slots[i]);
    }
    cb_free(call.slots);
    s_push_trim(self, S_MAX_SOCKETS);
    return call.rc;
}

//  --------------------------------------------------------------------------------------
//  The API

int cb_kvs_get(cb_kvs_t *self, const char *key, lat_t *out)
{
    cb_kvs_result_t result;
    s_call_begin(self);
    s_run(self, CB_CODEC_GET, &key, NULL, 1, &result, NULL);
    *out = result.value;
    return result.error;
}

int cb_kvs_put(cb_kvs_t *self, const char *key, const lat_t *value)
{
    cb_kvs_result_t result;
    s_call_begin(self);
    s_run(self, CB_CODEC_PUT, &key, value, 1, &result, NULL);
    lat_fini(&result.value);
    return result.error;
}

int cb_kvs_put_lww(cb_kvs_t *self, const char *key, const void *data, size_t len)
{
    lat_t value;
    lat_init(&value, LAT_LWW);
    lat_lww_assign(&value, cb_clock_lww_now(), self->writer_id, data, len);
    int rc = cb_kvs_put(self, key, &value);
    lat_fini(&value);
    return rc;
}

int cb_kvs_get_many(cb_kvs_t *self, const char *const *keys, size_t n, cb_kvs_result_t *results)
{
    s_call_begin(self);
    return s_run(self, CB_CODEC_GET, keys, NULL, n, results, NULL);
}

int cb_kvs_put_many(cb_kvs_t *self, const char *const *keys, const lat_t *values, size_t n,
                    cb_kvs_result_t *results)
{
    assert(n == 0 || values);
    s_call_begin(self);
    return s_run(self, CB_CODEC_PUT, keys, values, n, results, NULL);
}

//  Level ALL, one round: the key's replicas (cached, else from the routing tier), then one
//  request per replica, all in flight together. *changed is set when the call learned that
//  the replica set it used is stale (an answer said invalidate): the caller goes again.
static int s_all_round(cb_kvs_t *self, int type, const char *key, const lat_t *value,
                       lat_t *out, bool *changed)
{
    *changed = false;
    s_call_begin(self);
    cb_kvs_result_t probe_result = {0};
    s_call_t probe = {type, cb_calloc(1, sizeof(s_slot_t)), &probe_result, 1, 0};
    probe.slots[0].key = key;
    probe.slots[0].state = S_TODO;
    s_resolve(self, &probe);
    const s_entry_t *e = s_cache_find(self, key);
    if (!e) {
        int rc = probe_result.error ? probe_result.error : -EHOSTUNREACH;
        s_set_error(self, key, rc, probe.slots[0].why ? probe.slots[0].why
                                                      : "the routing tier has no server for it");
        cb_free(probe.slots[0].why);
        cb_free(probe.slots);
        return rc;
    }
    cb_free(probe.slots[0].why);
    cb_free(probe.slots);
    size_t n = e->n;
    char **workers = cb_calloc(n, sizeof *workers);
    const char **keys = cb_calloc(n, sizeof *keys);
    lat_t *values = type == CB_CODEC_PUT ? cb_calloc(n, sizeof *values) : NULL;
    cb_kvs_result_t *results = cb_calloc(n, sizeof *results);
    for (size_t i = 0; i < n; i++) {
        workers[i] = cb_strdup(e->addrs[i]);    //  the cache may change during the call
        keys[i] = key;
        if (values)
            values[i] = *value;                 //  shallow: only read (encoded) by s_run
    }
    uint64_t invalidations = self->stats.invalidations;
    s_run(self, type, keys, values, n, results, (const char *const *)workers);
    *changed = self->stats.invalidations != invalidations;
    //  Every replica must answer; a GET merges what they hold (KEY_DNE only if none holds
    //  the key).
    int rc = 0;
    size_t failed = n;
    if (out)
        lat_init(out, LAT_NONE);
    for (size_t i = 0; i < n; i++) {
        int err = results[i].error;
        if (type == CB_CODEC_GET && err == 0) {
            if (out->kind == LAT_NONE) {
                *out = results[i].value;
                lat_init(&results[i].value, LAT_NONE);
            } else if (lat_merge(out, &results[i].value) < 0) {
                err = -EINVAL;
                snprintf(self->error, sizeof self->error,
                         "key replicas hold values of different lattice kinds");
            }
        }
        if (type == CB_CODEC_GET && err == -ENOENT)
            continue;
        if (err && !rc) {
            rc = err;
            failed = i;
        }
    }
    if (type == CB_CODEC_GET && rc == 0 && out->kind == LAT_NONE)
        rc = -ENOENT;
    if (rc && out)
        lat_fini(out);
    if (rc == 0)
        self->error[0] = '\0';
    else if (rc == -ENOENT && failed == n)
        s_set_error(self, key, rc, NULL);
    else if (rc != -EINVAL) {
        //  s_run reported the first failed replica; say which one it was.
        char first[sizeof self->error];
        snprintf(first, sizeof first, "%s", self->error);
        snprintf(self->error, sizeof self->error, "replica %.200s: %.280s", workers[failed],
                 first);
    }
    for (size_t i = 0; i < n; i++) {
        lat_fini(&results[i].value);
        cb_free(workers[i]);
    }
    cb_free(results);
    cb_free(values);
    cb_free(keys);
    cb_free(workers);
    return rc;
}

//  Level ALL: a round, and a second one with the fresh replica set if the first used a stale
//  one (merging again is harmless).
static int s_run_all(cb_kvs_t *self, int type, const char *key, const lat_t *value,
                     lat_t *out)
{
    assert(self && key);
    bool changed;
    int rc = s_all_round(self, type, key, value, out, &changed);
    if (changed) {
        if (rc == 0 && out)
            lat_fini(out);
        rc = s_all_round(self, type, key, value, out, &changed);
    }
    return rc;
}

int cb_kvs_put_level(cb_kvs_t *self, const char *key, const lat_t *value, cb_kvs_level_t level)
{
    if (level == CB_KVS_ONE)
        return cb_kvs_put(self, key, value);
    assert(value);
    return s_run_all(self, CB_CODEC_PUT, key, value, NULL);
}

int cb_kvs_get_level(cb_kvs_t *self, const char *key, cb_kvs_level_t level, lat_t *out)
{
    assert(out);
    if (level == CB_KVS_ONE)
        return cb_kvs_get(self, key, out);
    return s_run_all(self, CB_CODEC_GET, key, NULL, out);
}

const char *cb_kvs_last_error(const cb_kvs_t *self)
{
    return self->error;
}

uint32_t cb_kvs_writer_id(const cb_kvs_t *self)
{
    return self->writer_id;
}

void cb_kvs_invalidate_all(cb_kvs_t *self)
{
    s_cache_clear(self);
}

const char *cb_kvs_response_address(const cb_kvs_t *self)
{
    return self->response_address;
}

int cb_kvs_timeout_ms(const cb_kvs_t *self)
{
    return self->timeout_ms;
}

void cb_kvs_stats(const cb_kvs_t *self, cb_kvs_stats_t *out)
{
    *out = self->stats;
}

size_t cb_kvs_cache_count(const cb_kvs_t *self, const char *key)
{
    const s_entry_t *e = s_cache_find(self, key);
    return e ? e->n : 0;
}

const char *cb_kvs_cache_addr(const cb_kvs_t *self, const char *key, size_t i)
{
    const s_entry_t *e = s_cache_find(self, key);
    return e && i < e->n ? e->addrs[i] : NULL;
}

void cb_kvs_cache_set(cb_kvs_t *self, const char *key, const char *const *addrs, size_t n)
{
    s_cache_set(self, key, addrs, n);
}

//  --------------------------------------------------------------------------------------
//  @selftest
//  Only what needs no peer: config validation, error mapping, request ids and the matching
//  of replies to them, the address cache, and a timeout when nothing listens. Every protocol
//  path a real server can produce is tested against anna-server itself
//  (tests/system/client_api.c); the few only a broken peer produces, against the fault
//  injector of tests/system/client_faults.c.

static bool s_lww_is(const lat_t *v, const char *text)
{
    return v->kind == LAT_LWW && v->u.lww.value.len == strlen(text)
           && !memcmp(v->u.lww.value.data, text, strlen(text));
}

static void s_test_pure(bool verbose)
{
    if (verbose)
        printf(" * kvs: config validation, error mapping, ids, address cache\n");
    cb_kvs_config_t c = {0};
    errno = 0;
    assert(!cb_kvs_new(NULL) && errno == EINVAL);
    assert(!cb_kvs_new(&c) && errno == EINVAL);
    const char *bad_routing[] = {"", "tcp://", "http://127.0.0.1:6450", "127.0.0.1:6450"};
    for (size_t i = 0; i < sizeof bad_routing / sizeof *bad_routing; i++) {
        c.routing = bad_routing[i];
        errno = 0;
        assert(!cb_kvs_new(&c) && errno == EINVAL);
    }
    //  Routing lists: up to 16 addresses, each checked alone; blanks around them ignored.
    const char *bad_list[] = {"tcp://a:1,", ",tcp://a:1", "tcp://a:1,,tcp://b:1",
                              "tcp://a:1,http://b:1", "tcp://a :1",
                              "tcp://1:1,tcp://2:1,tcp://3:1,tcp://4:1,tcp://5:1,tcp://6:1,"
                              "tcp://7:1,tcp://8:1,tcp://9:1,tcp://10:1,tcp://11:1,tcp://12:1,"
                              "tcp://13:1,tcp://14:1,tcp://15:1,tcp://16:1,tcp://17:1"};
    for (size_t i = 0; i < sizeof bad_list / sizeof *bad_list; i++) {
        c.routing = bad_list[i];
        errno = 0;
        assert(!cb_kvs_new(&c) && errno == EINVAL);
    }
    c.routing = " tcp://127.0.0.1:1 ,\tipc:///tmp/x,tcp://127.0.0.2:1";
    cb_kvs_t *listed = cb_kvs_new(&c);
    assert(listed && listed->n_routing == 3 && !strcmp(listed->routing[0], "tcp://127.0.0.1:1")
           && !strcmp(listed->routing[1], "ipc:///tmp/x")
           && !strcmp(listed->routing[2], "tcp://127.0.0.2:1"));
    cb_kvs_destroy(&listed);
    c.routing = "tcp://127.0.0.1:1";
    const char *bad_ip[] = {"0.0.0.0", "localhost", "1.2.3", "*", "::1", ""};
    for (size_t i = 0; i < sizeof bad_ip / sizeof *bad_ip; i++) {
        c.bind_ip = bad_ip[i];
        errno = 0;
        assert(!cb_kvs_new(&c) && errno == EINVAL);
    }
    c.bind_ip = NULL;
    c.timeout_ms = S_MAX_TIMEOUT_MS + 1;
    assert(!cb_kvs_new(&c) && errno == EINVAL);
    c.timeout_ms = 0;
    cb_kvs_t *kvs = cb_kvs_new(&c);
    assert(kvs && cb_kvs_timeout_ms(kvs) == S_DEFAULT_TIMEOUT_MS && cb_kvs_writer_id(kvs) != 0);
    assert(!strncmp(cb_kvs_response_address(kvs), "tcp://127.0.0.1:", 16));
    assert(!strcmp(cb_kvs_last_error(kvs), ""));

    //  Ids are "<writer>:<counter>" and never repeat.
    char id1[48], id2[48], want[48];
    s_next_id(kvs, id1, sizeof id1);
    s_next_id(kvs, id2, sizeof id2);
    assert(strcmp(id1, id2));
    snprintf(want, sizeof want, "%u:", cb_kvs_writer_id(kvs));
    assert(!strncmp(id1, want, strlen(want)) && !strncmp(id2, want, strlen(want)));

    //  The address cache: set, count, drop by key, drop by worker, growth.
    const char *ab[] = {"tcp://a:1", "tcp://b:1"};
    cb_kvs_cache_set(kvs, "k1", ab, 2);
    cb_kvs_cache_set(kvs, "k2", ab + 1, 1);
    cb_kvs_cache_set(kvs, "k3", ab, 1);
    assert(cb_kvs_cache_count(kvs, "k1") == 2 && !strcmp(cb_kvs_cache_addr(kvs, "k1", 1), "tcp://b:1"));
    assert(!cb_kvs_cache_addr(kvs, "k1", 2) && !cb_kvs_cache_addr(kvs, "nope", 0));
    s_cache_drop_worker(kvs, "tcp://b:1");          //  k1 and k2 go, k3 stays
    assert(!cb_kvs_cache_count(kvs, "k1") && !cb_kvs_cache_count(kvs, "k2"));
    assert(cb_kvs_cache_count(kvs, "k3") == 1);
    cb_kvs_cache_set(kvs, "k3", NULL, 0);
    assert(!cb_kvs_cache_count(kvs, "k3") && kvs->n_keys == 0);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        cb_kvs_cache_set(kvs, key, ab, 1 + (size_t)(i % 2));
    }
    assert(kvs->n_keys == 1000 && kvs->n_buckets >= 1000);
    assert(cb_kvs_cache_count(kvs, "key999") == 2 && cb_kvs_cache_count(kvs, "key998") == 1);
    cb_kvs_invalidate_all(kvs);
    assert(kvs->n_keys == 0 && !cb_kvs_cache_count(kvs, "key999"));
    cb_kvs_destroy(&kvs);
    cb_kvs_destroy(&kvs);                           //  idempotent
    assert(!kvs);

    c.writer_id = 77;
    c.timeout_ms = 250;
    kvs = cb_kvs_new(&c);
    assert(kvs && cb_kvs_writer_id(kvs) == 77 && cb_kvs_timeout_ms(kvs) == 250);

    //  Error mapping, AnnaError -> negative errno, and the text of the last error.
    int map[][2] = {{CB_ANNA_NO_ERROR, 0}, {CB_ANNA_KEY_DNE, -ENOENT},
                    {CB_ANNA_WRONG_THREAD, -EAGAIN}, {CB_ANNA_TIMEOUT, -ETIMEDOUT},
                    {CB_ANNA_LATTICE, -EINVAL}, {CB_ANNA_NO_SERVERS, -EHOSTUNREACH},
                    {CB_ANNA_BAD_REQUEST, -EBADMSG}, {CB_ANNA_TOO_LARGE, -EMSGSIZE},
                    {99, -EPROTO}, {-1, -EPROTO}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        assert(s_error_from_anna(map[i][0]) == map[i][1]);
    s_set_error(kvs, "x", -ENOENT, "ignored");
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'x' does not exist"));
    s_set_error(kvs, "k", -EINVAL, "key holds SET, not LWW");
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'k': key holds SET, not LWW"));
    s_set_error(kvs, "k", -EINVAL, "key k holds SET, not LWW");
    assert(!strcmp(cb_kvs_last_error(kvs), "key k holds SET, not LWW"));
    s_set_error(kvs, "k", -EINVAL, "key 'k': bad");
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'k': bad"));
    s_set_error(kvs, "k", -EINVAL, "key kk holds SET, not LWW");
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'k': key kk holds SET, not LWW"));
    s_set_error(kvs, "k", -EMSGSIZE, NULL);
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'k': value too large"));
    s_set_error(kvs, "a'b\x01", -EBADMSG, "bad\nline");
    assert(!strcmp(cb_kvs_last_error(kvs), "key 'a\\x27b\\x01': bad?line"));
    char long_key[200], quoted[300];
    memset(long_key, 'z', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    s_quote_key(long_key, quoted, sizeof quoted);
    assert(strlen(quoted) == 67 && !strcmp(quoted + 64, "..."));
    s_quote_key("\xff\xfe", quoted, 8);             //  a tiny buffer is cut, not overrun
    assert(strlen(quoted) < 8);

    //  Nothing listens on port 1: the lookup times out once, the call fails with -ETIMEDOUT
    //  after about one timeout, and the value is left empty.
    lat_t v;
    int64_t t0 = cb_clock_mono_ms();
    assert(cb_kvs_get(kvs, "k", &v) == -ETIMEDOUT && v.kind == LAT_NONE);
    int64_t took = cb_clock_mono_ms() - t0;
    assert(took >= 240 && took < 1500);
    assert(strstr(cb_kvs_last_error(kvs), "routing tier at tcp://127.0.0.1:1 did not answer within 250 ms"));
    cb_kvs_stats_t st;
    cb_kvs_stats(kvs, &st);
    assert(st.lookups == 1 && st.timeouts == 1 && st.requests == 0);
    //  PUT of a value without a kind fails before anything is sent.
    lat_t none;
    lat_init(&none, LAT_NONE);
    assert(cb_kvs_put(kvs, "k", &none) == -EINVAL);
    cb_kvs_stats(kvs, &st);
    assert(st.lookups == 1);
    assert(cb_kvs_get_many(kvs, NULL, 0, NULL) == 0);
    cb_kvs_destroy(&kvs);
}

//  Encodes a GET reply with id and one tuple (key, LWW text), fed to the matcher below.
static void s_reply_bytes(const char *id, const char *key, const char *text, cb_bytes_t *out)
{
    cb_codec_reply_tuple_t tuple = {.key = (char *)(uintptr_t)key};
    lat_init(&tuple.value, LAT_LWW);
    lat_lww_assign(&tuple.value, 1, 1, text, strlen(text));
    cb_codec_reply_t reply = {.response_id = (char *)(uintptr_t)id, .tuples = &tuple, .len = 1};
    int rc = cb_codec_reply_encode(CB_CODEC_GET, &reply, out);
    assert(rc == 0);
    lat_fini(&tuple.value);
}

//  Replies are matched to requests by id, answers to keys by name, over several responses
//  with the same id; nothing else is taken. The engine's structs, no sockets.
static void s_test_matching(bool verbose)
{
    if (verbose)
        printf(" * kvs: request-id parsing and reply matching\n");
    cb_kvs_config_t c = {.routing = "tcp://127.0.0.1:1"};
    cb_kvs_t *kvs = cb_kvs_new(&c);
    assert(kvs);
    s_slot_t slots[2] = {{.key = "a", .state = S_SENT}, {.key = "b", .state = S_SENT}};
    cb_kvs_result_t results[2];
    for (int i = 0; i < 2; i++) {
        results[i].error = 0;
        lat_init(&results[i].value, LAT_NONE);
    }
    s_call_t call = {CB_CODEC_GET, slots, results, 2, 0};
    size_t idx[2] = {0, 1};
    s_req_t req = {.id = "7:1", .worker = "tcp://w:1", .slots = idx, .n = 2, .cap = 2};
    cb_bytes_t bytes = {0};

    //  The id can be read before the message is decoded.
    s_reply_bytes("7:1", "b", "vb", &bytes);
    const char *rid;
    size_t rid_len;
    assert(cb_codec_response_id(bytes.data, bytes.len, &rid, &rid_len) == 0);
    assert(rid_len == 3 && !memcmp(rid, "7:1", 3));
    cb_bytes_fini(&bytes);
    uint8_t junk[] = {0xff, 0xff, 0xff};
    assert(cb_codec_response_id(junk, sizeof junk, &rid, &rid_len) != 0);

    //  Another id (a late reply), a prefix of ours, or bytes that are no message: not ours.
    const char *others[] = {"7:0", "7:", "7:10", "8:1"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        s_reply_bytes(others[i], "a", "late", &bytes);
        assert(!s_handle_reply(kvs, &call, &req, 1, bytes.data, bytes.len));
        cb_bytes_fini(&bytes);
    }
    assert(!s_handle_reply(kvs, &call, &req, 1, junk, sizeof junk));
    assert(slots[0].state == S_SENT && slots[1].state == S_SENT && req.answered == 0);

    //  Our id: b is answered first, then a in a second response with the same id.
    s_reply_bytes("7:1", "b", "vb", &bytes);
    assert(s_handle_reply(kvs, &call, &req, 1, bytes.data, bytes.len));
    cb_bytes_fini(&bytes);
    assert(slots[1].state == S_DONE && s_lww_is(&results[1].value, "vb"));
    assert(slots[0].state == S_SENT && !req.done);
    s_reply_bytes("7:1", "a", "va", &bytes);
    assert(s_handle_reply(kvs, &call, &req, 1, bytes.data, bytes.len));
    assert(slots[0].state == S_DONE && s_lww_is(&results[0].value, "va") && req.done);
    //  The request is complete: a repeat of its id is no longer taken.
    assert(!s_handle_reply(kvs, &call, &req, 1, bytes.data, bytes.len));
    cb_bytes_fini(&bytes);
    assert(results[0].error == 0 && results[1].error == 0 && call.rc == 0);
    for (int i = 0; i < 2; i++)
        lat_fini(&results[i].value);
    cb_kvs_destroy(&kvs);
}

//  Suspects and the choice of a replica, with a clock of our own. No sockets.
static void s_test_failover(bool verbose)
{
    if (verbose)
        printf(" * kvs: suspects, replica choice, routing failover\n");
    cb_kvs_config_t c = {.routing = "tcp://127.0.0.1:1", .timeout_ms = 1000};
    cb_kvs_t *kvs = cb_kvs_new(&c);
    assert(kvs);
    const int64_t t = 1000000;
    //  Suspected for max(2 x timeout, 5 s); an answer clears it; expiry forgets it.
    s_suspect_add(kvs, "tcp://a:1", t);
    assert(s_suspected(kvs, "tcp://a:1", t + 4999) && !s_suspected(kvs, "tcp://b:1", t));
    assert(!s_suspected(kvs, "tcp://a:1", t + 5000) && kvs->n_suspects == 0);
    s_suspect_add(kvs, "tcp://a:1", t);
    s_suspect_clear(kvs, "tcp://a:1");
    assert(!s_suspected(kvs, "tcp://a:1", t));
    kvs->timeout_ms = 4000;                         //  2 x 4 s > 5 s
    s_suspect_add(kvs, "tcp://a:1", t);
    assert(s_suspected(kvs, "tcp://a:1", t + 7999) && !s_suspected(kvs, "tcp://a:1", t + 8000));
    kvs->timeout_ms = 1000;
    //  The table is bounded: the suspect that expires first makes room.
    char addr[32];
    for (int i = 0; i < S_MAX_SUSPECTS + 5; i++) {
        snprintf(addr, sizeof addr, "tcp://w:%d", i);
        s_suspect_add(kvs, addr, t + i);
    }
    assert(kvs->n_suspects == S_MAX_SUSPECTS && !s_suspected(kvs, "tcp://w:0", t)
           && s_suspected(kvs, addr, t));
    s_suspects_clear(kvs);

    //  The choice: not suspected first, then not yet tried by this key, then (second
    //  attempt only) the one it tried.
    const char *abc[] = {"tcp://a:1", "tcp://b:1", "tcp://c:1"};
    cb_kvs_cache_set(kvs, "k", abc, 3);
    const s_entry_t *e = s_cache_find(kvs, "k");
    s_slot_t slot = {.key = "k"};
    s_suspect_add(kvs, "tcp://a:1", t);
    s_suspect_add(kvs, "tcp://c:1", t);
    for (int i = 0; i < 50; i++)
        assert(s_pick(kvs, e, &slot, t) == 1);      //  only b is not suspected
    slot.silent[slot.n_silent++] = cb_strdup("tcp://b:1");
    bool seen[3] = {false, false, false};
    for (int i = 0; i < 200; i++) {
        int p = s_pick(kvs, e, &slot, t);
        assert(p == 0 || p == 2);                   //  b was tried: a suspect it must be
        seen[p] = true;
    }
    assert(seen[0] && seen[2]);
    slot.silent[slot.n_silent++] = cb_strdup("tcp://a:1");
    slot.silent[slot.n_silent++] = cb_strdup("tcp://c:1");
    assert(s_pick(kvs, e, &slot, t) == -1);         //  each failed it once: give up
    char why[400];
    s_silent_why(kvs, &slot, why, sizeof why);
    assert(!strcmp(why, "no replica answered within 1000 ms (tried tcp://b:1, tcp://a:1, "
                        "tcp://c:1)"));
    //  One replica: tried once, it is sent to again (and then no more).
    const char *one = "tcp://a:1";
    cb_kvs_cache_set(kvs, "k1", &one, 1);
    s_slot_t single = {.key = "k1"};
    single.silent[single.n_silent++] = cb_strdup("tcp://a:1");
    assert(s_pick(kvs, s_cache_find(kvs, "k1"), &single, t) == 0);
    single.silent[single.n_silent++] = cb_strdup("tcp://a:1");
    assert(s_pick(kvs, s_cache_find(kvs, "k1"), &single, t) == -1);
    s_silent_why(kvs, &single, why, sizeof why);
    assert(!strcmp(why, "no answer from tcp://a:1 within 1000 ms"));
    for (size_t k = 0; k < slot.n_silent; k++)
        cb_free(slot.silent[k]);
    for (size_t k = 0; k < single.n_silent; k++)
        cb_free(single.silent[k]);
    cb_kvs_destroy(&kvs);

    //  Routing failover: nothing listens on ports 1 and 2; the lookup tries both, in
    //  turn, each bounded by the timeout, then fails naming them; the next call starts with
    //  the one after the last that failed.
    c.routing = "tcp://127.0.0.1:1,tcp://127.0.0.1:2";
    c.timeout_ms = 200;
    kvs = cb_kvs_new(&c);
    assert(kvs);
    lat_t v;
    int64_t t0 = cb_clock_mono_ms();
    assert(cb_kvs_get(kvs, "k", &v) == -ETIMEDOUT && v.kind == LAT_NONE);
    int64_t took = cb_clock_mono_ms() - t0;
    assert(took >= 390 && took < 1500);
    assert(strstr(cb_kvs_last_error(kvs), "none of the 2 routing addresses answered within 200 "
                                          "ms (tcp://127.0.0.1:1, tcp://127.0.0.1:2)"));
    cb_kvs_stats_t st;
    cb_kvs_stats(kvs, &st);
    assert(st.lookups == 2 && st.timeouts == 2 && kvs->routing_cur == 0);
    cb_kvs_destroy(&kvs);
}

void cb_kvs_test(bool verbose)
{
    s_test_pure(verbose);
    s_test_matching(verbose);
    s_test_failover(verbose);
}
//  @end
