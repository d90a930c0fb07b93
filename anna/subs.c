//  anna/subs.c: two slab tables with chained hash buckets (by index, so that growing the slab
//  moves no pointer anyone holds): keys, each with the ids of its subscribers, and
//  subscribers (addresses), each with a count of its keys and a failure record. The change
//  set is a list of key slots plus a flag per key, so a key changed many times between two
//  pushes is pushed once.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/subs.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "anna/ring.h"
#include "common/alloc.h"

//  Seed of the table hash: independent of the ring's placement hash, so the keys of one
//  thread do not crowd a few buckets.
#define S_SEED 0x5b5c0b5c0ULL

//  Fields every slot starts with.
typedef struct {
    char *name;                 //  owned; NULL when the slot is free
    uint64_t hash;
    int32_t next;               //  next slot in the bucket, or in the free list; -1 at the end
} s_head_t;

typedef struct {
    s_head_t head;              //  name = the key
    uint32_t *ids;              //  subscriber ids, owned
    uint32_t n;
    uint32_t cap;
    bool changed;               //  in the change set
} s_key_t;

typedef struct {
    s_head_t head;              //  name = the update address
    size_t nkeys;               //  subscriptions of this subscriber
    uint32_t failures;          //  pushes failed in a row
    int64_t last_ok_ms;         //  last delivered push, or the subscription time
} s_sub_t;

typedef struct {
    char *slots;                //  cap slots of size bytes each
    size_t size;                //  bytes per slot
    size_t cap;
    size_t count;               //  slots in use
    int32_t free_head;          //  free slots, chained by head.next
    int32_t *buckets;           //  head slot per bucket, -1 if empty; as many as cap (>= 8)
    size_t mask;
} s_table_t;

struct _anna_subs_t {
    s_table_t keys;             //  of s_key_t
    s_table_t subs;             //  of s_sub_t
    size_t total;               //  subscriptions
    size_t max_total;
    size_t max_per_key;
    int32_t *changed;           //  key slots in the change set (some may be stale: see drain)
    size_t nchanged;
    size_t changed_cap;
};

//  ---- slab table ---------------------------------------------------------------------------

static s_head_t *s_slot(const s_table_t *t, int32_t i)
{
    return (s_head_t *)(t->slots + (size_t)i * t->size);
}

static void s_table_init(s_table_t *t, size_t size)
{
    memset(t, 0, sizeof *t);
    t->size = size;
    t->free_head = -1;
}

static void s_table_fini(s_table_t *t)
{
    cb_free(t->slots);
    cb_free(t->buckets);
    memset(t, 0, sizeof *t);
}

static int32_t s_table_find(const s_table_t *t, const char *name, uint64_t hash)
{
    if (!t->buckets)
        return -1;
    for (int32_t i = t->buckets[hash & t->mask]; i >= 0; i = s_slot(t, i)->next) {
        const s_head_t *h = s_slot(t, i);
        if (h->hash == hash && strcmp(h->name, name) == 0)
            return i;
    }
    return -1;
}

//  Doubles the slab and rebuilds the buckets (one bucket per slot keeps chains short).
static void s_table_grow(s_table_t *t)
{
    size_t cap = t->cap ? 2 * t->cap : 8;
    assert(cap < INT32_MAX);
    t->slots = cb_realloc(t->slots, cap * t->size);
    memset(t->slots + t->cap * t->size, 0, (cap - t->cap) * t->size);
    //  New slots join the free list, lowest first.
    for (size_t i = cap; i-- > t->cap;) {
        s_slot(t, (int32_t)i)->next = t->free_head;
        t->free_head = (int32_t)i;
    }
    cb_free(t->buckets);
    t->buckets = cb_malloc(cap * sizeof *t->buckets);
    for (size_t b = 0; b < cap; b++)
        t->buckets[b] = -1;
    t->mask = cap - 1;
    for (size_t i = 0; i < t->cap; i++) {
        s_head_t *h = s_slot(t, (int32_t)i);
        if (h->name) {
            h->next = t->buckets[h->hash & t->mask];
            t->buckets[h->hash & t->mask] = (int32_t)i;
        }
    }
    t->cap = cap;
}

//  A new zeroed slot named name (copied). The slab may move: slot pointers die.
static int32_t s_table_insert(s_table_t *t, const char *name, uint64_t hash)
{
    if (t->free_head < 0)
        s_table_grow(t);
    int32_t i = t->free_head;
    s_head_t *h = s_slot(t, i);
    t->free_head = h->next;
    memset(h, 0, t->size);
    h->name = cb_strdup(name);
    h->hash = hash;
    h->next = t->buckets[hash & t->mask];
    t->buckets[hash & t->mask] = i;
    t->count++;
    return i;
}

