//  anna/overrides.h: per-key replication factors (Anna §2.8: the original keeps them under
//  ANNA_METADATA|replication|<key>). A client PUTs an LWW value "G L" there; every thread of
//  every node and every routing thread keeps the merged values, and places <key> on G nodes
//  and L threads of each instead of the defaults. Pure: no I/O. One owner; not thread safe.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_OVERRIDES_H
#define ANNA_OVERRIDES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lattices/lattice.h"

//  Largest G an override may ask for.
#define ANNA_OVERRIDES_MAX_GLOBAL 64

typedef struct _anna_overrides_t anna_overrides_t;

//  Caller owns result.
anna_overrides_t *anna_overrides_new(void);
//  Idempotent; sets *self_p to NULL.
void anna_overrides_destroy(anna_overrides_t **self_p);

//  Checks the text of an override: "G L", 1 <= G <= ANNA_OVERRIDES_MAX_GLOBAL and
//  1 <= L <= threads. Returns 0, or -EINVAL with a message in err.
int anna_overrides_parse(const void *text, size_t len, uint32_t threads, uint32_t *global,
                         uint32_t *local, char *err, size_t errlen);
//  Merges value (an LWW lattice, borrowed) into the override of data key `key`. Returns 1 if
//  the override changed, 0 if not, -EINVAL (with err) if value is not a valid LWW "G L".
int anna_overrides_merge(anna_overrides_t *self, const char *key, const lat_t *value,
                         uint32_t threads, char *err, size_t errlen);
//  The override of data key (len bytes), if any: *global and *local set, true.
bool anna_overrides_lookup(const anna_overrides_t *self, const char *key, size_t len,
                           uint32_t *global, uint32_t *local);
//  The stored value of the override of key (borrowed), or NULL.
const lat_t *anna_overrides_get(const anna_overrides_t *self, const char *key);
size_t anna_overrides_count(const anna_overrides_t *self);
//  The i-th (data key, value), borrowed until the next change.
const char *anna_overrides_at(const anna_overrides_t *self, size_t i, const lat_t **value);

void anna_overrides_test(bool verbose);

#endif
