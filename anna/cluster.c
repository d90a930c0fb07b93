//  anna/cluster.c: cluster membership and the global ring. Contract in cluster.h.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/cluster.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "anna/ring.h"
#include "common/alloc.h"

//  Most replicas of a key across nodes.
#define S_MAX_REP 64

typedef struct {
    char address[ANNA_CLUSTER_ADDRESS];
    uint32_t join_count;        //  highest incarnation heard of
    int64_t last_heard_ms;
    bool alive;                 //  on the ring
} s_node_t;

struct _anna_cluster_t {
    s_node_t *nodes;            //  every node ever heard of; index = ring member id; 0 = us
    size_t n;
    size_t cap;
    uint32_t *live;             //  ids of the live nodes
    size_t nlive;
    anna_ring_t *ring;
    uint32_t global_rep;
    uint64_t epoch;
};

static int s_find(const anna_cluster_t *self, const char *address)
{
    for (size_t i = 0; i < self->n; i++)
        if (!strcmp(self->nodes[i].address, address))
            return (int)i;
    return -1;
}

static void s_rebuild_live(anna_cluster_t *self)
{
    self->nlive = 0;
    for (size_t i = 0; i < self->n; i++)
        if (self->nodes[i].alive)
            self->live[self->nlive++] = (uint32_t)i;
    self->epoch++;
}

static void s_set_alive(anna_cluster_t *self, size_t id, bool alive)
{
    s_node_t *node = &self->nodes[id];
    if (node->alive == alive)
        return;
    node->alive = alive;
    int rc = alive ? anna_ring_add(self->ring, (uint32_t)id, node->address)
                   : anna_ring_remove(self->ring, (uint32_t)id);
    assert(rc == 0);
    (void)rc;
    s_rebuild_live(self);
}

static int s_add(anna_cluster_t *self, const char *address, uint32_t join_count, int64_t now_ms)
{
    if (self->n == ANNA_CLUSTER_MAX_NODES)
        return -ENOSPC;
    if (self->n == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 8;
        self->nodes = cb_realloc(self->nodes, self->cap * sizeof *self->nodes);
        self->live = cb_realloc(self->live, self->cap * sizeof *self->live);
    }
    s_node_t *node = &self->nodes[self->n++];
    memset(node, 0, sizeof *node);
    snprintf(node->address, sizeof node->address, "%s", address);
    node->join_count = join_count;
    node->last_heard_ms = now_ms;
    s_set_alive(self, self->n - 1, true);
    return 1;
}

static bool s_address_ok(const char *address)
{
    return address && address[0] && strlen(address) < ANNA_CLUSTER_ADDRESS;
}

anna_cluster_t *anna_cluster_new(const char *self_address, uint32_t self_join_count,
                                 uint32_t global_rep, uint32_t vnodes)
{
    assert(s_address_ok(self_address) && global_rep >= 1 && vnodes >= 1);
    anna_cluster_t *self = cb_calloc(1, sizeof *self);
    self->ring = anna_ring_new(vnodes, ANNA_CLUSTER_SEED);
    self->global_rep = global_rep > S_MAX_REP ? S_MAX_REP : global_rep;
    s_add(self, self_address, self_join_count, 0);
    return self;
}

void anna_cluster_destroy(anna_cluster_t **self_p)
{
    assert(self_p);
    anna_cluster_t *self = *self_p;
    if (!self)
        return;
    anna_ring_destroy(&self->ring);
    cb_free(self->nodes);
    cb_free(self->live);
    cb_free(self);
    *self_p = NULL;
}

int anna_cluster_join(anna_cluster_t *self, const char *address, uint32_t join_count,
                      int64_t now_ms)
{
    assert(self);
    if (!s_address_ok(address))
        return -EINVAL;
    int id = s_find(self, address);
    if (id < 0)
        return s_add(self, address, join_count, now_ms);
    s_node_t *node = &self->nodes[id];
    if (join_count < node->join_count)
        return -ESTALE;
    bool restarted = join_count > node->join_count;
    node->join_count = join_count;
    node->last_heard_ms = now_ms;
    if (node->alive)
        return restarted && id != 0 ? 2 : 0;
    s_set_alive(self, (size_t)id, true);
    return 1;
}

