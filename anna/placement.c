//  anna/placement.c: the local ring over thread ids (point names are the decimal thread id,
//  as in Anna's local ring, so every node of a tier builds the same ring), the replication
//  factor, and the fixed homes of the stats keys.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/placement.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "anna/ring.h"
#include "common/alloc.h"

//  Most threads of a node (anna/config.h: ANNA_MAX_THREADS).
#define ANNA_PLACEMENT_MAX_THREADS 64

struct _anna_placement_t {
    anna_ring_t *ring;          //  local ring: members are thread ids
    uint32_t threads;
    uint32_t replication;
};

anna_placement_t *anna_placement_new(uint32_t threads, uint32_t replication, uint32_t vnodes)
{
    assert(threads >= 1 && replication >= 1 && replication <= threads && vnodes >= 1);
    anna_placement_t *self = cb_calloc(1, sizeof *self);
    self->threads = threads;
    self->replication = replication;
    self->ring = anna_ring_new(vnodes, 0);
    for (uint32_t t = 0; t < threads; t++) {
        char name[16];
        snprintf(name, sizeof name, "%" PRIu32, t);
        int rc = anna_ring_add(self->ring, t, name);
        assert(rc == 0);
        (void)rc;
    }
    return self;
}

void anna_placement_destroy(anna_placement_t **self_p)
{
    assert(self_p);
    anna_placement_t *self = *self_p;
    if (!self)
        return;
    anna_ring_destroy(&self->ring);
    cb_free(self);
    *self_p = NULL;
}

anna_key_kind_t anna_placement_classify(const anna_placement_t *self, const char *key, size_t len,
                                        int *thread)
{
    static const size_t plen = sizeof ANNA_RESERVED_PREFIX - 1;
    static const size_t slen = sizeof ANNA_STATS_KEY - 1;
    *thread = -1;
    if (len < plen || memcmp(key, ANNA_RESERVED_PREFIX, plen) != 0)
        return ANNA_KEY_DATA;
    if (len == sizeof ANNA_MEMBERS_KEY - 1 && !memcmp(key, ANNA_MEMBERS_KEY, len))
        return ANNA_KEY_MEMBERS;
    static const size_t rlen = sizeof ANNA_REPLICATION_PREFIX - 1;
    if (len > rlen && !memcmp(key, ANNA_REPLICATION_PREFIX, rlen))
        return ANNA_KEY_REPLICATION;
    if (len < slen || memcmp(key, ANNA_STATS_KEY, slen) != 0)
        return ANNA_KEY_RESERVED;
    if (len == slen)
        return ANNA_KEY_STATS;
    //  "|<t>": a canonical decimal thread id (no sign, no leading zero), below threads.
    const char *p = key + slen;
    size_t n = len - slen;
    if (n < 2 || n > 4 || p[0] != '|' || (p[1] == '0' && n > 2))
        return ANNA_KEY_RESERVED;
    uint32_t t = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return ANNA_KEY_RESERVED;
        t = t * 10 + (uint32_t)(p[i] - '0');
    }
    if (t >= self->threads)
        return ANNA_KEY_RESERVED;
    *thread = (int)t;
    return ANNA_KEY_STATS;
}

size_t anna_placement_owners(const anna_placement_t *self, const char *key, size_t len,
                             uint32_t *out)
{
    return anna_placement_owners_rep(self, key, len, self->replication, out);
}

size_t anna_placement_owners_rep(const anna_placement_t *self, const char *key, size_t len,
                                 uint32_t replication, uint32_t *out)
{
    assert(replication >= 1 && replication <= self->threads);
    int thread;
    anna_key_kind_t kind = anna_placement_classify(self, key, len, &thread);
    if (kind == ANNA_KEY_STATS || kind == ANNA_KEY_MEMBERS) {
        out[0] = thread < 0 ? 0 : (uint32_t)thread;
        return 1;
    }
    if (self->threads == 1) {
        out[0] = 0;
        return 1;
    }
    return anna_ring_lookup_key(self->ring, key, len, out, replication);
}

bool anna_placement_owns_rep(const anna_placement_t *self, uint32_t thread, const char *key,
                             size_t len, uint32_t replication, size_t *owners)
{
    //  Hot path: every request asks this. With a replica on every thread no lookup is needed
    //  (keys starting with 'A' may be the node's own, placed otherwise).
    if (replication == self->threads && len > 0 && key[0] != 'A') {
        *owners = self->threads;
        return true;
    }
    uint32_t out[ANNA_PLACEMENT_MAX_THREADS];
    size_t n = anna_placement_owners_rep(self, key, len, replication, out);
    *owners = n;
    for (size_t i = 0; i < n; i++)
        if (out[i] == thread)
            return true;
    return false;
}

