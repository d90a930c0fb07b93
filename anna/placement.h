//  anna/placement.h: which worker threads of a node own a key: the local hash ring (Anna
//  §2.4) with the local replication factor, plus the rules for reserved metadata keys.
//  Pure: no I/O. Read-only after anna_placement_new; each actor builds its own copy, and
//  copies built from the same parameters agree on every key.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_PLACEMENT_H
#define ANNA_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Keys with this prefix are the server's own (Anna §2.8): clients cannot PUT them.
#define ANNA_RESERVED_PREFIX "ANNA_METADATA|"
//  GET returns the counters of the thread asked, as one-line JSON in an LWW value. The key
//  routes to thread 0; "ANNA_METADATA|stats|<t>" routes to (and is answered only by) thread t.
#define ANNA_STATS_KEY "ANNA_METADATA|stats"

//  GET returns the cluster members as this node sees them, as one-line JSON in an LWW value
//  ({"self":"127.0.0.1","members":["127.0.0.1",...],"global_replication":2}); any thread
//  answers it.
#define ANNA_MEMBERS_KEY "ANNA_METADATA|members"

//  Per-key replication (Anna §2.8): an LWW value "G L" under ANNA_REPLICATION_PREFIX "<key>"
//  gives <key> G owner nodes and L owner threads on each, instead of the node's defaults.
#define ANNA_REPLICATION_PREFIX "ANNA_METADATA|replication|"

typedef enum {
    ANNA_KEY_DATA,              //  an ordinary key
    ANNA_KEY_RESERVED,          //  ANNA_METADATA|... other than the stats keys
    ANNA_KEY_STATS,             //  ANNA_STATS_KEY, or ANNA_STATS_KEY "|<t>" with t < threads
    ANNA_KEY_MEMBERS,           //  ANNA_MEMBERS_KEY
    ANNA_KEY_REPLICATION,       //  ANNA_REPLICATION_PREFIX followed by a key
} anna_key_kind_t;

typedef struct _anna_placement_t anna_placement_t;

//  threads >= 1, 1 <= replication <= threads, vnodes >= 1. Caller owns result.
anna_placement_t *anna_placement_new(uint32_t threads, uint32_t replication, uint32_t vnodes);
//  Idempotent; sets *self_p to NULL.
void anna_placement_destroy(anna_placement_t **self_p);

//  Classifies key (len bytes). For ANNA_KEY_STATS, *thread is the thread named by the key,
//  or -1 for the plain stats key (any thread answers it for itself).
anna_key_kind_t anna_placement_classify(const anna_placement_t *self, const char *key, size_t len,
                                        int *thread);
//  Writes the owners of key to out[] (room for `replication` entries), primary first;
//  returns how many (replication, or 1 for the stats keys).
size_t anna_placement_owners(const anna_placement_t *self, const char *key, size_t len,
                             uint32_t *out);
//  As anna_placement_owners with `replication` owners (1..threads) for a data key.
size_t anna_placement_owners_rep(const anna_placement_t *self, const char *key, size_t len,
                                 uint32_t replication, uint32_t *out);
//  True if thread owns key; *owners gets the number of owners (what a client's address
//  cache should hold for the key).
bool anna_placement_owns(const anna_placement_t *self, uint32_t thread, const char *key,
                         size_t len, size_t *owners);
//  As anna_placement_owns with `replication` owners for a data key.
bool anna_placement_owns_rep(const anna_placement_t *self, uint32_t thread, const char *key,
                             size_t len, uint32_t replication, size_t *owners);
uint32_t anna_placement_threads(const anna_placement_t *self);
uint32_t anna_placement_replication(const anna_placement_t *self);

void anna_placement_test(bool verbose);

#endif
