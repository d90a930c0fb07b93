//  common/bytes.h: an owned byte string, the value payload type of every lattice.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CB_BYTES_H
#define CB_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;              //  owned; NULL when len == 0
    size_t len;                 //  number of bytes
} cb_bytes_t;

//  Copies len bytes of src into self (which must be empty or finalised).
void cb_bytes_set(cb_bytes_t *self, const void *src, size_t len);
//  Frees the data and zeroes self. Idempotent.
void cb_bytes_fini(cb_bytes_t *self);
//  memcmp order, shorter first on a common prefix. Total order.
int cb_bytes_cmp(const cb_bytes_t *a, const cb_bytes_t *b);
bool cb_bytes_eq(const cb_bytes_t *a, const cb_bytes_t *b);
void cb_bytes_copy(cb_bytes_t *dst, const cb_bytes_t *src);

#endif