//  Frees slot i's name and returns the slot to the free list (other fields: the caller's).
static void s_table_remove(s_table_t *t, int32_t i)
{
    s_head_t *h = s_slot(t, i);
    int32_t *link = &t->buckets[h->hash & t->mask];
    while (*link != i)
        link = &s_slot(t, *link)->next;
    *link = h->next;
    cb_free(h->name);
    h->name = NULL;
    h->next = t->free_head;
    t->free_head = i;
    t->count--;
}

static uint64_t s_hash(const char *name)
{
    return anna_hash(name, strlen(name), S_SEED);
}

//  ---- subscriptions ------------------------------------------------------------------------

anna_subs_t *anna_subs_new(size_t max_total, size_t max_per_key)
{
    assert(max_per_key >= 1);
    anna_subs_t *self = cb_calloc(1, sizeof *self);
    s_table_init(&self->keys, sizeof(s_key_t));
    s_table_init(&self->subs, sizeof(s_sub_t));
    self->max_total = max_total;
    self->max_per_key = max_per_key;
    return self;
}

void anna_subs_destroy(anna_subs_t **self_p)
{
    assert(self_p);
    anna_subs_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->keys.cap; i++) {
        s_key_t *k = (s_key_t *)s_slot(&self->keys, (int32_t)i);
        cb_free(k->head.name);
        cb_free(k->ids);
    }
    for (size_t i = 0; i < self->subs.cap; i++)
        cb_free(s_slot(&self->subs, (int32_t)i)->name);
    s_table_fini(&self->keys);
    s_table_fini(&self->subs);
    cb_free(self->changed);
    cb_free(self);
    *self_p = NULL;
}

static s_key_t *s_key(const anna_subs_t *self, int32_t i)
{
    return (s_key_t *)s_slot(&self->keys, i);
}

static s_sub_t *s_sub(const anna_subs_t *self, int32_t i)
{
    return (s_sub_t *)s_slot(&self->subs, i);
}

//  One subscription of subscriber id ended: frees the subscriber after its last one.
static void s_sub_release(anna_subs_t *self, uint32_t id)
{
    s_sub_t *sub = s_sub(self, (int32_t)id);
    assert(sub->head.name && sub->nkeys > 0);
    if (--sub->nkeys == 0)
        s_table_remove(&self->subs, (int32_t)id);
}

static void s_key_free(anna_subs_t *self, int32_t ki)
{
    s_key_t *k = s_key(self, ki);
    cb_free(k->ids);
    k->ids = NULL;
    k->n = k->cap = 0;
    //  A stale entry may stay in the change set; drain skips free and unchanged slots.
    k->changed = false;
    s_table_remove(&self->keys, ki);
}

int anna_subs_add(anna_subs_t *self, const char *key, const char *address, int64_t now_ms)
{
    assert(self && key && address);
    uint64_t khash = s_hash(key), ahash = s_hash(address);
    int32_t ki = s_table_find(&self->keys, key, khash);
    int32_t si = s_table_find(&self->subs, address, ahash);
    if (ki >= 0 && si >= 0) {
        const s_key_t *k = s_key(self, ki);
        for (uint32_t j = 0; j < k->n; j++)
            if (k->ids[j] == (uint32_t)si)
                return 0;
    }
    if (self->total >= self->max_total)
        return -ENOSPC;
    if (ki >= 0 && s_key(self, ki)->n >= self->max_per_key)
        return -EMLINK;
    if (ki < 0)
        ki = s_table_insert(&self->keys, key, khash);
    if (si < 0) {
        si = s_table_insert(&self->subs, address, ahash);
        s_sub(self, si)->last_ok_ms = now_ms;
    }
    s_key_t *k = s_key(self, ki);
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 2;
        k->ids = cb_realloc(k->ids, k->cap * sizeof *k->ids);
    }
    k->ids[k->n++] = (uint32_t)si;
    s_sub(self, si)->nkeys++;
    self->total++;
    return 1;
}

bool anna_subs_remove(anna_subs_t *self, const char *key, const char *address)
{
    assert(self && key && address);
    int32_t ki = s_table_find(&self->keys, key, s_hash(key));
    int32_t si = s_table_find(&self->subs, address, s_hash(address));
    if (ki < 0 || si < 0)
        return false;
    s_key_t *k = s_key(self, ki);
    for (uint32_t j = 0; j < k->n; j++)
        if (k->ids[j] == (uint32_t)si) {
            k->ids[j] = k->ids[--k->n];
            self->total--;
            s_sub_release(self, (uint32_t)si);
            if (k->n == 0)
                s_key_free(self, ki);
            return true;
        }
    return false;
}

