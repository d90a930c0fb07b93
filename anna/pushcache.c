//  anna/pushcache.c: a fixed array of entries, chained into hash buckets by index, and a
//  use counter per entry. Eviction scans for the smallest counter: O(capacity), but only on
//  a miss with a full cache, which a steady set of clients never causes.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/pushcache.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anna/ring.h"
#include "common/alloc.h"

#define S_MAX_ADDRESS 256

typedef struct {
    char *address;              //  owned; NULL if the entry is free
    uint64_t hash;
    void *sock;                 //  PUSH, connected to address
    uint64_t used;              //  value of the use clock at the last send
    int32_t next;               //  next entry in the bucket, -1 at the end
} s_entry_t;

struct _anna_pushcache_t {
    void *ctx;                  //  borrowed
    s_entry_t *entries;         //  capacity entries
    size_t capacity;
    size_t count;               //  entries in use
    int32_t *buckets;           //  head entry index per bucket, -1 if empty
    size_t mask;                //  buckets - 1
    uint64_t clock;             //  use clock, +1 per send
    int sndhwm;
    int linger_ms;
};

anna_pushcache_t *anna_pushcache_new(void *ctx, size_t capacity, int sndhwm, int linger_ms)
{
    assert(ctx && capacity >= 1);
    anna_pushcache_t *self = cb_calloc(1, sizeof *self);
    self->ctx = ctx;
    self->capacity = capacity;
    self->entries = cb_calloc(capacity, sizeof *self->entries);
    size_t nbuckets = 8;
    while (nbuckets < capacity * 2)
        nbuckets <<= 1;
    self->buckets = cb_malloc(nbuckets * sizeof *self->buckets);
    for (size_t b = 0; b < nbuckets; b++)
        self->buckets[b] = -1;
    self->mask = nbuckets - 1;
    self->sndhwm = sndhwm;
    self->linger_ms = linger_ms;
    return self;
}

void anna_pushcache_destroy(anna_pushcache_t **self_p)
{
    assert(self_p);
    anna_pushcache_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->capacity; i++)
        if (self->entries[i].address) {
            zmq_close(self->entries[i].sock);
            cb_free(self->entries[i].address);
        }
    cb_free(self->entries);
    cb_free(self->buckets);
    cb_free(self);
    *self_p = NULL;
}

static bool s_port_ok(const char *p)
{
    if (!*p || strlen(p) > 5)
        return false;
    long port = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

bool anna_pushcache_address_ok(const char *address)
{
    size_t len = strnlen(address, S_MAX_ADDRESS);
    if (len == S_MAX_ADDRESS)
        return false;
    if (strncmp(address, "ipc://", 6) == 0)
        return len > 6 && len - 6 < 100;    //  sun_path holds 108 bytes
    if (strncmp(address, "tcp://", 6) != 0)
        return false;
    const char *host = address + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || !s_port_ok(colon + 1))
        return false;
    char ip[S_MAX_ADDRESS];
    size_t hlen = (size_t)(colon - host);
    memcpy(ip, host, hlen);
    ip[hlen] = '\0';
    unsigned char buf[sizeof(struct in6_addr)];
    if (hlen > 2 && ip[0] == '[' && ip[hlen - 1] == ']') {
        ip[hlen - 1] = '\0';
        return inet_pton(AF_INET6, ip + 1, buf) == 1;
    }
    return inet_pton(AF_INET, ip, buf) == 1;
}

//  Index of the entry for address, or -1.
static int32_t s_lookup(const anna_pushcache_t *self, const char *address, uint64_t hash)
{
    for (int32_t i = self->buckets[hash & self->mask]; i >= 0; i = self->entries[i].next) {
        const s_entry_t *e = &self->entries[i];
        if (e->hash == hash && strcmp(e->address, address) == 0)
            return i;
    }
    return -1;
}

static void s_evict(anna_pushcache_t *self, int32_t victim)
{
    s_entry_t *e = &self->entries[victim];
    int32_t *link = &self->buckets[e->hash & self->mask];
    while (*link != victim)
        link = &self->entries[*link].next;
    *link = e->next;
    zmq_close(e->sock);
    cb_free(e->address);
    memset(e, 0, sizeof *e);
    self->count--;
}

//  A free entry, evicting the least recently used one when all are taken.
static int32_t s_free_entry(anna_pushcache_t *self)
{
    if (self->count == self->capacity) {
        int32_t oldest = 0;
        for (size_t i = 1; i < self->capacity; i++)
            if (self->entries[i].used < self->entries[oldest].used)
                oldest = (int32_t)i;
        s_evict(self, oldest);
        return oldest;
    }
    for (size_t i = 0; i < self->capacity; i++)
        if (!self->entries[i].address)
            return (int32_t)i;
    assert(false && "count < capacity but no free entry");
    return -1;
}

