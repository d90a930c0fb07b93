//  common/counters.h: renders a struct of uint64_t counters, named by a table, as one line:
//  JSON ({"thread":0,"requests":1,...}) or text ("thread 0: requests=1 ..."). Pure.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_COUNTERS_H
#define CB_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;
    size_t offset;              //  of a uint64_t in the stats struct
} cb_counter_t;

#define CB_COUNTER(type, field) {#field, offsetof(type, field)}

//  head is written first as is ("{\"thread\":0" for JSON, "thread 0:" for text); then each
//  counter of stats; then "}" for JSON. Returns the length (truncated to len - 1, like
//  snprintf; len > 0).
size_t cb_counters_format(const cb_counter_t *table, size_t n, const void *stats,
                          const char *head, bool json, char *buf, size_t len);

#endif
