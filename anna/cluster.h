//  anna/cluster.h: the membership of a cluster of nodes and the global placement of keys on
//  it (Anna §2.4, §2.9; issue 5): a global consistent-hash ring over the live nodes (each
//  named by its public IP: every node uses the same ports), a key's G owner nodes are the
//  first G distinct nodes clockwise from it; within each, the local ring (anna/placement.h)
//  picks the threads. Members come and go by join and leave messages and by heartbeats: a
//  node not heard from for the timeout is removed (and comes back by joining again). A node
//  restarted keeps its address and joins with a higher join count (its incarnation), so that
//  a late message of its previous life cannot remove or resurrect it.
//  Pure: no I/O, no clock (callers pass `now`). One owner; not thread safe (each actor keeps
//  its own copy, fed the same messages; copies with the same members place keys alike).
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_CLUSTER_H
#define ANNA_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Longest node address (an IPv4 address in text, with room to spare).
#define ANNA_CLUSTER_ADDRESS 64
//  Most nodes in a cluster.
#define ANNA_CLUSTER_MAX_NODES 1024
//  Seed of the global ring's hash: independent of the local ring's (seed 0), so that the
//  threads a key lands on do not depend on its node.
#define ANNA_CLUSTER_SEED 0x676c6f62616cULL

typedef struct _anna_cluster_t anna_cluster_t;

//  A cluster seen from node self_address (copied; a member from the start), placing each key
//  on global_rep nodes (>= 1; fewer while the cluster is smaller), vnodes points per node.
//  Caller owns result.
anna_cluster_t *anna_cluster_new(const char *self_address, uint32_t self_join_count,
                                 uint32_t global_rep, uint32_t vnodes);
//  Idempotent; sets *self_p to NULL.
void anna_cluster_destroy(anna_cluster_t **self_p);

//  A join or heartbeat from address with join_count at now_ms. Returns 1 if the ring changed
//  (a new node, or one that came back), 2 if a live member (not self) now has a higher join
//  count (it restarted before it was missed: the ring is the same, but it lost what it held),
//  0 if the node was a member already (its heartbeat clock is reset), -ESTALE for a join count below the one
//  known (a message from a previous life: ignored), -EINVAL for an empty or too long address,
//  -ENOSPC past ANNA_CLUSTER_MAX_NODES.
int anna_cluster_join(anna_cluster_t *self, const char *address, uint32_t join_count,
                      int64_t now_ms);
//  A graceful leave of address with join_count: removes it from the ring. Returns 1 if
//  removed, 0 if it was not a member, -ESTALE for an older join count. A node never removes
//  itself this way (-EINVAL): it stops instead.
int anna_cluster_leave(anna_cluster_t *self, const char *address, uint32_t join_count);
//  Removes every other member not heard from for timeout_ms before now_ms. Writes the
//  addresses removed to removed[0..max) (may be NULL with max 0); returns how many were
//  removed (all of them, even past max).
size_t anna_cluster_expire(anna_cluster_t *self, int64_t now_ms, int64_t timeout_ms,
                           char (*removed)[ANNA_CLUSTER_ADDRESS], size_t max);

//  Writes the owner nodes of key (addresses, borrowed until the next change to self) to
//  out[0..max), primary first; returns how many: min(global_rep, members, max).
size_t anna_cluster_owners(const anna_cluster_t *self, const void *key, size_t len,
                           const char **out, size_t max);
//  As anna_cluster_owners with `rep` owner nodes instead of the cluster's global_rep.
size_t anna_cluster_owners_rep(const anna_cluster_t *self, const void *key, size_t len,
                               uint32_t rep, const char **out, size_t max);
//  True if address is among the `rep` owners of key.
bool anna_cluster_node_owns_rep(const anna_cluster_t *self, const char *address,
                                const void *key, size_t len, uint32_t rep);
//  True if this node is among the owners of key.
bool anna_cluster_owns(const anna_cluster_t *self, const void *key, size_t len);
//  True if address is among the owners of key.
bool anna_cluster_node_owns(const anna_cluster_t *self, const char *address, const void *key,
                            size_t len);

//  Live members, self included; the i-th (i < count) in no particular order, borrowed.
size_t anna_cluster_count(const anna_cluster_t *self);
const char *anna_cluster_member(const anna_cluster_t *self, size_t i);
uint32_t anna_cluster_member_join_count(const anna_cluster_t *self, size_t i);
bool anna_cluster_contains(const anna_cluster_t *self, const char *address);
//  Incremented by every change of the ring: placement computed at another epoch is stale.
uint64_t anna_cluster_epoch(const anna_cluster_t *self);
uint32_t anna_cluster_global_rep(const anna_cluster_t *self);

void anna_cluster_test(bool verbose);

#endif
