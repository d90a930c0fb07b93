//  client/kvs.h: the C client library of the KVS (libclient). What the CLI, the benchmarks,
//  the tests and users link against. Speaks the public Anna protocol: asks the routing tier
//  which worker threads own a key (cached, invalidated when the server says so), sends
//  KeyRequests over ZeroMQ PUSH and waits on its own PULL socket for the KeyResponse.
//  One cb_kvs_t belongs to one thread. Every wait is bounded by the configured timeout.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_KVS_H
#define CB_KVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lattices/lattice.h"

typedef struct _cb_kvs_t cb_kvs_t;

typedef struct {
    const char *routing;    //  routing address, "tcp://127.0.0.1:6450", or a list of up to
                            //  16 separated by commas ("tcp://127.0.0.1:6450,tcp://
                            //  127.0.0.2:6450"; blanks around each ignored); borrowed
    const char *bind_ip;    //  IP for the response socket; NULL = 127.0.0.1
    int timeout_ms;         //  bound on every wait; <= 0 = 5000
    uint32_t writer_id;     //  LWW writer id; 0 = random
} cb_kvs_config_t;

//  Errors (negative errno; cb_strerror() gives text, cb_kvs_last_error() the server's words):
//    -ENOENT      KEY_DNE: the key holds no value
//    -EINVAL      LATTICE: the value's lattice type differs from the stored one
//    -EMSGSIZE    TOO_LARGE: the value exceeds the server's limit
//    -EBADMSG     BAD_REQUEST: the server refused the request (empty key, bad payload...)
//    -ETIMEDOUT   no replica of the key answered (each was tried once, see below), or no
//                 routing address answered, within timeout_ms each
//    -EHOSTUNREACH  the routing tier knows no servers (NO_SERVERS), or none for this key
//    -EPROTO      the reply could not be decoded
//    -EAGAIN      the server answered WRONG_THREAD again after a fresh address lookup
//    -EINVAL      also: PUT of a LAT_NONE value (nothing sent)
//  Failover. An address lookup goes to the current routing address; one that does not take
//  or answer it within timeout_ms is skipped for the rest of the call and the next one of
//  the list becomes current (round robin, kept for later calls). A worker that does not
//  answer within timeout_ms becomes a suspect for max(2 x timeout_ms, 5 s) (an answer from
//  it clears that): every key cached on it is dropped, and the keys it did not answer go
//  again after a fresh lookup, to a replica they have not tried in this call, preferring
//  one that is not suspected; choosing among a key's cached replicas also avoids suspects
//  while another replica is left. A key gives up with -ETIMEDOUT when each of its replicas
//  failed it once (a key with one replica is tried twice) or after 4 attempts. If the fresh
//  lookup gets no answer (no routing address answers), the key goes to the other replicas
//  it had cached, if any; else it fails with the routing tier's error.
//  WRONG_THREAD is retried once, after a fresh lookup.
//  Bound: every wait is bounded by timeout_ms, and a call makes at most 4 attempts (waits
//  for workers) plus one failed wait per routing address, so it returns within
//  (4 + R) x timeout_ms, R the number of routing addresses (a backstop deadline enforces
//  it). Typical: a dead replica costs one timeout_ms before another replica answers; a
//  stopped single node fails a call in about 2 x timeout_ms (the worker, then the lookup).
//  Level ALL (below) makes at most two such calls.
//  Replies are matched by request id ("<writer>:<counter>"): a late reply to an earlier
//  request, or to one that timed out, is discarded, never taken for a later answer.

//  NULL if the config is invalid (errno EINVAL: a routing address not tcp:// or ipc://, an
//  empty entry or more than 16 in the list, bind_ip not a concrete IPv4 address, timeout_ms
//  above one hour) or the socket cannot be bound.
cb_kvs_t *cb_kvs_new(const cb_kvs_config_t *config);
//  Idempotent; sets *self_p to NULL.
void cb_kvs_destroy(cb_kvs_t **self_p);

//  Reads key. On 0, *out holds the value; caller owns it (lat_fini). On error *out is LAT_NONE.
int cb_kvs_get(cb_kvs_t *self, const char *key, lat_t *out);
//  Merges value into key. value is borrowed.
int cb_kvs_put(cb_kvs_t *self, const char *key, const lat_t *value);
//  PUT of an LWW value stamped now (cb_clock_lww_now) with this client's writer id.
int cb_kvs_put_lww(cb_kvs_t *self, const char *key, const void *data, size_t len);

//  On return (whatever the return value) every results[i] is set: error, and value, which is
//  LAT_NONE unless a GET got it. The caller lat_fini()s every results[i].value.
typedef struct {
    int error;              //  0 or one of the codes above, for this key
    lat_t value;            //  GET: the value when error == 0; caller owns (lat_fini)
} cb_kvs_result_t;

