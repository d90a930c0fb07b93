//  client/kvs.h: the C client library of the KVS (libclient). What the CLI, the benchmarks,
//  the tests and users link against. Speaks the public Anna protocol: asks the routing tier
//  which worker threads own a key (cached, invalidated when the server says so), sends
//  KeyRequests over ZeroMQ PUSH and waits on its own PULL socket for the KeyResponse.
//  One cb_kvs_t belongs to one thread. Every wait is bounded by the configured timeout.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_KVS_H
#define CB_KVS_H

#include <stddef.h>
#include <stdint.h>

#include "lattices/lattice.h"

typedef struct _cb_kvs_t cb_kvs_t;

typedef struct {
    const char *routing;    //  routing address, "tcp://127.0.0.1:6450"; borrowed
    const char *bind_ip;    //  IP for the response socket; NULL = 127.0.0.1
    int timeout_ms;         //  bound on every wait; <= 0 = 5000
    uint32_t writer_id;     //  LWW writer id; 0 = random
} cb_kvs_config_t;

//  Errors (negative errno; cb_strerror() gives text, cb_kvs_last_error() the server's words):
//    -ENOENT      KEY_DNE: the key holds no value
//    -EINVAL      LATTICE: the value's lattice type differs from the stored one
//    -EMSGSIZE    TOO_LARGE: the value exceeds the server's limit
//    -EBADMSG     BAD_REQUEST: the server refused the request (empty key, bad payload...)
//    -ETIMEDOUT   no answer within timeout_ms (after one address refresh and retry)
//    -EHOSTUNREACH  the routing tier knows no servers (NO_SERVERS)
//    -EPROTO      the reply could not be decoded

//  NULL if the config is invalid or the socket cannot be bound; errno is set.
cb_kvs_t *cb_kvs_new(const cb_kvs_config_t *config);
//  Idempotent; sets *self_p to NULL.
void cb_kvs_destroy(cb_kvs_t **self_p);

//  Reads key. On 0, *out holds the value; caller owns it (lat_fini). On error *out is LAT_NONE.
int cb_kvs_get(cb_kvs_t *self, const char *key, lat_t *out);
//  Merges value into key. value is borrowed.
int cb_kvs_put(cb_kvs_t *self, const char *key, const lat_t *value);
//  PUT of an LWW value stamped now (cb_clock_lww_now) with this client's writer id.
int cb_kvs_put_lww(cb_kvs_t *self, const char *key, const void *data, size_t len);

typedef struct {
    int error;              //  0 or one of the codes above, for this key
    lat_t value;            //  GET: the value when error == 0; caller owns (lat_fini)
} cb_kvs_result_t;

//  Several keys in one call: requests to the same worker are batched into one KeyRequest.
//  results[i] answers keys[i]. Returns 0 when every key got an answer (look at each
//  results[i].error), or the error that stopped the whole call (-ETIMEDOUT, ...).
int cb_kvs_get_many(cb_kvs_t *self, const char *const *keys, size_t n, cb_kvs_result_t *results);
//  values[i] is merged into keys[i]; errors of each key go to results[i].error (value unused).
int cb_kvs_put_many(cb_kvs_t *self, const char *const *keys, const lat_t *values, size_t n,
                    cb_kvs_result_t *results);

//  Text of the last failure, with the server's message when it gave one. Borrowed; valid
//  until the next call on self.
const char *cb_kvs_last_error(const cb_kvs_t *self);
uint32_t cb_kvs_writer_id(const cb_kvs_t *self);
//  Drops all cached addresses (next request asks the routing tier again).
void cb_kvs_invalidate_all(cb_kvs_t *self);

void cb_kvs_test(bool verbose);

#endif
