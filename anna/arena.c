//  anna/arena.c: a list of chunks; allocation bumps an offset in the newest one.
//  SPDX-License-Identifier: Apache-2.0
#include "anna/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

typedef struct s_chunk_t {
    struct s_chunk_t *next;     //  older chunk
    size_t size;                //  usable bytes in data
    size_t used;
    alignas(max_align_t) unsigned char data[];
} s_chunk_t;

struct _anna_arena_t {
    s_chunk_t *head;            //  newest chunk, where allocation happens
    size_t chunk_size;
    size_t used;                //  bytes handed out since reset
};

#define S_ALIGN (alignof(max_align_t))

static s_chunk_t *s_chunk_new(size_t size)
{
    s_chunk_t *chunk = cb_malloc(sizeof *chunk + size);
    chunk->next = NULL;
    chunk->size = size;
    chunk->used = 0;
    return chunk;
}

anna_arena_t *anna_arena_new(size_t chunk_size)
{
    anna_arena_t *self = cb_calloc(1, sizeof *self);
    self->chunk_size = chunk_size < 256 ? 256 : chunk_size;
    self->head = s_chunk_new(self->chunk_size);
    return self;
}

void anna_arena_destroy(anna_arena_t **self_p)
{
    assert(self_p);
    anna_arena_t *self = *self_p;
    if (!self)
        return;
    while (self->head) {
        s_chunk_t *next = self->head->next;
        cb_free(self->head);
        self->head = next;
    }
    cb_free(self);
    *self_p = NULL;
}

void *anna_arena_alloc(anna_arena_t *self, size_t size)
{
    size_t rounded = (size + S_ALIGN - 1) & ~(S_ALIGN - 1);
    assert(rounded >= size);    //  no overflow: sizes come from messages we already hold
    s_chunk_t *chunk = self->head;
    if (chunk->size - chunk->used < rounded) {
        chunk = s_chunk_new(rounded > self->chunk_size ? rounded : self->chunk_size);
        chunk->next = self->head;
        self->head = chunk;
    }
    void *p = chunk->data + chunk->used;
    chunk->used += rounded;
    self->used += size;
    return p;
}

char *anna_arena_printf(anna_arena_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *out = anna_arena_alloc(self, (size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(out, small, (size_t)n + 1);
    else {
        va_start(ap, fmt);
        vsnprintf(out, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return out;
}

void anna_arena_reset(anna_arena_t *self)
{
    //  Keep the largest chunk not above 4 chunk sizes: a run of big messages does not
    //  reallocate each time, and one huge message is not held forever.
    s_chunk_t *keep = NULL;
    for (s_chunk_t *c = self->head; c; c = c->next)
        if (c->size <= 4 * self->chunk_size && (!keep || c->size > keep->size))
            keep = c;
    s_chunk_t *c = self->head;
    while (c) {
        s_chunk_t *next = c->next;
        if (c != keep)
            cb_free(c);
        c = next;
    }
    if (!keep)
        keep = s_chunk_new(self->chunk_size);
    keep->next = NULL;
    keep->used = 0;
    self->head = keep;
    self->used = 0;
}

static void *s_pb_alloc(void *data, size_t size)
{
    return anna_arena_alloc(data, size);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

ProtobufCAllocator anna_arena_protobuf(anna_arena_t *self)
{
    return (ProtobufCAllocator){s_pb_alloc, s_pb_free, self};
}

size_t anna_arena_used(const anna_arena_t *self)
{
    return self->used;
}

void anna_arena_test(bool verbose)
{
    anna_arena_t *arena = anna_arena_new(1024);
    void *a = anna_arena_alloc(arena, 1);
    void *b = anna_arena_alloc(arena, 3);
    assert(((uintptr_t)a % S_ALIGN) == 0 && ((uintptr_t)b % S_ALIGN) == 0 && a != b);
    assert(anna_arena_used(arena) == 4);
    //  Allocations bigger than a chunk, and many small ones across chunks, stay intact.
    unsigned char *big = anna_arena_alloc(arena, 10000);
    memset(big, 0xab, 10000);
    char *strs[500];
    for (int i = 0; i < 500; i++)
        strs[i] = anna_arena_printf(arena, "string %d", i);
    for (int i = 0; i < 500; i++) {
        char expect[32];
        snprintf(expect, sizeof expect, "string %d", i);
        assert(strcmp(strs[i], expect) == 0);
    }
    for (int i = 0; i < 10000; i++)
        assert(big[i] == 0xab);
    //  Long formatted text takes the second path of printf.
    char *longer = anna_arena_printf(arena, "%0600d|", 7);
    assert(strlen(longer) == 601 && longer[599] == '7' && longer[600] == '|');
    anna_arena_reset(arena);
    assert(anna_arena_used(arena) == 0);
    //  After a reset memory is reused.
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 50; i++)
            memset(anna_arena_alloc(arena, 100), i, 100);
        anna_arena_reset(arena);
    }
    anna_arena_alloc(arena, 0);
    anna_arena_destroy(&arena);
    anna_arena_destroy(&arena);
    if (verbose)
        printf("  arena ok\n");
}
