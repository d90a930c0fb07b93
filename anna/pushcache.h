//  anna/pushcache.h: bounded cache of connected ZeroMQ PUSH sockets keyed by address, for
//  replies to clients' response addresses (Anna replies are PUSHed, never on the request
//  socket). Least recently used sockets are closed when the cache is full. Sends never block:
//  a client that does not read (or is gone) costs a dropped reply, not a stuck thread.
//  Owned by one thread, like the sockets in it.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_PUSHCACHE_H
#define ANNA_PUSHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

typedef struct _anna_pushcache_t anna_pushcache_t;

//  ctx is borrowed and must outlive the cache. capacity >= 1 sockets; sndhwm messages queued
//  per socket before sends fail; linger_ms on close. Caller owns result.
anna_pushcache_t *anna_pushcache_new(void *ctx, size_t capacity, int sndhwm, int linger_ms);
//  Closes every socket. Idempotent; sets *self_p to NULL.
void anna_pushcache_destroy(anna_pushcache_t **self_p);

//  True for the addresses we agree to connect to: tcp://IPv4:port, tcp://[IPv6]:port and
//  ipc://path. No host names (resolving one would stall the I/O thread) and no inproc://
//  (a peer must not reach our internal sockets).
bool anna_pushcache_address_ok(const char *address);

//  Sends *msg to address without blocking; always consumes *msg (closed on failure too).
//  Returns 0, -EINVAL (address refused), -EAGAIN (peer's queue full: dropped), or another
//  negative errno from zmq.
int anna_pushcache_send(anna_pushcache_t *self, const char *address, zmq_msg_t *msg);
//  Sockets currently open.
size_t anna_pushcache_size(const anna_pushcache_t *self);

void anna_pushcache_test(bool verbose);

#endif
