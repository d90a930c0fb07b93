//  anna/ring.c: consistent hash ring. A sorted array of (position, member) points; a lookup
//  is a binary search for the first point at or after the key's position, then a clockwise
//  walk collecting distinct members (Anna §2.4: lower_bound, wrap to the beginning).
//  SPDX-License-Identifier: Apache-2.0
#include "anna/ring.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rand.h"

//  anna_hash of "key" and of "" with seed 0. A change of the hash moves every key of a
//  running cluster: these pins make it a deliberate act.
#define S_PIN_KEY 0xff6c647b5f8e93e4ULL
#define S_PIN_EMPTY 0x9ca066f1a4ab2eeaULL

typedef struct {
    uint64_t pos;               //  position on the ring
    uint32_t id;                //  member the point belongs to
} s_point_t;

struct _anna_ring_t {
    uint32_t vnodes;            //  points per member
    uint64_t seed;              //  hash function selector
    s_point_t *points;          //  sorted by (pos, id)
    size_t npoints;
    uint32_t *members;          //  distinct member ids, unordered
    size_t nmembers;
};

//  The murmur3 64-bit finaliser: every input bit flips about half of the output bits.
static inline uint64_t s_fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t s_load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);           //  unaligned-safe; one load on x86 and arm64
    return w;
}

uint64_t anna_hash(const void *data, size_t len, uint64_t seed)
{
    //  Eight bytes per step (keys are hashed two or three times per request, so a byte-wise
    //  FNV loop showed up in profiles): each word is spread by a multiply and folded into
    //  the state, which is rotated and multiplied so that word order matters. The length
    //  and the seed enter up front; a strong finaliser mixes the result.
    const uint8_t *p = data;
    uint64_t h = (seed + 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)len * 0x87c37b91114253d5ULL);
    while (len >= 8) {
        uint64_t w = s_load64(p) * 0x4cf5ad432745937fULL;
        h ^= w ^ (w >> 29);
        h = ((h << 27) | (h >> 37)) * 0x9fb21c651e98df25ULL + 0x52dce729ULL;
        p += 8;
        len -= 8;
    }
    if (len) {
        //  The last 1..7 bytes, little-endian, in one word (the length above tells a short
        //  tail of zeros from no tail).
        uint64_t w = 0;
        for (size_t i = 0; i < len; i++)
            w |= (uint64_t)p[i] << (8 * i);
        w *= 0x4cf5ad432745937fULL;
        h ^= w ^ (w >> 29);
        h = ((h << 27) | (h >> 37)) * 0x9fb21c651e98df25ULL + 0x52dce729ULL;
    }
    return s_fmix(h);
}

anna_ring_t *anna_ring_new(uint32_t vnodes, uint64_t seed)
{
    assert(vnodes >= 1);
    anna_ring_t *self = cb_calloc(1, sizeof *self);
    self->vnodes = vnodes;
    self->seed = seed;
    return self;
}

void anna_ring_destroy(anna_ring_t **self_p)
{
    assert(self_p);
    anna_ring_t *self = *self_p;
    if (!self)
        return;
    cb_free(self->points);
    cb_free(self->members);
    cb_free(self);
    *self_p = NULL;
}

static int s_point_cmp(const void *a, const void *b)
{
    const s_point_t *pa = a, *pb = b;
    if (pa->pos != pb->pos)
        return pa->pos < pb->pos ? -1 : 1;
    //  Equal positions (practically never) are ordered by id so every copy agrees.
    return (pa->id > pb->id) - (pa->id < pb->id);
}

bool anna_ring_contains(const anna_ring_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->nmembers; i++)
        if (self->members[i] == id)
            return true;
    return false;
}

int anna_ring_add(anna_ring_t *self, uint32_t id, const char *name)
{
    assert(self && name);
    if (anna_ring_contains(self, id))
        return -EEXIST;
    self->members = cb_realloc(self->members, (self->nmembers + 1) * sizeof *self->members);
    self->members[self->nmembers++] = id;
    self->points = cb_realloc(self->points, (self->npoints + self->vnodes) * sizeof *self->points);

    //  Point v of a member sits at hash("name#v"): a function of the name only.
    size_t nlen = strlen(name);
    size_t cap = nlen + 16;
    char *buf = cb_malloc(cap);
    memcpy(buf, name, nlen);
    for (uint32_t v = 0; v < self->vnodes; v++) {
        int n = snprintf(buf + nlen, cap - nlen, "#%" PRIu32, v);
        assert(n > 0 && (size_t)n < cap - nlen);
        s_point_t *pt = &self->points[self->npoints++];
        pt->pos = anna_hash(buf, nlen + (size_t)n, self->seed);
        pt->id = id;
    }
    cb_free(buf);
    qsort(self->points, self->npoints, sizeof *self->points, s_point_cmp);
    return 0;
}