void anna_subs_touch(anna_subs_t *self, const char *key)
{
    //  The common case of a node without caches: no hashing at all.
    if (self->total == 0)
        return;
    int32_t ki = s_table_find(&self->keys, key, s_hash(key));
    if (ki < 0)
        return;
    s_key_t *k = s_key(self, ki);
    if (k->changed)
        return;
    k->changed = true;
    if (self->nchanged == self->changed_cap) {
        self->changed_cap = self->changed_cap ? 2 * self->changed_cap : 64;
        self->changed = cb_realloc(self->changed, self->changed_cap * sizeof *self->changed);
    }
    self->changed[self->nchanged++] = ki;
}

size_t anna_subs_changed(const anna_subs_t *self)
{
    return self->nchanged;
}

void anna_subs_drain(anna_subs_t *self, anna_subs_visit_fn *fn, void *arg)
{
    assert(self && fn);
    for (size_t i = 0; i < self->nchanged; i++) {
        s_key_t *k = s_key(self, self->changed[i]);
        //  Skips a slot freed (and perhaps reused by another key) since it was added: only
        //  a key whose flag is still set is in the set, and it is visited once.
        if (!k->head.name || !k->changed)
            continue;
        k->changed = false;
        fn(arg, k->head.name, k->ids, k->n);
    }
    self->nchanged = 0;
}

const char *anna_subs_address(const anna_subs_t *self, uint32_t id)
{
    return id < self->subs.cap ? s_sub(self, (int32_t)id)->head.name : NULL;
}

uint32_t anna_subs_id_limit(const anna_subs_t *self)
{
    return (uint32_t)self->subs.cap;
}

bool anna_subs_result(anna_subs_t *self, uint32_t id, bool delivered, int64_t now_ms)
{
    assert(id < self->subs.cap);
    s_sub_t *sub = s_sub(self, (int32_t)id);
    if (!sub->head.name)
        return false;
    if (delivered) {
        sub->failures = 0;
        sub->last_ok_ms = now_ms;
        return false;
    }
    if (sub->failures < UINT32_MAX)
        sub->failures++;
    return sub->failures >= ANNA_SUBS_DEAD_FAILURES &&
           now_ms - sub->last_ok_ms >= ANNA_SUBS_DEAD_MS;
}

size_t anna_subs_drop(anna_subs_t *self, uint32_t id)
{
    assert(id < self->subs.cap);
    if (!s_sub(self, (int32_t)id)->head.name)
        return 0;
    size_t dropped = 0;
    //  Every key is looked at: dropping is rare (a dead subscriber), so the subscriber does
    //  not keep a list of its keys, which would cost memory on every subscription.
    for (size_t i = 0; i < self->keys.cap && s_sub(self, (int32_t)id)->head.name; i++) {
        s_key_t *k = s_key(self, (int32_t)i);
        if (!k->head.name)
            continue;
        for (uint32_t j = 0; j < k->n; j++)
            if (k->ids[j] == id) {
                k->ids[j] = k->ids[--k->n];
                self->total--;
                dropped++;
                s_sub_release(self, id);
                break;
            }
        if (k->n == 0)
            s_key_free(self, (int32_t)i);
    }
    return dropped;
}

size_t anna_subs_count(const anna_subs_t *self)
{
    return self->total;
}

size_t anna_subs_keys(const anna_subs_t *self)
{
    return self->keys.count;
}

size_t anna_subs_subscribers(const anna_subs_t *self)
{
    return self->subs.count;
}

//  ---- self-test ----------------------------------------------------------------------------

typedef struct {
    char seen[64][32];
    size_t ids[64];
    size_t n;
} s_visits_t;

static void s_visit(void *arg, const char *key, const uint32_t *ids, size_t n)
{
    s_visits_t *v = arg;
    (void)ids;
    assert(v->n < 64);
    snprintf(v->seen[v->n], sizeof v->seen[v->n], "%s", key);
    v->ids[v->n++] = n;
}

