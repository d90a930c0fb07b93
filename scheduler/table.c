//  scheduler/table.c: slots in a power-of-two array, at most 70% full. A removal shifts the
//  following entries of the probe run back (Knuth's algorithm R), so lookups never walk over
//  dead slots however many names come and go (executors restart, DAGs are re-registered).
//  SPDX-License-Identifier: Apache-2.0
#include "scheduler/table.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

typedef struct {
    char *key;                  //  owned; NULL for a free slot
    uint64_t hash;
    void *value;                //  owned through free_value
} s_slot_t;

struct _sched_table_t {
    s_slot_t *slots;
    size_t mask;                //  slot count - 1
    size_t size;                //  slots in use
    void (*free_value)(void *value);
};

#define S_MIN_SLOTS 16

uint64_t sched_table_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    //  FNV's low bits are weak for short keys that differ in their last byte: mix them
    //  (murmur3 finaliser) before masking.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

sched_table_t *sched_table_new(void (*free_value)(void *value))
{
    sched_table_t *self = cb_calloc(1, sizeof *self);
    self->slots = cb_calloc(S_MIN_SLOTS, sizeof *self->slots);
    self->mask = S_MIN_SLOTS - 1;
    self->free_value = free_value;
    return self;
}

void sched_table_clear(sched_table_t *self)
{
    assert(self);
    for (size_t i = 0; i <= self->mask; i++) {
        s_slot_t *s = &self->slots[i];
        if (!s->key)
            continue;
        cb_free(s->key);
        if (self->free_value && s->value)
            self->free_value(s->value);
        memset(s, 0, sizeof *s);
    }
    self->size = 0;
}

void sched_table_destroy(sched_table_t **self_p)
{
    assert(self_p);
    sched_table_t *self = *self_p;
    if (!self)
        return;
    sched_table_clear(self);
    cb_free(self->slots);
    cb_free(self);
    *self_p = NULL;
}

//  Slot of key, or of the free slot that ends its probe run.
static size_t s_find(const sched_table_t *self, const char *key, uint64_t hash)
{
    size_t i = hash & self->mask;
    while (self->slots[i].key &&
           (self->slots[i].hash != hash || strcmp(self->slots[i].key, key) != 0))
        i = (i + 1) & self->mask;
    return i;
}

static void s_grow(sched_table_t *self)
{
    size_t old_count = self->mask + 1;
    s_slot_t *old = self->slots;
    self->slots = cb_calloc(old_count * 2, sizeof *self->slots);
    self->mask = old_count * 2 - 1;
    for (size_t i = 0; i < old_count; i++) {
        if (!old[i].key)
            continue;
        size_t j = old[i].hash & self->mask;
        while (self->slots[j].key)
            j = (j + 1) & self->mask;
        self->slots[j] = old[i];
    }
    cb_free(old);
}

void *sched_table_get(const sched_table_t *self, const char *key)
{
    assert(self && key);
    size_t i = s_find(self, key, sched_table_hash(key, strlen(key)));
    return self->slots[i].key ? self->slots[i].value : NULL;
}

bool sched_table_contains(const sched_table_t *self, const char *key)
{
    assert(self && key);
    return self->slots[s_find(self, key, sched_table_hash(key, strlen(key)))].key != NULL;
}

void sched_table_put(sched_table_t *self, const char *key, void *value)
{
    assert(self && key);
    uint64_t hash = sched_table_hash(key, strlen(key));
    size_t i = s_find(self, key, hash);
    s_slot_t *s = &self->slots[i];
    if (s->key) {
        if (self->free_value && s->value && s->value != value)
            self->free_value(s->value);
        s->value = value;
        return;
    }
    if ((self->size + 1) * 10 > (self->mask + 1) * 7) {
        s_grow(self);
        i = s_find(self, key, hash);
        s = &self->slots[i];
    }
    s->key = cb_strdup(key);
    s->hash = hash;
    s->value = value;
    self->size++;
}

