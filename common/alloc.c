//  common/alloc.c: abort-on-OOM wrappers (Redis zmalloc, CZMQ).
//  SPDX-License-Identifier: Apache-2.0
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_oom(size_t size)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
    abort();
}

void *cb_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        s_oom(size);
    return p;
}

void *cb_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        s_oom(count * size);
    return p;
}

void *cb_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        s_oom(size);
    return p;
}

char *cb_strdup(const char *s)
{
    return cb_memdup(s, strlen(s) + 1);
}

char *cb_strndup(const char *s, size_t n)
{
    char *p = cb_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *cb_memdup(const void *src, size_t size)
{
    void *p = cb_malloc(size);
    if (size)
        memcpy(p, src, size);
    return p;
}

void cb_free(void *ptr)
{
    free(ptr);
}