//  Several keys in one call: requests to the same worker are batched into one KeyRequest
//  (and the keys missing from the address cache into one KeyAddressRequest). keys and
//  results are borrowed; a key may appear more than once. results[i] answers keys[i].
//  Returns 0 when every key got an answer (look at each results[i].error, e.g. -ENOENT), or
//  the error that kept some keys from one: -ETIMEDOUT, or the routing tier's failure
//  (-EHOSTUNREACH, -EPROTO); the other keys' results are still valid.
int cb_kvs_get_many(cb_kvs_t *self, const char *const *keys, size_t n, cb_kvs_result_t *results);
//  values[i] is merged into keys[i]; errors of each key go to results[i].error (value unused).
int cb_kvs_put_many(cb_kvs_t *self, const char *const *keys, const lat_t *values, size_t n,
                    cb_kvs_result_t *results);

//  ---- acknowledgement levels (issue 5) -------------------------------------------------
//  ONE: a PUT is acknowledged by the one replica it reaches (the original Anna's behaviour:
//  the others get it by gossip within a gossip period); a GET reads one replica.
//  ALL: the call sends to every replica of the key at once (the cached ones, else looked up;
//  if an answer says the cached set is stale, it goes once more to the fresh set);
//  a PUT succeeds only when every replica merged it (and, with the server's write-ahead log,
//  logged it), a GET merges the values of every replica (-ENOENT only if none holds the
//  key). Any replica that fails fails the call, with its error (cb_kvs_last_error names the
//  replica); a PUT that fails may still have been merged by some replicas (merging it again
//  is harmless). Done by the client with the public messages: old servers support it too.
//  Suspects are not skipped: every replica in the address list must answer, and one that
//  does not within timeout_ms fails the call with -ETIMEDOUT naming it (and is dropped from
//  the cache, so a later call asks the routing tier, which lists it until it is removed).
typedef enum { CB_KVS_ONE = 0, CB_KVS_ALL = 1 } cb_kvs_level_t;
int cb_kvs_put_level(cb_kvs_t *self, const char *key, const lat_t *value, cb_kvs_level_t level);
//  On 0, *out holds the (merged) value; caller owns it. On error *out is LAT_NONE.
int cb_kvs_get_level(cb_kvs_t *self, const char *key, cb_kvs_level_t level, lat_t *out);

//  Text of the last failure, "" after a call that succeeded: "key 'k' does not exist", or
//  "key 'k': " and the server's message (kept alone when it names the key itself), or ours
//  ("key 'k': no answer from tcp://... within 500 ms"). For a batch, the first failed key.
//  Borrowed; valid until the next call on self.
const char *cb_kvs_last_error(const cb_kvs_t *self);
uint32_t cb_kvs_writer_id(const cb_kvs_t *self);
//  Drops all cached addresses (next request asks the routing tier again).
void cb_kvs_invalidate_all(cb_kvs_t *self);
//  The address replies come back to ("tcp://ip:port"). Borrowed; valid until destroy.
const char *cb_kvs_response_address(const cb_kvs_t *self);
int cb_kvs_timeout_ms(const cb_kvs_t *self);

//  Counters since cb_kvs_new, for tests, benchmarks and diagnostics.
typedef struct {
    uint64_t requests;      //  KeyRequests sent (one per worker per attempt)
    uint64_t lookups;       //  KeyAddressRequests sent to the routing tier
    uint64_t retries;       //  keys sent again (after WRONG_THREAD or a timeout)
    uint64_t wrong_thread;  //  WRONG_THREAD answers
    uint64_t invalidations; //  reply tuples with invalidate set
    uint64_t timeouts;      //  waits that ran out (routing or a worker)
    uint64_t discarded;     //  replies that matched no outstanding request (late, unknown)
} cb_kvs_stats_t;
void cb_kvs_stats(const cb_kvs_t *self, cb_kvs_stats_t *out);

//  ---- the address cache, for tests and tools --------------------------------------------
//  Number of worker addresses cached for key (0 when none).
size_t cb_kvs_cache_count(const cb_kvs_t *self, const char *key);
//  The i-th cached address of key. Borrowed; valid until the next call on self. NULL when
//  i is out of range.
const char *cb_kvs_cache_addr(const cb_kvs_t *self, const char *key, size_t i);
//  Replaces the cached addresses of key with copies of addrs[0..n) (n == 0 drops them). Lets a
//  test aim a request at a wrong thread or send a wrong address_cache_size.
void cb_kvs_cache_set(cb_kvs_t *self, const char *key, const char *const *addrs, size_t n);

void cb_kvs_test(bool verbose);

#endif
