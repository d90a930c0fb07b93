//  cache/cut.h: the causal cut of a cache (issue 4, MULTI_CAUSAL). A version of a
//  multi-key causal value is visible in a cache once each of its dependencies is: the cache
//  shows a version of the dependency's key whose clock is equal to or after the one
//  depended on. Versions that are not yet are held back (the cache keeps showing what it
//  showed). Pure: the caller says what it shows of a key through a lookup function.
//  SPDX-License-Identifier: Apache-2.0
#ifndef CACHE_CUT_H
#define CACHE_CUT_H

#include <stdbool.h>
#include <stddef.h>

#include "lattices/lattice.h"

//  What the cache shows of key (borrowed until the next change to the cache), or NULL.
typedef const lat_t *(cache_cut_lookup_fn)(void *arg, const char *key);

//  True if every dependency of version is visible. Otherwise, when missing is not NULL,
//  *missing is the key of the first one that is not (borrowed from version).
bool cache_cut_ready(const lat_version_t *version, cache_cut_lookup_fn *lookup, void *arg,
                     const char **missing);

//  Moves the versions of value (a LAT_MULTI_CAUSAL value; others are left alone) whose
//  dependencies are not all visible into *held (joined in; LAT_NONE becomes a
//  LAT_MULTI_CAUSAL value). Returns how many versions moved. value may be left empty.
size_t cache_cut_split(lat_t *value, cache_cut_lookup_fn *lookup, void *arg, lat_t *held);

//  Drops the versions of held that a version of shown (what the cache shows of the key)
//  covers: they would add nothing. Returns how many.
size_t cache_cut_prune(lat_t *held, const lat_t *shown);

void cache_cut_test(bool verbose);

#endif