int anna_ring_remove(anna_ring_t *self, uint32_t id)
{
    assert(self);
    size_t m = 0;
    while (m < self->nmembers && self->members[m] != id)
        m++;
    if (m == self->nmembers)
        return -ENOENT;
    self->members[m] = self->members[--self->nmembers];
    size_t kept = 0;
    for (size_t i = 0; i < self->npoints; i++)
        if (self->points[i].id != id)
            self->points[kept++] = self->points[i];
    self->npoints = kept;
    return 0;
}

size_t anna_ring_members(const anna_ring_t *self)
{
    return self->nmembers;
}

size_t anna_ring_lookup(const anna_ring_t *self, uint64_t hash, uint32_t *out, size_t n)
{
    assert(self);
    if (n > self->nmembers)
        n = self->nmembers;
    if (n == 0)
        return 0;
    //  lower_bound: first point with pos >= hash; past the end wraps to point 0.
    size_t lo = 0, hi = self->npoints;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->points[mid].pos < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t found = 0;
    //  n distinct members exist among the points, so the walk ends within one lap.
    for (size_t step = 0; step < self->npoints && found < n; step++) {
        uint32_t id = self->points[(lo + step) % self->npoints].id;
        bool seen = false;
        for (size_t k = 0; k < found; k++)
            if (out[k] == id) {
                seen = true;
                break;
            }
        if (!seen)
            out[found++] = id;
    }
    assert(found == n);
    return found;
}

size_t anna_ring_lookup_key(const anna_ring_t *self, const void *key, size_t len, uint32_t *out,
                            size_t n)
{
    return anna_ring_lookup(self, anna_hash(key, len, self->seed), out, n);
}

//  ---- self-test ----------------------------------------------------------------------------

static anna_ring_t *s_ring_of_threads(uint32_t threads, uint32_t vnodes)
{
    anna_ring_t *ring = anna_ring_new(vnodes, 0);
    for (uint32_t t = 0; t < threads; t++) {
        char name[16];
        snprintf(name, sizeof name, "%" PRIu32, t);
        assert(anna_ring_add(ring, t, name) == 0);
    }
    return ring;
}

