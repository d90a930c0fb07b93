//  cache/cache.h: the cache actor of one node (cb-cache). To executors it is an Anna node: it
//  answers KeyAddressRequests on its routing socket with its own data address, and
//  KeyRequests on its data socket as an Anna worker would, so the ordinary KVS client
//  (client/kvs.h) configured with the cache's routing address uses it unchanged. Behind
//  that, it is an Anna client that never blocks: misses are fetched from the KVS
//  asynchronously (concurrent misses on one key share one fetch), subscribed to in the same
//  GET, and cached within a byte bound (LRU); PUTs are written through and acknowledged
//  once the KVS merged them; the KVS pushes every change of a cached key (docs/protocol.md,
//  push subscriptions). KEY_DNE is passed on and cached for negative-ms (the subscription
//  pushes the key's creation). Every wait for the KVS is bounded by the configured timeout.
//  The details are in cache/README.md.
//  One thread: everything here is owned by the thread that calls cache_run.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CACHE_CACHE_H
#define CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/config.h"

//  Counters. Requests and lookups are messages; the others count tuples or operations.
typedef struct {
    uint64_t requests;          //  KeyRequests from executors
    uint64_t lookups;           //  KeyAddressRequests from executors
    uint64_t gets;              //  GET tuples
    uint64_t puts;              //  PUT tuples
    uint64_t hits;              //  GETs answered with a value from memory
    uint64_t negative_hits;     //  GETs answered KEY_DNE from memory
    uint64_t misses;            //  GETs that waited for the KVS
    uint64_t coalesced;         //  misses that joined a fetch of the same key in flight
    uint64_t kvs_fetches;       //  GETs sent to the KVS
    uint64_t kvs_puts;          //  PUTs sent to the KVS
    uint64_t kvs_lookups;       //  KeyAddressRequests sent to the KVS routing tier
    uint64_t kvs_errors;        //  error answers of the KVS passed on to executors
    uint64_t kvs_timeouts;      //  KVS operations that ran out of time or could not be sent
    uint64_t kvs_late;          //  KVS answers to operations no longer pending
    uint64_t updates;           //  key values pushed by the KVS
    uint64_t updates_applied;   //  of them, merged into a cached value or a fetch in flight
    uint64_t unsubscribes;      //  keys unsubscribed (evicted, or pushed but not held)
    uint64_t evictions;         //  entries evicted by the byte bound
    uint64_t overloaded;        //  tuples refused: too many waiting for the KVS
    uint64_t malformed;         //  messages dropped undecoded
    uint64_t bad_request;       //  tuples the cache itself refused (BAD_REQUEST, LATTICE)
    uint64_t replies;           //  KeyResponses and KeyAddressResponses sent to executors
    uint64_t replies_dropped;   //  replies not sent (executor's queue full or bad address)
    uint64_t reports;           //  status reports sent to the scheduler
    uint64_t causal_held;       //  multi-key causal versions held back (dependencies not here)
    uint64_t causal_released;   //  of them, shown once their dependencies were
    uint64_t causal_superseded; //  of them, dropped: the cache came to show a newer version
    uint64_t causal_dropped;    //  held versions given up (key evicted, too many held)
    uint64_t keys;              //  entries cached (at the time of the snapshot)
    uint64_t bytes;             //  bytes they count for (idem)
} cache_stats_t;

typedef struct _cache_t cache_t;

//  Creates the cache and binds its sockets (routing, data, updates, and two for the KVS's
//  answers). config is copied. Returns NULL with "cannot bind tcp://...: Address already in
//  use" (or similar) in err. Caller owns result.
cache_t *cache_new(const cache_config_t *config, char *err, size_t errlen);
//  Closes every socket, fails nothing (pending executors get no answer; their own timeouts
//  end their waits). Idempotent; sets *self_p to NULL.
void cache_destroy(cache_t **self_p);

//  Runs the loop until stop_fd (a signalfd, or any descriptor) becomes readable. Returns 0,
//  or a negative errno if polling failed.
int cache_run(cache_t *self, int stop_fd);

//  The bound addresses, with ephemeral ports resolved. Borrowed; valid until destroy.
const char *cache_routing_address(const cache_t *self);
const char *cache_data_address(const cache_t *self);
const char *cache_updates_address(const cache_t *self);

//  Copy of the counters (the loop's thread, or after cache_run returned).
void cache_stats(const cache_t *self, cache_stats_t *out);
//  One line: JSON ({"node":"n0","requests":1,...}) or "n0: requests=1 ...". Returns the
//  length (truncated to len - 1, like snprintf).
size_t cache_stats_format(const cache_stats_t *stats, const char *node, bool json, char *buf,
                          size_t len);

void cache_cache_test(bool verbose);

#endif
