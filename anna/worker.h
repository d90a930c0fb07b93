//  anna/worker.h: the worker actor (Anna §2.3): one thread per core, each owning one shard
//  (an anna_store_t) and its sockets; threads share nothing and talk only by messages.
//  In a cluster, a key's owners are its local owner threads on each of its G owner nodes;
//  the routing thread tells the worker the members (anna/routing.h), and on each change the
//  worker walks its shard, a batch per loop iteration, sending every key to its other owners
//  and dropping the keys it no longer owns once they are sent (Anna §2.9).
//  Answers KeyRequests on port 6200+offset+t (and, when RESP is on, on inproc from the node's
//  RESP threads: ANNA_INPROC_KEYS below), merges replica gossip on 6250+offset+t and
//  gossips its changed keys to the other owners every gossip period (Anna §2.6, §2.7).
//  Pushes the new value of every changed key to its subscribers (caches) once per loop
//  iteration (our extension, docs/protocol.md).
//  Created and bound by the server's thread, then run by its own thread until the ZeroMQ
//  context is shut down. Never blocks on a peer and never trusts a byte from the network.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_WORKER_H
#define ANNA_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anna/config.h"

//  In-process endpoints between the RESP threads (anna/resp.c) and the workers of one node,
//  in the server's ZeroMQ context: no ZeroMQ I/O thread and no loopback TCP on the way.
//  Worker t binds a PULL on ANNA_INPROC_KEYS "<t>", handled like its TCP key port; RESP thread
//  i binds a PULL on ANNA_INPROC_RESP "<i>" and names it as its response address. A worker
//  accepts an inproc:// response address only in a request that came in on its inproc
//  socket, and only of that form with i below the node's RESP thread count (anna_resp_threads);
//  every other inproc:// address is refused like any unusable address.
#define ANNA_INPROC_KEYS "inproc://anna-keys-"
#define ANNA_INPROC_RESP "inproc://anna-resp-"

//  Longest key accepted (BAD_REQUEST beyond): keys are names, and a bound keeps every
//  message that carries one key within the size limits.
#define ANNA_MAX_KEY_BYTES 65536

//  Counters of one worker. Requests are messages; gets, puts and the errors count tuples.
typedef struct {
    uint64_t requests;          //  KeyRequests received on the key port
    uint64_t gets;              //  GET tuples
    uint64_t puts;              //  PUT tuples
    uint64_t key_dne;           //  GETs of absent keys
    uint64_t wrong_thread;      //  tuples for keys this thread does not own
    uint64_t lattice;           //  PUTs of another lattice kind than the stored one
    uint64_t bad_request;       //  tuples refused as BAD_REQUEST
    uint64_t too_large;         //  PUTs over max-value-bytes
    uint64_t malformed;         //  messages dropped undecoded (garbage, truncated, multi-frame)
    uint64_t bad_address;       //  replies not sent: response address refused or unusable
    uint64_t replies;           //  KeyResponses sent
    uint64_t replies_dropped;   //  KeyResponses dropped because the client's queue was full
    uint64_t gossip_sent;       //  gossip messages sent
    uint64_t gossip_keys_sent;  //  key states sent in them
    uint64_t gossip_failed;     //  gossip messages not sent (peer queue full); keys retried
    uint64_t gossip_received;   //  gossip messages received
    uint64_t gossip_keys_received;  //  key states merged from gossip
    uint64_t gossip_rejected;   //  gossip key states dropped: not ours, kind mismatch, invalid
    uint64_t subscribes;        //  GET tuples that subscribed (or were subscribed already)
    uint64_t unsubscribes;      //  GET tuples that removed a subscription
    uint64_t subs_refused;      //  subscriptions refused: no valid update address, bounds
    uint64_t pushes;            //  update messages pushed to subscribers
    uint64_t push_keys;         //  key values in them
    uint64_t push_dropped;      //  update messages dropped (subscriber's queue full)
    uint64_t subs_dropped;      //  subscriptions removed because their subscriber was dead
    uint64_t sweeps;            //  walks of the shard sending keys to their other owners
    uint64_t keys_moved;        //  key states sent by those walks (moves, anti-entropy)
    uint64_t keys_dropped;      //  keys removed after being handed to their new owners
    uint64_t faults;            //  gossip messages dropped, doubled or delayed on purpose
    uint64_t wal_records;       //  merges appended to the write-ahead log (--wal-dir)
    uint64_t wal_fsyncs;        //  fsyncs of the log
    uint64_t wal_compactions;   //  rewrites of the log as a snapshot
    uint64_t wal_bytes;         //  size of the log (at the time of the snapshot)
    uint64_t subscriptions;     //  subscriptions held (at the time of the snapshot)
    uint64_t keys;              //  keys stored (at the time of the snapshot)
    uint64_t bytes;             //  approximate bytes stored (idem)
} anna_worker_stats_t;

typedef struct _anna_worker_t anna_worker_t;

//  Worker `thread` of a node configured by config (copied). Creates and binds its sockets
//  in the calling thread so that a port in use is reported here: returns NULL and writes
//  "cannot bind tcp://...: Address already in use" to err. ctx is borrowed and must outlive
//  the worker. reply_sockets bounds the sockets to clients and subscribers (an eighth, at
//  least 2, for subscribers). Caller owns result.
anna_worker_t *anna_worker_new(void *ctx, const anna_config_t *config, uint32_t thread,
                               size_t reply_sockets, char *err, size_t errlen);
//  Starts the thread, which takes over the sockets. Returns 0 or a negative errno.
int anna_worker_start(anna_worker_t *self);
//  Waits for the thread to end; it ends when the context is shut down (zmq_ctx_shutdown).
//  No-op if it was never started.
void anna_worker_join(anna_worker_t *self);
//  Frees the worker (joined or never started): store, sockets left, everything.
//  Idempotent; sets *self_p to NULL.
void anna_worker_destroy(anna_worker_t **self_p);

//  Copy of the counters. Only while the thread is not running (before start, after join):
//  the running thread reports its counters through the stats key instead.
void anna_worker_stats(const anna_worker_t *self, anna_worker_stats_t *out);
//  Renders stats as one line: JSON ({"thread":0,"requests":1,...}) or, if json is false,
//  "thread 0: requests=1 ...". Returns the length (truncated to len - 1, like snprintf).
size_t anna_worker_stats_format(const anna_worker_stats_t *stats, uint32_t thread, bool json,
                                char *buf, size_t len);

void anna_worker_test(bool verbose);

#endif
