//  anna/store.h: key -> lattice map, the shard of one worker thread. Pure: no I/O, no clock.
//  Owned by one worker thread; not thread safe. Also tracks which keys changed since the
//  last gossip round (the "change set" of Anna §2.7), so the worker needs no second map.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_STORE_H
#define ANNA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lattices/lattice.h"

typedef struct _anna_store_t anna_store_t;

//  Flags of the merge functions.
#define ANNA_STORE_MARK 1       //  if the merge changed the key, add it to the change set

//  Empty store sized for about capacity_hint keys (0 = small). Caller owns result.
anna_store_t *anna_store_new(size_t capacity_hint);
//  Frees every key and value. Idempotent; sets *self_p to NULL.
void anna_store_destroy(anna_store_t **self_p);

//  Merges value into key (copies; nothing taken). A new key stores a copy. Returns 1 if the
//  stored value changed, 0 if not, -EINVAL if key holds a lattice of another kind (unchanged).
int anna_store_merge(anna_store_t *self, const char *key, const lat_t *value, int flags);
//  As anna_store_merge, but takes the contents of *value: on return *value is LAT_NONE
//  whatever the result (a new key adopts the value without a copy).
int anna_store_merge_move(anna_store_t *self, const char *key, lat_t *value, int flags);
//  Replaces the value of key by *value (takes its contents; *value becomes LAT_NONE),
//  whatever was stored. For callers that merged into a copy first. Marks as the flags say.
void anna_store_replace(anna_store_t *self, const char *key, lat_t *value, int flags);
//  Borrowed pointer, valid until the next change to self. NULL if absent.
const lat_t *anna_store_get(const anna_store_t *self, const char *key);
//  As anna_store_get; also sets *size (if not NULL) to lat_size of the value, kept by the
//  store so that asking is O(1).
const lat_t *anna_store_get_size(const anna_store_t *self, const char *key, size_t *size);
//  Removes key. True if it was there.
bool anna_store_remove(anna_store_t *self, const char *key);

//  Number of keys.
size_t anna_store_count(const anna_store_t *self);
//  Approximate bytes held by keys and values (lat_size), plus the table itself.
size_t anna_store_bytes(const anna_store_t *self);

//  Iteration over all keys, in no particular order; the store must not change meanwhile.
//  Start with *cursor = 0. Returns the next key (borrowed) and sets *value, or NULL at the end.
const char *anna_store_next(const anna_store_t *self, size_t *cursor, const lat_t **value);

//  The i-th key (i < anna_store_count), borrowed, with its value. Removing a key moves the
//  last one into its index, so a walk from the end down may remove keys it has visited.
const char *anna_store_at(const anna_store_t *self, size_t i, const lat_t **value);

//  Number of keys in the change set.
size_t anna_store_marked(const anna_store_t *self);
//  Empties the change set and calls fn for each key that was in it (key and value borrowed
//  for the call). fn may call anna_store_mark (the key joins the next change set) but must
//  not otherwise change the store.
typedef void(anna_store_visit_fn)(void *arg, const char *key, const lat_t *value);
void anna_store_drain_marked(anna_store_t *self, anna_store_visit_fn *fn, void *arg);
//  Adds key to the change set (no-op if absent). For gossip that must be retried.
void anna_store_mark(anna_store_t *self, const char *key);

void anna_store_test(bool verbose);

#endif
