//  anna/arena.h: bump allocator for the scratch memory of one message (protobuf-c unpack,
//  reply texts), all freed at once by anna_arena_reset. Saves a malloc/free per field on the
//  request path. Owned by one thread; not thread safe. Pure.
//  SPDX-License-Identifier: Apache-2.0
#ifndef ANNA_ARENA_H
#define ANNA_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _anna_arena_t anna_arena_t;

//  chunk_size: bytes per chunk (a larger allocation gets a chunk of its own). Caller owns
//  result.
anna_arena_t *anna_arena_new(size_t chunk_size);
//  Frees every chunk. Idempotent; sets *self_p to NULL.
void anna_arena_destroy(anna_arena_t **self_p);

//  size bytes aligned for any type; never NULL (out of memory aborts). Valid until the next
//  anna_arena_reset; the arena owns it.
void *anna_arena_alloc(anna_arena_t *self, size_t size);
//  Formatted string in the arena (same lifetime as anna_arena_alloc).
char *anna_arena_printf(anna_arena_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
//  Frees everything allocated. Keeps one chunk (the largest up to 4 chunk sizes) for reuse,
//  so the steady state allocates nothing.
void anna_arena_reset(anna_arena_t *self);
//  A protobuf-c allocator that unpacks into self (its free does nothing: the memory goes with
//  the next reset). self is borrowed and must outlive the allocator's use.
ProtobufCAllocator anna_arena_protobuf(anna_arena_t *self);
//  Bytes handed out since the last reset.
size_t anna_arena_used(const anna_arena_t *self);

void anna_arena_test(bool verbose);

#endif