static int s_connect(anna_pushcache_t *self, const char *address, uint64_t hash, int32_t *index)
{
    if (!anna_pushcache_address_ok(address))
        return -EINVAL;
    void *sock = zmq_socket(self->ctx, ZMQ_PUSH);
    if (!sock)
        return -errno;
    int ipv6 = strchr(address, '[') != NULL;
    int reconnect_max = 5000;   //  back off from a dead client's address
    zmq_setsockopt(sock, ZMQ_LINGER, &self->linger_ms, sizeof self->linger_ms);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &self->sndhwm, sizeof self->sndhwm);
    zmq_setsockopt(sock, ZMQ_IPV6, &ipv6, sizeof ipv6);
    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
    if (zmq_connect(sock, address) != 0) {
        int rc = -errno;
        zmq_close(sock);
        return rc;
    }
    int32_t i = s_free_entry(self);
    s_entry_t *e = &self->entries[i];
    e->address = cb_strdup(address);
    e->hash = hash;
    e->sock = sock;
    e->next = self->buckets[hash & self->mask];
    self->buckets[hash & self->mask] = i;
    self->count++;
    *index = i;
    return 0;
}

int anna_pushcache_send(anna_pushcache_t *self, const char *address, zmq_msg_t *msg)
{
    assert(self && address && msg);
    uint64_t hash = anna_hash(address, strlen(address), 0);
    int32_t i = s_lookup(self, address, hash);
    if (i < 0) {
        int rc = s_connect(self, address, hash, &i);
        if (rc) {
            zmq_msg_close(msg);
            return rc;
        }
    }
    s_entry_t *e = &self->entries[i];
    e->used = ++self->clock;
    if (zmq_msg_send(msg, e->sock, ZMQ_DONTWAIT) < 0) {
        int rc = -errno;
        zmq_msg_close(msg);
        return rc;
    }
    return 0;
}

size_t anna_pushcache_size(const anna_pushcache_t *self)
{
    return self->count;
}

//  ---- self-test ----------------------------------------------------------------------------

static int s_send_text(anna_pushcache_t *cache, const char *address, const char *text)
{
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, strlen(text));
    memcpy(zmq_msg_data(&msg), text, strlen(text));
    return anna_pushcache_send(cache, address, &msg);
}

void anna_pushcache_test(bool verbose)
{
    assert(anna_pushcache_address_ok("tcp://127.0.0.1:6800"));
    assert(anna_pushcache_address_ok("tcp://[::1]:6800"));
    assert(anna_pushcache_address_ok("ipc:///tmp/anna-client-1"));
    const char *refused[] = {"",
                             "tcp://localhost:6800",
                             "tcp://127.0.0.1",
                             "tcp://127.0.0.1:",
                             "tcp://127.0.0.1:0",
                             "tcp://127.0.0.1:65536",
                             "tcp://127.0.0.1:68x",
                             "tcp://*:6800",
                             "tcp://[::1:6800",
                             "inproc://anna-worker",
                             "udp://127.0.0.1:6800",
                             "ipc://"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert(!anna_pushcache_address_ok(refused[i]));
    char longer[400];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "ipc://", 6);
    assert(!anna_pushcache_address_ok(longer));

    //  Replies reach a listening PULL socket through the cache (ipc: no port to collide).
    void *ctx = zmq_ctx_new();
    char path[64];
    snprintf(path, sizeof path, "ipc:///tmp/anna-pushcache-test-%d", (int)getpid());
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    assert(zmq_bind(pull, path) == 0);
    anna_pushcache_t *cache = anna_pushcache_new(ctx, 2, 10, 0);
    assert(s_send_text(cache, path, "hello") == 0);
    assert(s_send_text(cache, path, "again") == 0);
    assert(anna_pushcache_size(cache) == 1);
    char buf[16];
    int timeout = 2000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert(zmq_recv(pull, buf, sizeof buf, 0) == 5 && memcmp(buf, "hello", 5) == 0);
    assert(zmq_recv(pull, buf, sizeof buf, 0) == 5 && memcmp(buf, "again", 5) == 0);

    //  A refused address costs nothing; a dead one fills up to the HWM, then drops.
    assert(s_send_text(cache, "inproc://x", "no") == -EINVAL);
    int drops = 0;
    for (int i = 0; i < 20; i++)
        if (s_send_text(cache, "tcp://127.0.0.1:9", "lost") == -EAGAIN)
            drops++;
    assert(drops >= 5);
    assert(anna_pushcache_size(cache) == 2);
    //  A third address evicts the least recently used socket (the ipc one: the dead one
    //  was used after it); sending to the ipc address again reconnects it, evicting the
    //  dead one, and the reply still arrives.
    assert(s_send_text(cache, "tcp://127.0.0.1:11", "x") == 0);
    assert(anna_pushcache_size(cache) == 2);
    assert(s_send_text(cache, path, "back") == 0);
    assert(zmq_recv(pull, buf, sizeof buf, 0) == 4 && memcmp(buf, "back", 4) == 0);
    assert(anna_pushcache_size(cache) == 2);
    //  Now the cache holds "tcp://127.0.0.1:11" and the ipc address, not the first dead one:
    //  sending there again connects a fresh socket, whose queue is empty.
    assert(s_send_text(cache, "tcp://127.0.0.1:9", "fresh") == 0);
    anna_pushcache_destroy(&cache);
    anna_pushcache_destroy(&cache);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    unlink(path + strlen("ipc://"));
    if (verbose)
        printf("  pushcache ok\n");
}
