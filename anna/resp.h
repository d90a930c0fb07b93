//  anna/resp.h: the RESP2 (Redis protocol) front end of a node, so that redis-cli,
//  redis-benchmark and Redis client libraries work unchanged (docs/resp.md).
//  One RESP thread per worker thread, each with its own epoll loop, its own listening socket
//  on the shared port (SO_REUSEPORT: the kernel spreads connections) and its own connections.
//  A RESP thread owns no keys: it batches the commands of all its connections per owning
//  worker into Anna KeyRequests sent to that worker's inproc key socket (anna/worker.h), and
//  answers each connection in order from the KeyResponses. Threads share nothing but a few
//  relaxed atomic counters (INFO, the node-wide client limit). Created by the server's
//  thread, run by their own threads until anna_resp_stop.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_RESP_H
#define ANNA_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anna/config.h"

//  The LWW writer id that marks a tombstone: DEL writes an empty LWW value with this writer,
//  and GET, EXISTS, TYPE and STRLEN treat such a value as absent. A later SET wins as any
//  later write does.
#define ANNA_RESP_TOMBSTONE_WRITER UINT32_MAX

//  Counters of one RESP thread.
typedef struct {
    uint64_t connections;       //  connections open now
    uint64_t accepted;          //  connections accepted since start
    uint64_t rejected;          //  connections refused: max clients reached
    uint64_t commands;          //  commands parsed
    uint64_t protocol_errors;   //  connections closed for malformed input
    uint64_t batches;           //  KeyRequests sent to workers
    uint64_t tuples;            //  key operations in them
    uint64_t timeouts;          //  KeyRequests a worker did not answer in time (or lost)
} anna_resp_stats_t;

typedef struct _anna_resp_t anna_resp_t;

//  RESP threads of a node configured by config (resp_threads, else one per worker thread).
int anna_resp_threads(const anna_config_t *config);

//  The front end of a node configured by config (copied; anna_config_resp_port must be
//  non-zero; the workers exist already). Binds the RESP port and the threads' inproc reply
//  sockets in the calling thread, so that a port in use is reported here: returns NULL with
//  "cannot bind RESP port 127.0.0.1:6379: Address already in use" in err. ctx is borrowed
//  (the server's ZeroMQ context) and must outlive the front end. Caller owns result.
anna_resp_t *anna_resp_new(void *ctx, const anna_config_t *config, char *err, size_t errlen);
//  Starts the threads. Returns 0 or a negative errno.
int anna_resp_start(anna_resp_t *self);
//  Tells the threads to stop, closes every connection and joins them. Must come before the
//  ZeroMQ context is shut down. Idempotent.
void anna_resp_stop(anna_resp_t *self);
//  Copy of the counters of thread t (after stop, or racy but harmless while running).
void anna_resp_stats(const anna_resp_t *self, int t, anna_resp_stats_t *out);
//  Writes one line of counters per RESP thread to out ("anna-server resp 0: ...").
void anna_resp_report(const anna_resp_t *self, FILE *out);
//  Stops if running and frees everything. Idempotent; sets *self_p to NULL.
void anna_resp_destroy(anna_resp_t **self_p);

void anna_resp_test(bool verbose);

#endif
