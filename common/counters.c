//  common/counters.c: see counters.h.
//  SPDX-License-Identifier: Apache-2.0
#include "common/counters.h"

#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

size_t cb_counters_format(const cb_counter_t *table, size_t n, const void *stats,
                          const char *head, bool json, char *buf, size_t len)
{
    assert(table && stats && head && buf && len > 0);
    int w = snprintf(buf, len, "%s", head);
    size_t at = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = *(const uint64_t *)((const char *)stats + table[i].offset);
        w = snprintf(buf + (at < len ? at : len - 1), at < len ? len - at : 1,
                     json ? ",\"%s\":%" PRIu64 : " %s=%" PRIu64, table[i].name, v);
        at += w > 0 ? (size_t)w : 0;
    }
    if (json) {
        w = snprintf(buf + (at < len ? at : len - 1), at < len ? len - at : 1, "}");
        at += w > 0 ? (size_t)w : 0;
    }
    return at < len ? at : len - 1;
}