bool sched_table_remove(sched_table_t *self, const char *key)
{
    assert(self && key);
    size_t i = s_find(self, key, sched_table_hash(key, strlen(key)));
    if (!self->slots[i].key)
        return false;
    cb_free(self->slots[i].key);
    if (self->free_value && self->slots[i].value)
        self->free_value(self->slots[i].value);
    self->size--;
    //  Backward shift: move each later entry of the run into the hole unless its home slot
    //  lies cyclically in (hole, j], where it would become unreachable.
    size_t hole = i;
    for (size_t j = (i + 1) & self->mask; self->slots[j].key; j = (j + 1) & self->mask) {
        size_t home = self->slots[j].hash & self->mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        self->slots[hole] = self->slots[j];
        hole = j;
    }
    memset(&self->slots[hole], 0, sizeof self->slots[hole]);
    return true;
}

size_t sched_table_size(const sched_table_t *self)
{
    assert(self);
    return self->size;
}

bool sched_table_next(const sched_table_t *self, size_t *pos, const char **key, void **value)
{
    assert(self && pos);
    for (size_t i = *pos; i <= self->mask; i++)
        if (self->slots[i].key) {
            if (key)
                *key = self->slots[i].key;
            if (value)
                *value = self->slots[i].value;
            *pos = i + 1;
            return true;
        }
    *pos = self->mask + 1;
    return false;
}

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **sched_table_keys_sorted(const sched_table_t *self, size_t *n)
{
    assert(self && n);
    *n = self->size;
    if (self->size == 0)
        return NULL;
    const char **keys = cb_malloc(self->size * sizeof *keys);
    size_t k = 0;
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].key)
            keys[k++] = self->slots[i].key;
    qsort(keys, k, sizeof *keys, s_strcmp_p);
    return keys;
}

//  ---- self-test ----------------------------------------------------------------------------

static int s_freed;

static void s_count_free(void *value)
{
    s_freed++;
    cb_free(value);
}

void sched_table_test(bool verbose)
{
    //  @selftest
    sched_table_t *t = sched_table_new(s_count_free);
    assert(sched_table_get(t, "a") == NULL && sched_table_size(t) == 0);
    size_t n = 7;
    assert(sched_table_keys_sorted(t, &n) == NULL && n == 0);
    sched_table_put(t, "b", cb_strdup("B"));
    sched_table_put(t, "a", cb_strdup("A"));
    assert(strcmp(sched_table_get(t, "a"), "A") == 0);
    sched_table_put(t, "a", cb_strdup("A2"));       //  replaces, frees the old value
    assert(s_freed == 1 && strcmp(sched_table_get(t, "a"), "A2") == 0);
    assert(sched_table_size(t) == 2);
    const char **keys = sched_table_keys_sorted(t, &n);
    assert(n == 2 && strcmp(keys[0], "a") == 0 && strcmp(keys[1], "b") == 0);
    cb_free(keys);
    assert(sched_table_remove(t, "a") && s_freed == 2 && !sched_table_remove(t, "a"));
    assert(!sched_table_contains(t, "a") && sched_table_contains(t, "b"));
    //  A set: NULL values.
    sched_table_put(t, "member", NULL);
    assert(sched_table_contains(t, "member") && sched_table_get(t, "member") == NULL);
    sched_table_clear(t);
    assert(sched_table_size(t) == 0 && s_freed == 3);

    //  Many keys in and out, checked against a plain array: growth and backward shifts keep
    //  every remaining key reachable.
    enum { N = 5000 };
    static bool present[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "fn-%d", i);
        int *v = cb_malloc(sizeof *v);
        *v = i;
        sched_table_put(t, key, v);
        present[i] = true;
    }
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof key, "fn-%d", i);
        assert(sched_table_remove(t, key));
        present[i] = false;
    }
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "fn-%d", i);
        int *v = sched_table_get(t, key);
        assert(present[i] ? v && *v == i : v == NULL);
        live += present[i];
    }
    assert(sched_table_size(t) == live);
    size_t pos = 0, seen = 0;
    const char *k;
    void *v;
    while (sched_table_next(t, &pos, &k, &v))
        seen++;
    assert(seen == live);
    sched_table_destroy(&t);
    sched_table_destroy(&t);
    assert(t == NULL);
    //  @end
    if (verbose)
        printf("  table ok (%d values freed)\n", s_freed);
}