void anna_ring_test(bool verbose)
{
    //  The hash is deterministic and stable: these values pin the function, so that a change
    //  (which would move every key of a running cluster) cannot go unnoticed.
    assert(anna_hash("", 0, 0) == anna_hash("", 0, 0));
    assert(anna_hash("a", 1, 0) != anna_hash("b", 1, 0));
    assert(anna_hash("a", 1, 0) != anna_hash("a", 1, 1));
    if (verbose)
        printf("  hash(\"key\") = %016" PRIx64 ", hash(\"\") = %016" PRIx64 "\n",
               anna_hash("key", 3, 0), anna_hash("", 0, 0));
    assert(anna_hash("key", 3, 0) == S_PIN_KEY);
    assert(anna_hash("", 0, 0) == S_PIN_EMPTY);
    assert(anna_hash("a", 1, 0) != anna_hash("b", 1, 0));
    assert(anna_hash("a", 1, 0) != anna_hash("a", 1, 1));
    assert(anna_hash("a\0", 2, 0) != anna_hash("a", 1, 0));
    assert(anna_hash("12345678", 8, 0) != anna_hash("1234567800000000", 16, 0));

    //  Avalanche: flipping any one input bit flips about half of the output bits.
    cb_rand_t rnd;
    cb_rand_seed(&rnd, 1);
    double flips = 0;
    int trials = 0;
    for (int i = 0; i < 200; i++) {
        uint8_t buf[24];
        size_t len = 1 + cb_rand_below(&rnd, sizeof buf);
        for (size_t b = 0; b < len; b++)
            buf[b] = (uint8_t)cb_rand_next(&rnd);
        uint64_t h = anna_hash(buf, len, 0);
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            flips += __builtin_popcountll(h ^ anna_hash(buf, len, 0));
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            trials++;
        }
    }
    if (verbose)
        printf("  avalanche: %.2f of 64 bits flip per input bit\n", flips / trials);
    assert(flips / trials > 31 && flips / trials < 33);
    //  Uniform low and high bits on sequential keys (table slots use the low bits, ring
    //  positions the high ones): 65536 keys in 256 buckets, expect 256 +- 16 each.
    int low[256] = {0}, high[256] = {0};
    for (int i = 0; i < 65536; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "key:%012d", i);
        uint64_t h = anna_hash(key, (size_t)n, 0);
        low[h & 255]++;
        high[h >> 56]++;
    }
    for (int b = 0; b < 256; b++)
        assert(low[b] > 180 && low[b] < 340 && high[b] > 180 && high[b] < 340);

    //  Empty ring: nothing found.
    anna_ring_t *ring = anna_ring_new(10, 0);
    uint32_t out[8];
    assert(anna_ring_lookup_key(ring, "k", 1, out, 1) == 0);
    assert(anna_ring_members(ring) == 0);
    anna_ring_destroy(&ring);
    assert(ring == NULL);
    anna_ring_destroy(&ring);

    //  Balance: with the default vnodes every thread gets its share within +-25 %.
    const uint32_t threads = 8;
    const int nkeys = 200000;
    ring = s_ring_of_threads(threads, ANNA_RING_VNODES);
    assert(anna_ring_members(ring) == threads);
    assert(anna_ring_add(ring, 3, "3") == -EEXIST);
    int counts[8] = {0};
    for (int i = 0; i < nkeys; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "user%d", i);
        assert(anna_ring_lookup_key(ring, key, (size_t)n, out, 1) == 1);
        assert(out[0] < threads);
        counts[out[0]]++;
    }
    double fair = (double)nkeys / threads;
    for (uint32_t t = 0; t < threads; t++) {
        if (verbose)
            printf("  thread %" PRIu32 ": %d keys (%.1f%% of fair)\n", t, counts[t],
                   100.0 * counts[t] / fair);
        assert(counts[t] > 0.75 * fair && counts[t] < 1.25 * fair);
    }

    //  Determinism: a second ring built in another order answers the same for every key.
    anna_ring_t *other = anna_ring_new(ANNA_RING_VNODES, 0);
    for (uint32_t t = threads; t-- > 0;) {
        char name[16];
        snprintf(name, sizeof name, "%" PRIu32, t);
        assert(anna_ring_add(other, t, name) == 0);
    }
    for (int i = 0; i < 10000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "k-%d", i);
        uint32_t a[3], b[3];
        assert(anna_ring_lookup_key(ring, key, (size_t)n, a, 3) == 3);
        assert(anna_ring_lookup_key(other, key, (size_t)n, b, 3) == 3);
        assert(memcmp(a, b, sizeof a) == 0);
    }
    anna_ring_destroy(&other);

    //  Replication: L distinct members, the first one the primary; L > members is capped.
    for (int i = 0; i < 1000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "r%d", i);
        uint32_t rep[8];
        assert(anna_ring_lookup_key(ring, key, (size_t)n, rep, threads) == threads);
        for (uint32_t x = 0; x < threads; x++)
            for (uint32_t y = x + 1; y < threads; y++)
                assert(rep[x] != rep[y]);
        uint32_t one;
        anna_ring_lookup_key(ring, key, (size_t)n, &one, 1);
        assert(one == rep[0]);
    }
    uint32_t many[16];
    assert(anna_ring_lookup(ring, 42, many, 16) == threads);

    //  Wrap-around: a position past the last point lands on the first point's member, and
    //  position 0 as well (both are "before" the first point).
    uint32_t at_max, at_zero;
    assert(anna_ring_lookup(ring, UINT64_MAX, &at_max, 1) == 1);
    assert(anna_ring_lookup(ring, 0, &at_zero, 1) == 1);
    assert(at_max == at_zero);
    //  Removing a member moves only its keys; the others stay where they were.
    int moved_wrongly = 0;
    uint32_t before[2000];
    for (int i = 0; i < 2000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "m%d", i);
        anna_ring_lookup_key(ring, key, (size_t)n, &before[i], 1);
    }
    assert(anna_ring_remove(ring, 5) == 0);
    assert(anna_ring_remove(ring, 5) == -ENOENT);
    assert(!anna_ring_contains(ring, 5));
    for (int i = 0; i < 2000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "m%d", i);
        uint32_t now;
        anna_ring_lookup_key(ring, key, (size_t)n, &now, 1);
        assert(now != 5);
        if (before[i] != 5 && now != before[i])
            moved_wrongly++;
    }
    assert(moved_wrongly == 0);
    anna_ring_destroy(&ring);

    //  One member, one point: everything maps to it.
    ring = s_ring_of_threads(1, 1);
    assert(anna_ring_lookup_key(ring, "x", 1, out, 4) == 1 && out[0] == 0);
    anna_ring_destroy(&ring);
}