bool anna_placement_owns(const anna_placement_t *self, uint32_t thread, const char *key,
                         size_t len, size_t *owners)
{
    return anna_placement_owns_rep(self, thread, key, len, self->replication, owners);
}

uint32_t anna_placement_threads(const anna_placement_t *self)
{
    return self->threads;
}

uint32_t anna_placement_replication(const anna_placement_t *self)
{
    return self->replication;
}

//  ---- self-test ----------------------------------------------------------------------------

static anna_key_kind_t s_classify(const anna_placement_t *p, const char *key, int *thread)
{
    return anna_placement_classify(p, key, strlen(key), thread);
}

void anna_placement_test(bool verbose)
{
    anna_placement_t *p = anna_placement_new(4, 2, 100);
    int t;
    assert(s_classify(p, "user1", &t) == ANNA_KEY_DATA && t == -1);
    assert(s_classify(p, "", &t) == ANNA_KEY_DATA);
    assert(s_classify(p, "ANNA_METADATA", &t) == ANNA_KEY_DATA);
    assert(s_classify(p, "ANNA_METADATA|", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|replication|k", &t) == ANNA_KEY_REPLICATION);
    assert(s_classify(p, "ANNA_METADATA|replication|", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|members", &t) == ANNA_KEY_MEMBERS);
    //  An override's replication, primary first like the default's.
    uint32_t one[4], three[4];
    assert(anna_placement_owners_rep(p, "k", 1, 1, one) == 1);
    assert(anna_placement_owners_rep(p, "k", 1, 3, three) == 3 && three[0] == one[0]);
    size_t owners;
    assert(anna_placement_owns_rep(p, three[2], "k", 1, 3, &owners) && owners == 3);
    assert(!anna_placement_owns_rep(p, three[2], "k", 1, 1, &owners) && owners == 1);
    assert(s_classify(p, "ANNA_METADATA|stats", &t) == ANNA_KEY_STATS && t == -1);
    assert(s_classify(p, "ANNA_METADATA|stats|0", &t) == ANNA_KEY_STATS && t == 0);
    assert(s_classify(p, "ANNA_METADATA|stats|3", &t) == ANNA_KEY_STATS && t == 3);
    assert(s_classify(p, "ANNA_METADATA|stats|4", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|stats|03", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|stats|", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|stats|x", &t) == ANNA_KEY_RESERVED);
    assert(s_classify(p, "ANNA_METADATA|statsx", &t) == ANNA_KEY_RESERVED);

    //  Owners: `replication` distinct threads, and exactly those own the key.
    uint32_t out[4];
    size_t n;
    for (int i = 0; i < 1000; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "k%d", i);
        assert(anna_placement_owners(p, key, (size_t)len, out) == 2 && out[0] != out[1]);
        int owning = 0;
        for (uint32_t th = 0; th < 4; th++) {
            bool owns = anna_placement_owns(p, th, key, (size_t)len, &n);
            assert(n == 2);
            assert(owns == (th == out[0] || th == out[1]));
            owning += owns;
        }
        assert(owning == 2);
    }
    //  Stats keys have one fixed owner.
    assert(anna_placement_owners(p, ANNA_STATS_KEY, strlen(ANNA_STATS_KEY), out) == 1);
    assert(out[0] == 0);
    assert(anna_placement_owns(p, 2, "ANNA_METADATA|stats|2", 21, &n) && n == 1);
    assert(!anna_placement_owns(p, 1, "ANNA_METADATA|stats|2", 21, &n) && n == 1);
    anna_placement_destroy(&p);

    //  Full replication and a single thread: everyone owns every data key.
    p = anna_placement_new(3, 3, 10);
    assert(anna_placement_owns(p, 1, "x", 1, &n) && n == 3);
    assert(anna_placement_owners(p, "x", 1, out) == 3);
    assert(!anna_placement_owns(p, 1, ANNA_STATS_KEY, strlen(ANNA_STATS_KEY), &n) && n == 1);
    anna_placement_destroy(&p);
    p = anna_placement_new(1, 1, 10);
    assert(anna_placement_owns(p, 0, "x", 1, &n) && n == 1);
    assert(anna_placement_threads(p) == 1 && anna_placement_replication(p) == 1);
    anna_placement_destroy(&p);
    anna_placement_destroy(&p);
    if (verbose)
        printf("  placement ok\n");
}