int anna_cluster_leave(anna_cluster_t *self, const char *address, uint32_t join_count)
{
    assert(self);
    if (!s_address_ok(address))
        return -EINVAL;
    int id = s_find(self, address);
    if (id == 0)
        return -EINVAL;
    if (id < 0 || !self->nodes[id].alive)
        return 0;
    if (join_count < self->nodes[id].join_count)
        return -ESTALE;
    s_set_alive(self, (size_t)id, false);
    return 1;
}

size_t anna_cluster_expire(anna_cluster_t *self, int64_t now_ms, int64_t timeout_ms,
                           char (*removed)[ANNA_CLUSTER_ADDRESS], size_t max)
{
    assert(self && (removed || max == 0));
    size_t count = 0;
    for (size_t i = 1; i < self->n; i++) {
        s_node_t *node = &self->nodes[i];
        if (!node->alive || now_ms - node->last_heard_ms < timeout_ms)
            continue;
        if (count < max)
            snprintf(removed[count], ANNA_CLUSTER_ADDRESS, "%s", node->address);
        count++;
        s_set_alive(self, i, false);
    }
    return count;
}

size_t anna_cluster_owners(const anna_cluster_t *self, const void *key, size_t len,
                           const char **out, size_t max)
{
    return anna_cluster_owners_rep(self, key, len, self->global_rep, out, max);
}

size_t anna_cluster_owners_rep(const anna_cluster_t *self, const void *key, size_t len,
                               uint32_t rep, const char **out, size_t max)
{
    assert(self && (out || max == 0));
    uint32_t ids[S_MAX_REP];
    if (rep > S_MAX_REP)
        rep = S_MAX_REP;
    size_t want = rep < max ? rep : max;
    size_t n = anna_ring_lookup_key(self->ring, key, len, ids, want);
    for (size_t i = 0; i < n; i++)
        out[i] = self->nodes[ids[i]].address;
    return n;
}

bool anna_cluster_node_owns(const anna_cluster_t *self, const char *address, const void *key,
                            size_t len)
{
    return anna_cluster_node_owns_rep(self, address, key, len, self->global_rep);
}

bool anna_cluster_node_owns_rep(const anna_cluster_t *self, const char *address,
                                const void *key, size_t len, uint32_t rep)
{
    const char *owners[S_MAX_REP];
    size_t n = anna_cluster_owners_rep(self, key, len, rep, owners, S_MAX_REP);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(owners[i], address))
            return true;
    return false;
}

bool anna_cluster_owns(const anna_cluster_t *self, const void *key, size_t len)
{
    return anna_cluster_node_owns(self, self->nodes[0].address, key, len);
}

size_t anna_cluster_count(const anna_cluster_t *self)
{
    return self->nlive;
}

const char *anna_cluster_member(const anna_cluster_t *self, size_t i)
{
    assert(i < self->nlive);
    return self->nodes[self->live[i]].address;
}

uint32_t anna_cluster_member_join_count(const anna_cluster_t *self, size_t i)
{
    assert(i < self->nlive);
    return self->nodes[self->live[i]].join_count;
}

bool anna_cluster_contains(const anna_cluster_t *self, const char *address)
{
    int id = s_find(self, address);
    return id >= 0 && self->nodes[id].alive;
}

uint64_t anna_cluster_epoch(const anna_cluster_t *self)
{
    return self->epoch;
}

uint32_t anna_cluster_global_rep(const anna_cluster_t *self)
{
    return self->global_rep;
}

//  ---- self-test ------------------------------------------------------------------------------

