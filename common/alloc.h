//  common/alloc.h: the allocator every module goes through. Out-of-memory aborts: no
//  caller checks for NULL. Long-running binaries link jemalloc, which replaces malloc, so
//  these wrappers reach jemalloc there and libc malloc (seen by ASan) in test builds.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_ALLOC_H
#define CB_ALLOC_H

#include <stddef.h>

//  Caller owns result; never NULL.
void *cb_malloc(size_t size);
void *cb_calloc(size_t count, size_t size);
void *cb_realloc(void *ptr, size_t size);
char *cb_strdup(const char *s);
char *cb_strndup(const char *s, size_t n);
void *cb_memdup(const void *src, size_t size);
void cb_free(void *ptr);

#endif
