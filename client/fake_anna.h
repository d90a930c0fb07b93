//  client/fake_anna.h: a scripted Anna node in its own thread, for the client self-tests.
//  It speaks the real wire protocol on loopback (a routing socket and N worker sockets),
//  stores values with the real lattice merge, and misbehaves on purpose for keys with
//  these prefixes, so that every path of the client can be tested without a server:
//    "none:"       routing returns no address for the key
//    "noservers:"  routing answers the whole lookup with NO_SERVERS
//    "w1:"         routed to worker 1 (every other key: worker 0)
//    "two:"        routed to every worker
//    "wrong:"      the first request for the key is answered WRONG_THREAD, later ones served
//    "wrong2:"     always WRONG_THREAD
//    "inv:"        served, with invalidate set
//    "mute:"       never answered; the next request to that worker is preceded by a late
//                  reply to the muted one (an LWW "late!" value under the muted request id)
//    "split:"      answered in a second response with the same request id
//    "junk:"       answered with a malformed response carrying the right request id
//  Test support only: not for production use. Thread safe where it says so.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_FAKE_ANNA_H
#define CB_FAKE_ANNA_H

#include <stddef.h>
#include <stdint.h>

typedef struct _cb_fake_anna_t cb_fake_anna_t;

//  Binds the routing socket and n_workers worker sockets on 127.0.0.1 ephemeral ports and
//  starts serving. NULL on failure (errno set).
cb_fake_anna_t *cb_fake_anna_new(size_t n_workers);
//  Stops the thread and frees everything. Idempotent; sets *self_p to NULL.
void cb_fake_anna_destroy(cb_fake_anna_t **self_p);
//  Borrowed; valid until destroy.
const char *cb_fake_anna_routing(const cb_fake_anna_t *self);
const char *cb_fake_anna_worker(const cb_fake_anna_t *self, size_t i);
//  KeyRequests received so far, over all workers. Thread safe.
uint64_t cb_fake_anna_requests(const cb_fake_anna_t *self);
//  The address_cache_size of the last tuple received for any key. Thread safe.
uint32_t cb_fake_anna_last_cache_size(const cb_fake_anna_t *self);

#endif
