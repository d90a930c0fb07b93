//  cache/store.h: the cache's memory: key -> lattice value, bounded in bytes, least recently
//  used first out, with each value's wire encoding kept beside it so that a hit costs no
//  encoding. An entry can be negative (the KVS said KEY_DNE), and pinned (an operation on the
//  key is pending: never evicted). Pure: no I/O, no clock (callers pass `now`).
//  Owned by the cache's thread; not thread safe.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CACHE_STORE_H
#define CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "lattices/lattice.h"

typedef struct _cache_store_t cache_store_t;

//  What a lookup sees. Everything borrowed; valid until the next change to the store.
typedef struct {
    const lat_t *value;         //  LAT_NONE for a negative entry
    const cb_bytes_t *payload;  //  wire_encode of value (empty for a negative entry)
    int64_t since_ms;           //  when the entry was stored (negative entries expire from it)
    uint32_t home;              //  the caller's tag given at put (the cache: KVS worker index)
    uint32_t pins;
} cache_view_t;

//  Empty store holding at most max_bytes (entries, keys, values and encodings, as counted
//  by cache_store_bytes) once cache_store_evict has run. Caller owns result.
cache_store_t *cache_store_new(size_t max_bytes);
//  Frees every entry. Idempotent; sets *self_p to NULL.
void cache_store_destroy(cache_store_t **self_p);

//  Looks key up; if found, makes it the most recently used, fills *view (if not NULL) and
//  returns true.
bool cache_store_get(cache_store_t *self, const char *key, cache_view_t *view);
//  As cache_store_get without touching the LRU order.
bool cache_store_peek(cache_store_t *self, const char *key, cache_view_t *view);

//  Stores *value (takes its contents; *value becomes LAT_NONE) at key (copied), replacing
//  any entry, pins kept. A LAT_NONE value makes a negative entry. The entry becomes the
//  most recently used. home and now_ms are kept (cache_view_t).
void cache_store_put(cache_store_t *self, const char *key, lat_t *value, uint32_t home,
                     int64_t now_ms);
//  Merges value (borrowed) into the entry of key. A negative entry adopts a copy of value.
//  Returns 1 if the entry changed, 0 if not, -ENOENT if key is absent, -EINVAL if the entry
//  holds another lattice kind (unchanged).
int cache_store_merge(cache_store_t *self, const char *key, const lat_t *value);
//  Removes key whatever its pins. True if it was there.
bool cache_store_remove(cache_store_t *self, const char *key);

//  Pins (delta +1) or unpins (-1) key. Returns false if key is absent.
bool cache_store_pin(cache_store_t *self, const char *key, int delta);

//  Evicts least recently used unpinned entries until the store holds at most max_bytes (or
//  only pinned entries remain), calling fn (if not NULL) with each key and home before the
//  entry is freed (key borrowed for the call). Returns how many were evicted.
typedef void(cache_store_evict_fn)(void *arg, const char *key, uint32_t home);
size_t cache_store_evict(cache_store_t *self, cache_store_evict_fn *fn, void *arg);

size_t cache_store_count(const cache_store_t *self);
size_t cache_store_bytes(const cache_store_t *self);
size_t cache_store_max_bytes(const cache_store_t *self);

//  Visits up to max keys, most recently used first (key borrowed for the call).
typedef void(cache_store_key_fn)(void *arg, const char *key);
void cache_store_keys(const cache_store_t *self, size_t max, cache_store_key_fn *fn, void *arg);

void cache_store_test(bool verbose);

#endif
