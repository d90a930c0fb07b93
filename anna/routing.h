//  anna/routing.h: the routing actor (Anna §2.5): one thread answering KeyAddressRequests on
//  port 6450+offset with the addresses of the worker threads that own each key (on every
//  owner node of the cluster), so clients can send KeyRequests straight to an owner. It also
//  runs the node's cluster membership on port 6400+offset (anna/membership.h): join through
//  a seed, heartbeats, leave, expiry, and tells the node's workers the live members. Holds its own copy of the placement; created
//  and bound by the server's thread, then run by its own thread until the ZeroMQ context is
//  shut down. Never blocks on a client and never trusts a byte from the network.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_ROUTING_H
#define ANNA_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anna/config.h"

//  In-process endpoints of the node's membership: worker t binds a PULL on
//  ANNA_INPROC_MEMBERS "<t>" (MEMBERS, HANDOVER from the routing thread); the routing thread
//  binds ANNA_INPROC_ROUTING_CTL (HANDOVER from the server); the server binds
//  ANNA_INPROC_SERVER (joined / refused from the routing thread, HANDOVER_DONE from workers).
#define ANNA_INPROC_MEMBERS "inproc://anna-members-"
#define ANNA_INPROC_ROUTING_CTL "inproc://anna-routing-ctl"
#define ANNA_INPROC_SERVER "inproc://anna-server-ctl"
//  The routing thread binds a PULL here; workers send it every replication override that
//  changed theirs (a KeyRequest PUT of ANNA_REPLICATION_PREFIX keys, anna/overrides.h).
#define ANNA_INPROC_ROUTING_META "inproc://anna-routing-meta"

typedef struct {
    uint64_t requests;          //  KeyAddressRequests answered or attempted
    uint64_t keys;              //  keys resolved
    uint64_t malformed;         //  messages dropped undecoded
    uint64_t bad_address;       //  requests without a usable response address
    uint64_t replies;           //  KeyAddressResponses sent
    uint64_t replies_dropped;   //  dropped because the client's queue was full
} anna_routing_stats_t;

typedef struct _anna_routing_t anna_routing_t;

//  Binds tcp://BIND:6450+offset and tcp://BIND:6400+offset in the calling thread; NULL with "cannot bind ..." in err.
//  ctx is borrowed and must outlive the actor. Caller owns result.
anna_routing_t *anna_routing_new(void *ctx, const anna_config_t *config, size_t reply_sockets,
                                 char *err, size_t errlen);
//  Starts the thread. Returns 0 or a negative errno.
int anna_routing_start(anna_routing_t *self);
//  Waits for the thread to end (after zmq_ctx_shutdown). No-op if never started.
void anna_routing_join(anna_routing_t *self);
//  Idempotent; sets *self_p to NULL. The thread must have been joined (or never started).
void anna_routing_destroy(anna_routing_t **self_p);
//  Copy of the counters; only while the thread is not running.
void anna_routing_stats(const anna_routing_t *self, anna_routing_stats_t *out);

#endif
