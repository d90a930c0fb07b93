//  lattices/internal.h: the per-kind operations that lattice.c dispatches to. Shared by the
//  files of lattices/ only; other folders use lattice.h (lat_merge, lat_equal, ...).
//  Pure: no I/O. Same ownership rules as lattice.h: dst arguments are uninitialised.
//  SPDX-License-Identifier: Apache-2.0
#ifndef LAT_INTERNAL_H
#define LAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "lattices/lattice.h"

//  lww.c: LWW and PRIORITY. The cmp functions are the lattice order: > 0 if a wins over b.
int lat_lww_cmp(const lat_lww_t *a, const lat_lww_t *b);
bool lat_lww_merge(lat_lww_t *self, const lat_lww_t *other);
int lat_priority_cmp(const lat_priority_t *a, const lat_priority_t *b);
bool lat_priority_merge(lat_priority_t *self, const lat_priority_t *other);

//  set.c
void lat_set_copy(lat_set_t *dst, const lat_set_t *src);
bool lat_set_merge(lat_set_t *self, const lat_set_t *other);
bool lat_set_equal(const lat_set_t *a, const lat_set_t *b);
bool lat_set_subset(const lat_set_t *a, const lat_set_t *b);

//  vclock.c: clocks and deps. lat_vclock_order is the canonical total order (entries
//  compared lexicographically by id then count, a prefix first), not the causal order.
int lat_vclock_order(const lat_vclock_t *a, const lat_vclock_t *b);
bool lat_vclock_equal(const lat_vclock_t *a, const lat_vclock_t *b);
bool lat_deps_merge(lat_deps_t *self, const lat_deps_t *other);
bool lat_deps_equal(const lat_deps_t *a, const lat_deps_t *b);
bool lat_deps_leq(const lat_deps_t *a, const lat_deps_t *b);

//  causal.c
void lat_causal_fini(lat_causal_t *self);
void lat_causal_copy(lat_causal_t *dst, const lat_causal_t *src);
bool lat_causal_merge(lat_causal_t *self, const lat_causal_t *other);
bool lat_causal_equal(const lat_causal_t *a, const lat_causal_t *b);
bool lat_causal_leq(const lat_causal_t *a, const lat_causal_t *b);

//  map.c
void lat_map_fini(lat_map_t *self);
void lat_map_copy(lat_map_t *dst, const lat_map_t *src);
bool lat_map_merge(lat_map_t *self, const lat_map_t *other);
bool lat_map_equal(const lat_map_t *a, const lat_map_t *b);
bool lat_map_leq(const lat_map_t *a, const lat_map_t *b);

//  Grows a {items, len, cap} array so that it holds at least need items (amortised
//  doubling). Returns the array, which may have moved: `a->items = lat_array_reserve(...)`.
void *lat_array_reserve(void *items, size_t *cap, size_t need, size_t item_size);

#endif
