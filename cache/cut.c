//  cache/cut.c: the causal cut (see cut.h). Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "cache/cut.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

static bool s_covers(const lat_vclock_t *clock, const lat_vclock_t *need)
{
    lat_vc_order_t o = lat_vclock_compare(clock, need);
    return o == LAT_VC_EQUAL || o == LAT_VC_GREATER;
}

//  True if value (any causal kind) shows need: the join of its versions is at or after it.
//  The join, not one version: a dependency on a key is the join of every version of it the
//  writer depended on, which may be siblings no single version covers.
static bool s_shows(const lat_t *value, const lat_vclock_t *need)
{
    if (!value || (value->kind != LAT_SINGLE_CAUSAL && value->kind != LAT_MULTI_CAUSAL))
        return false;
    lat_vclock_t all = {0};
    lat_causal_clock(value, &all);
    bool shows = s_covers(&all, need);
    lat_vclock_fini(&all);
    return shows;
}

bool cache_cut_ready(const lat_version_t *version, cache_cut_lookup_fn *lookup, void *arg,
                     const char **missing)
{
    for (size_t d = 0; d < version->deps.len; d++) {
        const lat_dep_t *dep = &version->deps.items[d];
        if (!s_shows(lookup(arg, dep->key), &dep->clock)) {
            if (missing)
                *missing = dep->key;
            return false;
        }
    }
    return true;
}

size_t cache_cut_split(lat_t *value, cache_cut_lookup_fn *lookup, void *arg, lat_t *held)
{
    if (value->kind != LAT_MULTI_CAUSAL)
        return 0;
    lat_causal_t *c = &value->u.causal;
    size_t kept = 0, moved = 0;
    for (size_t i = 0; i < c->len; i++) {
        lat_version_t *v = &c->items[i];
        if (cache_cut_ready(v, lookup, arg, NULL)) {
            c->items[kept++] = *v;
            continue;
        }
        if (held->kind == LAT_NONE)
            lat_init(held, LAT_MULTI_CAUSAL);
        lat_causal_add(held, &v->clock, &v->deps, v->value.data, v->value.len);
        lat_vclock_fini(&v->clock);
        lat_deps_fini(&v->deps);
        cb_bytes_fini(&v->value);
        moved++;
    }
    //  Kept versions stay in canonical order and an antichain: a subset of one is one.
    c->len = kept;
    return moved;
}

size_t cache_cut_prune(lat_t *held, const lat_t *shown)
{
    if (held->kind != LAT_MULTI_CAUSAL || !shown ||
        (shown->kind != LAT_SINGLE_CAUSAL && shown->kind != LAT_MULTI_CAUSAL))
        return 0;
    lat_causal_t *c = &held->u.causal;
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < c->len; i++) {
        bool covered = false;
        for (size_t j = 0; j < shown->u.causal.len && !covered; j++)
            covered = s_covers(&shown->u.causal.items[j].clock, &c->items[i].clock);
        if (!covered) {
            c->items[kept++] = c->items[i];
            continue;
        }
        lat_vclock_fini(&c->items[i].clock);
        lat_deps_fini(&c->items[i].deps);
        cb_bytes_fini(&c->items[i].value);
        dropped++;
    }
    c->len = kept;
    return dropped;
}

//  ---- self-test ----------------------------------------------------------------------------

typedef struct {
    const char *key;
    const lat_t *value;
} s_entry_t;

static const lat_t *s_lookup(void *arg, const char *key)
{
    for (const s_entry_t *e = arg; e->key; e++)
        if (!strcmp(e->key, key))
            return e->value;
    return NULL;
}

void cache_cut_test(bool verbose)
{
    lat_t y;    //  the cache shows y at a:2
    lat_init(&y, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&y, "a", 2, NULL, 0, "y2");
    s_entry_t shown[] = {{"y", &y}, {NULL, NULL}};

    lat_t x, held;
    lat_init(&x, LAT_MULTI_CAUSAL);
    lat_init(&held, LAT_NONE);
    lat_causal_add_simple(&x, "a", 1, "y", 2, "needs y2");  //  ready
    lat_t x2;
    lat_init(&x2, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&x2, "a", 3, "y", 3, "needs y3"); //  y is behind
    lat_t z;
    lat_init(&z, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&z, "b", 1, "w", 1, "needs w");   //  w not shown at all
    const char *missing = NULL;
    assert(cache_cut_ready(&x.u.causal.items[0], s_lookup, shown, NULL));
    assert(!cache_cut_ready(&x2.u.causal.items[0], s_lookup, shown, &missing));
    assert(!strcmp(missing, "y"));
    assert(cache_cut_split(&x2, s_lookup, shown, &held) == 1);
    assert(x2.u.causal.len == 0 && held.kind == LAT_MULTI_CAUSAL && held.u.causal.len == 1);
    assert(cache_cut_split(&z, s_lookup, shown, &held) == 1 && held.u.causal.len == 2);
    assert(cache_cut_split(&x, s_lookup, shown, &held) == 0 && x.u.causal.len == 1);
    //  y catches up: the held version of x is ready now.
    lat_causal_add_simple(&y, "a", 3, NULL, 0, "y3");
    assert(!cache_cut_ready(&held.u.causal.items[1], s_lookup, shown, NULL));
    lat_t wait;
    lat_init(&wait, LAT_NONE);
    //  split the other way: what stays held goes to wait; held keeps what is ready.
    assert(cache_cut_split(&held, s_lookup, shown, &wait) == 1);
    assert(held.u.causal.len == 1 && !memcmp(held.u.causal.items[0].value.data, "needs y3", 8));
    //  A held version that a shown one covers is of no use any more.
    lat_t newer;
    lat_init(&newer, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&newer, "a", 4, NULL, 0, "x4");
    assert(cache_cut_prune(&held, &x) == 0 && held.u.causal.len == 1);
    assert(cache_cut_prune(&held, &newer) == 1 && held.u.causal.len == 0);
    lat_fini(&newer);
    //  Siblings shown together satisfy a dependency on their join; one of them does not.
    lat_t sib, one_sib;
    lat_init(&sib, LAT_MULTI_CAUSAL);
    lat_init(&one_sib, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&sib, "b", 1, NULL, 0, "yb");
    lat_causal_add_simple(&sib, "c", 1, NULL, 0, "yc");
    lat_causal_add_simple(&one_sib, "b", 1, NULL, 0, "yb");
    s_entry_t both[] = {{"y", &sib}, {NULL, NULL}}, one[] = {{"y", &one_sib}, {NULL, NULL}};
    lat_version_t dependent = {0};
    lat_vclock_t join = {0};
    lat_causal_clock(&sib, &join);
    lat_deps_add(&dependent.deps, "y", &join);
    assert(cache_cut_ready(&dependent, s_lookup, both, NULL));
    assert(!cache_cut_ready(&dependent, s_lookup, one, NULL));
    lat_deps_fini(&dependent.deps);
    lat_vclock_fini(&join);
    lat_fini(&sib);
    lat_fini(&one_sib);
    //  Other kinds are not touched.
    lat_t s;
    lat_init(&s, LAT_SINGLE_CAUSAL);
    assert(cache_cut_split(&s, s_lookup, shown, &wait) == 0);
    lat_fini(&s);
    lat_fini(&wait);
    lat_fini(&x);
    lat_fini(&x2);
    lat_fini(&z);
    lat_fini(&held);
    lat_fini(&y);
    if (verbose)
        printf("cache_cut: ready, split, release\n");
}
