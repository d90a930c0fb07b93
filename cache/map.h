//  cache/map.h: string -> pointer hash map, the index of every table of the cache (entries by
//  key, KVS operations by request id, fetches by key, the address cache). Intrusive: the map
//  borrows each key, which normally lives in the value it maps to, so a key is stored once.
//  Pure; owned by one thread; not thread safe.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CACHE_MAP_H
#define CACHE_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct _cache_map_t cache_map_t;

//  Empty map. Caller owns result.
cache_map_t *cache_map_new(void);
//  Frees the map, not the keys or values. Idempotent; sets *self_p to NULL.
void cache_map_destroy(cache_map_t **self_p);

//  The value of key, NULL if absent.
void *cache_map_get(const cache_map_t *self, const char *key);
//  Maps key to value (not NULL). key is borrowed: it must stay valid and unchanged while it
//  is in the map (replacing an existing key stores the new pointer). Returns the value
//  replaced, or NULL.
void *cache_map_put(cache_map_t *self, const char *key, void *value);
//  Removes key. Returns its value, or NULL if absent.
void *cache_map_remove(cache_map_t *self, const char *key);
size_t cache_map_count(const cache_map_t *self);
//  Removes every key, calling free_fn (if not NULL) on each value.
void cache_map_clear(cache_map_t *self, void (*free_fn)(void *value));

//  Iteration in no particular order; the map must not change meanwhile. Start with
//  *cursor = 0. Returns the next value, NULL at the end.
void *cache_map_next(const cache_map_t *self, size_t *cursor);

void cache_map_test(bool verbose);

#endif
