//  common/bytes.c
//  SPDX-License-Identifier: Apache-2.0
#include "bytes.h"

#include <string.h>

#include "alloc.h"

void cb_bytes_set(cb_bytes_t *self, const void *src, size_t len)
{
    self->data = len ? cb_memdup(src, len) : NULL;
    self->len = len;
}

void cb_bytes_fini(cb_bytes_t *self)
{
    cb_free(self->data);
    self->data = NULL;
    self->len = 0;
}

int cb_bytes_cmp(const cb_bytes_t *a, const cb_bytes_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

bool cb_bytes_eq(const cb_bytes_t *a, const cb_bytes_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

void cb_bytes_copy(cb_bytes_t *dst, const cb_bytes_t *src)
{
    cb_bytes_set(dst, src->data, src->len);
}
