//  anna/ring.h: consistent hash ring with virtual nodes over opaque member ids (Anna
//  paper §2.4). Used as the local ring (members = thread ids) and, later, the global ring
//  (members = nodes). Pure: no I/O, no clock, no threads. One owner; not thread safe
//  (each actor keeps its own copy, built from the same members, so all copies agree).
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_RING_H
#define ANNA_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _anna_ring_t anna_ring_t;

//  Default virtual points per member.
#define ANNA_RING_VNODES 200

//  The 64-bit hash used for ring positions and hash tables: eight bytes per step, each word
//  multiplied and folded into a rotating state, then a murmur3-style finaliser so that nearby
//  keys land far apart. Deterministic across processes, machines and runs (a ring is agreed on
//  by everyone who builds it; the self-test pins its values). seed picks an independent hash
//  function (0 for the default one).
uint64_t anna_hash(const void *data, size_t len, uint64_t seed);

//  Empty ring; every member added gets vnodes points (>= 1). seed selects the hash function
//  for points and keys, so two rings with different seeds place keys independently.
//  Caller owns result.
anna_ring_t *anna_ring_new(uint32_t vnodes, uint64_t seed);
//  Idempotent; sets *self_p to NULL.
void anna_ring_destroy(anna_ring_t **self_p);

//  Adds member id; its points are hashed from name (borrowed, e.g. "3" for thread 3 or
//  "10.0.0.7:0" for a node), so the ring depends only on the names, not on insertion order.
//  Returns 0, or -EEXIST if id is already a member.
int anna_ring_add(anna_ring_t *self, uint32_t id, const char *name);
//  Removes member id and its points. Returns 0, or -ENOENT.
int anna_ring_remove(anna_ring_t *self, uint32_t id);
//  Number of distinct members.
size_t anna_ring_members(const anna_ring_t *self);
bool anna_ring_contains(const anna_ring_t *self, uint32_t id);

//  Writes to out[] the first n distinct members clockwise from position hash (the first
//  point >= hash, wrapping around). Returns how many were written: min(n, members).
size_t anna_ring_lookup(const anna_ring_t *self, uint64_t hash, uint32_t *out, size_t n);
//  Same, for key: position = anna_hash(key, len, seed of the ring).
size_t anna_ring_lookup_key(const anna_ring_t *self, const void *key, size_t len, uint32_t *out,
                            size_t n);

void anna_ring_test(bool verbose);

#endif