void anna_cluster_test(bool verbose)
{
    anna_cluster_t *a = anna_cluster_new("127.0.0.1", 0, 2, 100);
    assert(anna_cluster_count(a) == 1 && !strcmp(anna_cluster_member(a, 0), "127.0.0.1"));
    //  Alone, it owns everything, once.
    const char *owners[8];
    assert(anna_cluster_owners(a, "k", 1, owners, 8) == 1 && !strcmp(owners[0], "127.0.0.1"));
    assert(anna_cluster_owns(a, "k", 1));

    //  Joins, heartbeats, stale incarnations.
    uint64_t epoch = anna_cluster_epoch(a);
    assert(anna_cluster_join(a, "127.0.0.2", 0, 1000) == 1);
    assert(anna_cluster_join(a, "127.0.0.3", 0, 1000) == 1);
    assert(anna_cluster_epoch(a) > epoch);
    epoch = anna_cluster_epoch(a);
    assert(anna_cluster_join(a, "127.0.0.2", 0, 1500) == 0);      //  heartbeat
    assert(anna_cluster_epoch(a) == epoch);
    assert(anna_cluster_join(a, "", 0, 1500) == -EINVAL);
    assert(anna_cluster_count(a) == 3 && anna_cluster_contains(a, "127.0.0.3"));

    //  G = 2 distinct owners per key; every node agrees, whatever the order of joins; keys
    //  spread over the nodes (each owns about 2/3 of them).
    anna_cluster_t *b = anna_cluster_new("127.0.0.3", 0, 2, 100);
    assert(anna_cluster_join(b, "127.0.0.2", 0, 0) == 1);
    assert(anna_cluster_join(b, "127.0.0.1", 0, 0) == 1);
    size_t owned[3] = {0, 0, 0};
    for (int i = 0; i < 3000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        const char *oa[4], *ob[4];
        size_t na = anna_cluster_owners(a, key, strlen(key), oa, 4);
        size_t nb = anna_cluster_owners(b, key, strlen(key), ob, 4);
        assert(na == 2 && nb == 2 && strcmp(oa[0], oa[1]) != 0);
        assert(!strcmp(oa[0], ob[0]) && !strcmp(oa[1], ob[1]));
        for (size_t j = 0; j < 2; j++)
            owned[oa[j][8] - '1']++;
        assert(anna_cluster_owns(a, key, strlen(key)) ==
               anna_cluster_node_owns(b, "127.0.0.1", key, strlen(key)));
    }
    for (int j = 0; j < 3; j++)
        assert(owned[j] > 1400 && owned[j] < 2600);

    //  Failure detection: a node silent for the timeout is removed; its keys move to the
    //  others; it comes back by joining again (a higher incarnation after a restart).
    assert(anna_cluster_join(a, "127.0.0.2", 0, 5000) == 0);
    char removed[4][ANNA_CLUSTER_ADDRESS];
    assert(anna_cluster_expire(a, 5500, 3000, removed, 4) == 1);
    assert(!strcmp(removed[0], "127.0.0.3") && !anna_cluster_contains(a, "127.0.0.3"));
    assert(anna_cluster_count(a) == 2);
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        assert(anna_cluster_owners(a, key, strlen(key), owners, 8) == 2);
        assert(strcmp(owners[0], "127.0.0.3") && strcmp(owners[1], "127.0.0.3"));
    }
    assert(anna_cluster_expire(a, 100000, 3000, NULL, 0) == 1);   //  127.0.0.2; never us
    assert(anna_cluster_count(a) == 1);
    assert(anna_cluster_join(a, "127.0.0.3", 1, 100000) == 1);    //  restarted
    assert(anna_cluster_member_join_count(a, 1) == 1);
    //  Restarted again before anyone noticed it was gone: its state is lost all the same.
    assert(anna_cluster_join(a, "127.0.0.3", 2, 100000) == 2);
    assert(anna_cluster_join(a, "127.0.0.3", 2, 100000) == 0);
    assert(anna_cluster_join(a, "127.0.0.3", 1, 100000) == -ESTALE);
    assert(anna_cluster_join(a, "127.0.0.3", 0, 100000) == -ESTALE);
    assert(anna_cluster_leave(a, "127.0.0.3", 1) == -ESTALE);
    assert(anna_cluster_leave(a, "127.0.0.1", 0) == -EINVAL);
    assert(anna_cluster_leave(a, "127.0.0.3", 2) == 1);
    assert(anna_cluster_leave(a, "127.0.0.3", 2) == 0);
    assert(anna_cluster_leave(a, "10.0.0.9", 0) == 0);
    assert(anna_cluster_count(a) == 1);

    //  A join after a leave restores the same placement as before (names, not order).
    assert(anna_cluster_join(a, "127.0.0.2", 0, 200000) == 1);
    assert(anna_cluster_join(a, "127.0.0.3", 2, 200000) == 1);
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        const char *oa[4], *ob[4];
        anna_cluster_owners(a, key, strlen(key), oa, 4);
        anna_cluster_owners(b, key, strlen(key), ob, 4);
        assert(!strcmp(oa[0], ob[0]) && !strcmp(oa[1], ob[1]));
    }
    anna_cluster_destroy(&a);
    anna_cluster_destroy(&b);
    assert(a == NULL);
    anna_cluster_destroy(&a);
    if (verbose)
        printf(" cluster: joins, placement agreement and spread, expiry, incarnations\n");
}
