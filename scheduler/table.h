//  scheduler/table.h: a hash table from strings to pointers (open addressing, linear probing,
//  backward-shift deletion, so no tombstones pile up). The scheduler's maps: functions,
//  DAGs, executor ids, node cache key sets. Pure; one owner, not thread safe.
//  SPDX-License-Identifier: Apache-2.0
#ifndef SCHED_TABLE_H
#define SCHED_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _sched_table_t sched_table_t;

//  free_value (may be NULL) is called on every value the table drops: a replaced or removed
//  value, and every value at destroy. Caller owns result.
sched_table_t *sched_table_new(void (*free_value)(void *value));
//  Frees every key and value. Idempotent; sets *self_p to NULL.
void sched_table_destroy(sched_table_t **self_p);

//  The value at key, or NULL when absent. Borrowed; valid until it is replaced or removed.
void *sched_table_get(const sched_table_t *self, const char *key);
bool sched_table_contains(const sched_table_t *self, const char *key);
//  Inserts key (copied) -> value, taking ownership of value; a previous value at key is freed
//  with free_value. value may be NULL (a set member).
void sched_table_put(sched_table_t *self, const char *key, void *value);
//  Removes key and frees its value. True if it was there.
bool sched_table_remove(sched_table_t *self, const char *key);
//  Removes every entry (values freed); keeps the capacity.
void sched_table_clear(sched_table_t *self);
size_t sched_table_size(const sched_table_t *self);

//  Iteration in no particular order. Start with *pos = 0; each call sets *key (borrowed) and
//  *value and returns true, or returns false at the end. The table must not change during
//  an iteration.
bool sched_table_next(const sched_table_t *self, size_t *pos, const char **key, void **value);
//  Every key in byte order, as borrowed pointers valid until the table changes. Caller owns
//  the array (cb_free); *n gets its length. NULL when the table is empty.
const char **sched_table_keys_sorted(const sched_table_t *self, size_t *n);

//  The 64-bit string hash the table uses (FNV-1a with a final mix); exposed for tests.
uint64_t sched_table_hash(const char *key, size_t len);

void sched_table_test(bool verbose);

#endif
