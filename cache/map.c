//  cache/map.c: open addressing with linear probing over a power-of-two table, at most 3/4
//  full, and backward-shift deletion (no tombstones, so lookups stay short however many keys
//  come and go: a cache removes as often as it inserts).
//  SPDX-License-Identifier: Apache-2.0
#include "cache/map.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "anna/ring.h"
#include "common/alloc.h"

#define S_SEED 0xcac4e11aULL

typedef struct {
    const char *key;            //  borrowed; NULL when the slot is empty
    uint64_t hash;
    void *value;
} s_slot_t;

struct _cache_map_t {
    s_slot_t *slots;
    size_t mask;                //  slots - 1
    size_t count;
};

cache_map_t *cache_map_new(void)
{
    cache_map_t *self = cb_calloc(1, sizeof *self);
    self->slots = cb_calloc(16, sizeof *self->slots);
    self->mask = 15;
    return self;
}

void cache_map_destroy(cache_map_t **self_p)
{
    assert(self_p);
    cache_map_t *self = *self_p;
    if (!self)
        return;
    cb_free(self->slots);
    cb_free(self);
    *self_p = NULL;
}

static uint64_t s_hash(const char *key)
{
    return anna_hash(key, strlen(key), S_SEED);
}

//  The slot holding key, or the empty slot where it would go.
static size_t s_find(const cache_map_t *self, const char *key, uint64_t hash)
{
    size_t i = hash & self->mask;
    while (self->slots[i].key &&
           (self->slots[i].hash != hash || strcmp(self->slots[i].key, key) != 0))
        i = (i + 1) & self->mask;
    return i;
}

static void s_grow(cache_map_t *self)
{
    s_slot_t *old = self->slots;
    size_t n = self->mask + 1;
    self->slots = cb_calloc(2 * n, sizeof *self->slots);
    self->mask = 2 * n - 1;
    for (size_t i = 0; i < n; i++)
        if (old[i].key) {
            size_t j = old[i].hash & self->mask;
            while (self->slots[j].key)
                j = (j + 1) & self->mask;
            self->slots[j] = old[i];
        }
    cb_free(old);
}

void *cache_map_get(const cache_map_t *self, const char *key)
{
    assert(self && key);
    size_t i = s_find(self, key, s_hash(key));
    return self->slots[i].key ? self->slots[i].value : NULL;
}

void *cache_map_put(cache_map_t *self, const char *key, void *value)
{
    assert(self && key && value);
    uint64_t hash = s_hash(key);
    size_t i = s_find(self, key, hash);
    if (self->slots[i].key) {
        void *old = self->slots[i].value;
        self->slots[i].key = key;
        self->slots[i].value = value;
        return old;
    }
    if (4 * (self->count + 1) > 3 * (self->mask + 1)) {
        s_grow(self);
        i = s_find(self, key, hash);
    }
    self->slots[i] = (s_slot_t){key, hash, value};
    self->count++;
    return NULL;
}

void *cache_map_remove(cache_map_t *self, const char *key)
{
    assert(self && key);
    size_t i = s_find(self, key, s_hash(key));
    if (!self->slots[i].key)
        return NULL;
    void *value = self->slots[i].value;
    //  Backward shift: move each following entry of the run into the hole if the hole lies
    //  between its home slot and where it sits, so no probe sequence is cut short.
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & self->mask;
        if (!self->slots[j].key)
            break;
        size_t home = self->slots[j].hash & self->mask;
        //  Movable when its home is at least as far back (cyclically) as the hole.
        if (((j - home) & self->mask) >= ((j - hole) & self->mask)) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole] = (s_slot_t){0};
    self->count--;
    return value;
}

size_t cache_map_count(const cache_map_t *self)
{
    return self->count;
}

void cache_map_clear(cache_map_t *self, void (*free_fn)(void *value))
{
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].key) {
            if (free_fn)
                free_fn(self->slots[i].value);
            self->slots[i] = (s_slot_t){0};
        }
    self->count = 0;
}

void *cache_map_next(const cache_map_t *self, size_t *cursor)
{
    while (*cursor <= self->mask) {
        size_t i = (*cursor)++;
        if (self->slots[i].key)
            return self->slots[i].value;
    }
    return NULL;
}

//  ---- self-test ----------------------------------------------------------------------------

void cache_map_test(bool verbose)
{
    //  @selftest
    enum { N = 5000 };
    static char keys[N][16];
    cache_map_t *map = cache_map_new();
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        assert(cache_map_put(map, keys[i], keys[i]) == NULL);
    }
    assert(cache_map_count(map) == N);
    for (int i = 0; i < N; i++)
        assert(cache_map_get(map, keys[i]) == keys[i]);
    assert(cache_map_get(map, "absent") == NULL);
    //  Replacing returns the old value; the count stays.
    char other[16] = "k7";
    assert(cache_map_put(map, other, other) == keys[7]);
    assert(cache_map_get(map, "k7") == other && cache_map_count(map) == N);
    assert(cache_map_put(map, keys[7], keys[7]) == other);
    //  Removing every other key keeps every remaining one reachable (backward shift).
    for (int i = 0; i < N; i += 2)
        assert(cache_map_remove(map, keys[i]) == keys[i]);
    assert(cache_map_remove(map, keys[0]) == NULL);
    assert(cache_map_count(map) == N / 2);
    for (int i = 0; i < N; i++)
        assert(cache_map_get(map, keys[i]) == (i % 2 ? keys[i] : NULL));
    size_t cursor = 0, seen = 0;
    while (cache_map_next(map, &cursor))
        seen++;
    assert(seen == N / 2);
    //  Churn in a small map: insert and remove in a sliding window, wrapping around.
    cache_map_t *small = cache_map_new();
    for (int i = 0; i < N; i++) {
        cache_map_put(small, keys[i], keys[i]);
        if (i >= 5)
            assert(cache_map_remove(small, keys[i - 5]) == keys[i - 5]);
        for (int j = i - 4 < 0 ? 0 : i - 4; j <= i; j++)
            assert(cache_map_get(small, keys[j]) == keys[j]);
    }
    assert(cache_map_count(small) == 5);
    cache_map_clear(small, NULL);
    assert(cache_map_count(small) == 0 && cache_map_get(small, keys[N - 1]) == NULL);
    cache_map_destroy(&small);
    cache_map_destroy(&map);
    cache_map_destroy(&map);
    //  @end
    if (verbose)
        printf("  map ok\n");
}