void anna_subs_test(bool verbose)
{
    //  @selftest
    anna_subs_t *subs = anna_subs_new(6, 3);
    anna_subs_touch(subs, "nobody");            //  no subscription: nothing happens
    assert(anna_subs_changed(subs) == 0);
    assert(anna_subs_add(subs, "k", "tcp://127.0.0.1:7000", 0) == 1);
    assert(anna_subs_add(subs, "k", "tcp://127.0.0.1:7000", 0) == 0);     //  idempotent
    assert(anna_subs_add(subs, "k", "tcp://127.0.0.1:7001", 0) == 1);
    assert(anna_subs_add(subs, "k", "tcp://127.0.0.1:7002", 0) == 1);
    assert(anna_subs_add(subs, "k", "tcp://127.0.0.1:7003", 0) == -EMLINK);  //  per key
    assert(anna_subs_count(subs) == 3 && anna_subs_keys(subs) == 1);
    assert(anna_subs_subscribers(subs) == 3);
    assert(anna_subs_add(subs, "j", "tcp://127.0.0.1:7000", 0) == 1);
    assert(anna_subs_add(subs, "i", "tcp://127.0.0.1:7000", 0) == 1);
    assert(anna_subs_add(subs, "h", "tcp://127.0.0.1:7000", 0) == 1);
    assert(anna_subs_add(subs, "g", "tcp://127.0.0.1:7000", 0) == -ENOSPC);   //  total
    assert(anna_subs_add(subs, "h", "tcp://127.0.0.1:7000", 0) == 0);     //  still idempotent

    //  The change set holds each changed subscribed key once.
    anna_subs_touch(subs, "k");
    anna_subs_touch(subs, "j");
    anna_subs_touch(subs, "k");
    anna_subs_touch(subs, "nobody");
    assert(anna_subs_changed(subs) == 2);
    s_visits_t v = {0};
    anna_subs_drain(subs, s_visit, &v);
    assert(v.n == 2 && !strcmp(v.seen[0], "k") && v.ids[0] == 3 && !strcmp(v.seen[1], "j"));
    assert(anna_subs_changed(subs) == 0);
    v.n = 0;
    anna_subs_drain(subs, s_visit, &v);
    assert(v.n == 0);

    //  A key removed (its last subscriber gone) while in the change set is not visited,
    //  not even when its slot is reused by another key.
    anna_subs_touch(subs, "j");
    assert(anna_subs_remove(subs, "j", "tcp://127.0.0.1:7000"));
    assert(!anna_subs_remove(subs, "j", "tcp://127.0.0.1:7000"));
    assert(!anna_subs_remove(subs, "k", "tcp://127.0.0.1:9999"));
    assert(anna_subs_add(subs, "f", "tcp://127.0.0.1:7001", 0) == 1);    //  reuses j's slot
    anna_subs_drain(subs, s_visit, &v);
    assert(v.n == 0);
    assert(anna_subs_count(subs) == 6 && anna_subs_keys(subs) == 4);

    //  Failure rule: dead after DEAD_FAILURES failures in a row spanning DEAD_MS.
    uint32_t id = UINT32_MAX;
    for (uint32_t i = 0; i < anna_subs_id_limit(subs); i++)
        if (s_sub(subs, (int32_t)i)->head.name &&
            !strcmp(anna_subs_address(subs, i), "tcp://127.0.0.1:7000"))
            id = i;
    assert(id != UINT32_MAX);
    for (int i = 0; i < ANNA_SUBS_DEAD_FAILURES - 1; i++)
        assert(!anna_subs_result(subs, id, false, ANNA_SUBS_DEAD_MS * 2));
    assert(!anna_subs_result(subs, id, true, 100));         //  a success resets the count
    for (int i = 0; i < ANNA_SUBS_DEAD_FAILURES; i++)
        assert(!anna_subs_result(subs, id, false, 200));    //  many failures, but not for long
    assert(anna_subs_result(subs, id, false, 100 + ANNA_SUBS_DEAD_MS));
    //  Dropping it removes its subscriptions to k, i and h; h and i are gone with it.
    assert(anna_subs_drop(subs, id) == 3);
    assert(anna_subs_drop(subs, id) == 0);
    assert(anna_subs_count(subs) == 3 && anna_subs_keys(subs) == 2);
    assert(anna_subs_subscribers(subs) == 2);
    anna_subs_touch(subs, "h");
    assert(anna_subs_changed(subs) == 0);

    //  Growth: many keys and subscribers, all found again.
    anna_subs_t *big = anna_subs_new(100000, ANNA_SUBS_MAX_PER_KEY);
    char key[32], addr[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", 1000 + i % 37);
        assert(anna_subs_add(big, key, addr, 0) == 1);
    }
    assert(anna_subs_count(big) == 5000 && anna_subs_subscribers(big) == 37);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", 1000 + i % 37);
        assert(anna_subs_remove(big, key, addr));
    }
    assert(anna_subs_count(big) == 2500 && anna_subs_keys(big) == 2500);
    for (int i = 1; i < 5000; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        anna_subs_touch(big, key);
    }
    assert(anna_subs_changed(big) == 2500);
    anna_subs_destroy(&big);

    anna_subs_t *none = anna_subs_new(0, 1);
    assert(anna_subs_add(none, "k", "tcp://127.0.0.1:7000", 0) == -ENOSPC);
    anna_subs_destroy(&none);
    anna_subs_destroy(&subs);
    anna_subs_destroy(&subs);
    //  @end
    if (verbose)
        printf("  subs ok\n");
}
