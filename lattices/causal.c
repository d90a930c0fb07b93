//  lattices/causal.c: single- and multi-key causal values as antichains of versions.
//  Anna keeps one clock per value and unions the values of concurrent writes under the
//  joined clock; that merge is not associative (HydroCache, SIGMOD'20, §4 needs a real
//  join), so we keep every maximal version with its own clock instead: merge is the union
//  minus versions strictly dominated by another. Versions equal in clock and value are one
//  version whose deps are joined per key. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

static void s_version_fini(lat_version_t *v)
{
    lat_vclock_fini(&v->clock);
    lat_deps_fini(&v->deps);
    cb_bytes_fini(&v->value);
}

static void s_version_copy(lat_version_t *dst, const lat_version_t *src)
{
    lat_vclock_copy(&dst->clock, &src->clock);
    lat_deps_copy(&dst->deps, &src->deps);
    cb_bytes_copy(&dst->value, &src->value);
}

//  The canonical order: by clock (lat_vclock_order), then by value. Deps do not take part:
//  two versions equal in both are joined into one.
static int s_version_order(const lat_version_t *a, const lat_version_t *b)
{
    int c = lat_vclock_order(&a->clock, &b->clock);
    return c ? c : cb_bytes_cmp(&a->value, &b->value);
}

void lat_causal_fini(lat_causal_t *self)
{
    for (size_t i = 0; i < self->len; i++)
        s_version_fini(&self->items[i]);
    cb_free(self->items);
    self->items = NULL;
    self->len = self->cap = 0;
}

void lat_causal_copy(lat_causal_t *dst, const lat_causal_t *src)
{
    dst->items = src->len ? cb_malloc(src->len * sizeof *dst->items) : NULL;
    for (size_t i = 0; i < src->len; i++)
        s_version_copy(&dst->items[i], &src->items[i]);
    dst->len = dst->cap = src->len;
}

//  Per-pair clock comparisons are quadratic in the number of versions; concurrent versions
//  of one key are few (one per concurrent writer), so this beats any index.
bool lat_causal_merge(lat_causal_t *self, const lat_causal_t *other)
{
    if (self == other || other->len == 0)
        return false;
    size_t n = self->len, m = other->len;
    //  drop[i]: self's version i is dominated; skip[j]: other's version j is dominated or
    //  already here. One allocation-free buffer covers the common small case.
    bool small[64];
    bool *flags =
        n + m <= sizeof small / sizeof small[0] ? small : cb_malloc((n + m) * sizeof *flags);
    bool *drop = flags, *skip = flags + n;
    memset(flags, 0, (n + m) * sizeof *flags);
    bool changed = false;
    size_t dropped = 0, added = m;
    for (size_t i = 0; i < n; i++) {
        lat_version_t *mine = &self->items[i];
        for (size_t j = 0; j < m; j++) {
            const lat_version_t *theirs = &other->items[j];
            switch (lat_vclock_compare(&mine->clock, &theirs->clock)) {
            case LAT_VC_LESS:
                drop[i] = true;
                break;
            case LAT_VC_GREATER:
                added -= !skip[j];
                skip[j] = true;
                break;
            case LAT_VC_EQUAL:
                if (cb_bytes_eq(&mine->value, &theirs->value)) {
                    //  self is an antichain, so no other j dominates i: joining here is safe
                    changed |= lat_deps_merge(&mine->deps, &theirs->deps);
                    added -= !skip[j];
                    skip[j] = true;
                }
                break;
            case LAT_VC_CONCURRENT:
                break;
            }
        }
        dropped += drop[i];
    }
    if (dropped == 0 && added == 0) {
        if (flags != small)
            cb_free(flags);
        return changed;
    }
    //  Both inputs are in canonical order and share no (clock, value): a two-way merge of
    //  the survivors keeps the result canonical.
    size_t len = n - dropped + added;
    lat_version_t *items = cb_malloc(len * sizeof *items);
    size_t i = 0, j = 0, k = 0;
    while (i < n || j < m) {
        if (i < n && drop[i]) {
            s_version_fini(&self->items[i++]);
            continue;
        }
        if (j < m && skip[j]) {
            j++;
            continue;
        }
        if (j == m || (i < n && s_version_order(&self->items[i], &other->items[j]) < 0))
            items[k++] = self->items[i++];
        else
            s_version_copy(&items[k++], &other->items[j++]);
    }
    assert(k == len);
    cb_free(self->items);
    self->items = items;
    self->len = self->cap = len;
    if (flags != small)
        cb_free(flags);
    return true;
}

bool lat_causal_equal(const lat_causal_t *a, const lat_causal_t *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++) {
        const lat_version_t *x = &a->items[i], *y = &b->items[i];
        if (!cb_bytes_eq(&x->value, &y->value) || !lat_vclock_equal(&x->clock, &y->clock) ||
            !lat_deps_equal(&x->deps, &y->deps))
            return false;
    }
    return true;
}

//  merge(a, b) == b iff each version of a is strictly dominated by one of b, or equals one
//  of b in clock and value with deps below its deps. (Then no version of a can dominate one
//  of b: that version of b would be dominated by another of b, and b is an antichain.)
bool lat_causal_leq(const lat_causal_t *a, const lat_causal_t *b)
{
    for (size_t i = 0; i < a->len; i++) {
        const lat_version_t *x = &a->items[i];
        bool covered = false;
        for (size_t j = 0; j < b->len && !covered; j++) {
            const lat_version_t *y = &b->items[j];
            lat_vc_order_t order = lat_vclock_compare(&x->clock, &y->clock);
            covered = order == LAT_VC_LESS ||
                      (order == LAT_VC_EQUAL && cb_bytes_eq(&x->value, &y->value) &&
                       lat_deps_leq(&x->deps, &y->deps));
        }
        if (!covered)
            return false;
    }
    return true;
}

bool lat_causal_add(lat_t *self, const lat_vclock_t *clock, const lat_deps_t *deps,
                    const void *value, size_t len)
{
    assert(self->kind == LAT_SINGLE_CAUSAL || self->kind == LAT_MULTI_CAUSAL);
    assert(value || len == 0);
    //  A one-version value that borrows the arguments: merge copies what it keeps.
    lat_version_t version = {.clock = *clock, .value = {(uint8_t *)value, len}};
    if (deps && self->kind == LAT_MULTI_CAUSAL)
        version.deps = *deps;
    lat_causal_t single = {&version, 1, 1};
    return lat_causal_merge(&self->u.causal, &single);
}

void lat_causal_clock(const lat_t *self, lat_vclock_t *out)
{
    assert(self->kind == LAT_SINGLE_CAUSAL || self->kind == LAT_MULTI_CAUSAL);
    for (size_t i = 0; i < self->u.causal.len; i++)
        lat_vclock_merge(out, &self->u.causal.items[i].clock);
}

static int s_version_qsort_cmp(const void *a, const void *b)
{
    return s_version_order(a, b);
}

//  Bulk form of lat_causal_add for decoders: one sort, then dominance between distinct
//  clocks only, so n versions under one clock (an old client's value set) cost n log n.
void lat_causal_normalize(lat_t *self)
{
    assert(self->kind == LAT_SINGLE_CAUSAL || self->kind == LAT_MULTI_CAUSAL);
    lat_causal_t *causal = &self->u.causal;
    if (self->kind == LAT_SINGLE_CAUSAL)
        for (size_t i = 0; i < causal->len; i++)
            lat_deps_fini(&causal->items[i].deps);
    if (causal->len < 2)
        return;
    lat_version_t *items = causal->items;
    qsort(items, causal->len, sizeof *items, s_version_qsort_cmp);
    size_t len = 1;
    for (size_t i = 1; i < causal->len; i++) {
        if (s_version_order(&items[len - 1], &items[i]) == 0) {
            lat_deps_merge(&items[len - 1].deps, &items[i].deps);
            s_version_fini(&items[i]);
        } else
            items[len++] = items[i];
    }
    //  Equal clocks are adjacent: compare the first version of each run with the others.
    bool *drop = cb_calloc(len, sizeof *drop);
    for (size_t run = 0; run < len;) {
        size_t end = run + 1;
        while (end < len && lat_vclock_equal(&items[run].clock, &items[end].clock))
            end++;
        bool dominated = false;
        for (size_t j = 0; j < len && !dominated; j++)
            dominated = lat_vclock_compare(&items[run].clock, &items[j].clock) == LAT_VC_LESS;
        for (size_t i = run; i < end; i++)
            drop[i] = dominated;
        run = end;
    }
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (drop[i])
            s_version_fini(&items[i]);
        else
            items[out++] = items[i];
    }
    cb_free(drop);
    causal->len = out;
}

bool lat_causal_add_simple(lat_t *self, const char *id, uint32_t count, const char *dep_key,
                           uint32_t dep_count, const char *value)
{
    lat_vclock_t clock = {0}, dep_clock = {0};
    lat_vclock_bump(&clock, id, count);
    lat_vclock_bump(&dep_clock, id, dep_count);
    lat_deps_t deps = {0};
    if (dep_key)
        lat_deps_add(&deps, dep_key, &dep_clock);
    bool changed = lat_causal_add(self, &clock, &deps, value, strlen(value));
    lat_deps_fini(&deps);
    lat_vclock_fini(&clock);
    lat_vclock_fini(&dep_clock);
    return changed;
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_clock2(lat_vclock_t *vc, uint32_t a, uint32_t b)
{
    *vc = (lat_vclock_t){0};
    lat_vclock_bump(vc, "a", a);
    lat_vclock_bump(vc, "b", b);
}

//  Adds a version with clock {a:ca, b:cb} and, for multi, deps {key: {a:ca}}.
static bool s_add(lat_t *self, uint32_t ca, uint32_t cb, const char *value, const char *dep)
{
    lat_vclock_t vc, dep_clock;
    s_clock2(&vc, ca, cb);
    s_clock2(&dep_clock, ca, 0);
    lat_deps_t deps = {0};
    if (dep)
        lat_deps_add(&deps, dep, &dep_clock);
    bool changed = lat_causal_add(self, &vc, &deps, value, strlen(value));
    lat_deps_fini(&deps);
    lat_vclock_fini(&vc);
    lat_vclock_fini(&dep_clock);
    return changed;
}

void lat_causal_test(bool verbose)
{
    lat_t v;
    lat_init(&v, LAT_SINGLE_CAUSAL);
    assert(s_add(&v, 1, 0, "x", NULL));
    assert(s_add(&v, 0, 1, "y", NULL) && v.u.causal.len == 2);  //  concurrent: both kept
    assert(!s_add(&v, 1, 0, "x", NULL));                        //  already there
    assert(!s_add(&v, 0, 0, "old", NULL));                      //  dominated: ignored
    assert(s_add(&v, 1, 0, "x2", NULL) && v.u.causal.len == 3); //  same clock, new value
    //  {a:2, b:1} dominates all three: they are dropped.
    assert(s_add(&v, 2, 1, "z", NULL) && v.u.causal.len == 1);
    assert(cb_bytes_eq(&v.u.causal.items[0].value, &(cb_bytes_t){(uint8_t *)"z", 1}));
    lat_vclock_t joined = {0}, expect;
    lat_causal_clock(&v, &joined);
    s_clock2(&expect, 2, 1);
    assert(lat_vclock_equal(&joined, &expect));
    lat_vclock_fini(&joined);
    lat_vclock_fini(&expect);

    //  The merge does not depend on arrival order, unlike Anna's single-clock value: three
    //  pairwise concurrent versions reach the same state in every order.
    lat_t parts[3], orders[2];
    for (int p = 0; p < 3; p++)
        lat_init(&parts[p], LAT_SINGLE_CAUSAL);
    s_add(&parts[0], 2, 0, "p", NULL);
    s_add(&parts[1], 0, 2, "q", NULL);
    s_add(&parts[2], 1, 1, "r", NULL);
    lat_init(&orders[0], LAT_SINGLE_CAUSAL);
    lat_init(&orders[1], LAT_SINGLE_CAUSAL);
    for (int p = 0; p < 3; p++) {
        lat_merge(&orders[0], &parts[p]);
        lat_merge(&orders[1], &parts[2 - p]);
    }
    assert(lat_equal(&orders[0], &orders[1]) && orders[0].u.causal.len == 3);
    //  versions in canonical order: by clock, lexicographically
    assert(lat_vclock_order(&orders[0].u.causal.items[0].clock,
                            &orders[0].u.causal.items[1].clock) < 0);
    for (int p = 0; p < 3; p++)
        lat_fini(&parts[p]);
    lat_fini(&orders[0]);
    lat_fini(&orders[1]);
    lat_fini(&v);

    //  Multi: equal (clock, value) joins deps; a dominating version replaces deps too.
    lat_init(&v, LAT_MULTI_CAUSAL);
    assert(s_add(&v, 1, 1, "m", "k1"));
    assert(s_add(&v, 1, 1, "m", "k2") && v.u.causal.len == 1 && v.u.causal.items[0].deps.len == 2);
    assert(!s_add(&v, 1, 1, "m", "k2"));
    lat_t w;
    lat_init(&w, LAT_MULTI_CAUSAL);
    s_add(&w, 1, 1, "m", "k1");
    assert(lat_leq(&w, &v) && !lat_leq(&v, &w));
    assert(s_add(&v, 1, 2, "n", "k3") && v.u.causal.len == 1 && v.u.causal.items[0].deps.len == 1);
    assert(lat_leq(&w, &v) && lat_merge(&w, &v) == 1 && lat_equal(&w, &v));
    lat_fini(&w);
    lat_fini(&v);

    //  normalize (bulk) agrees with one lat_causal_add per version, in any order.
    cb_rand_t rand;
    cb_rand_seed(&rand, lat_test_seed());
    for (int round = 0; round < 1000; round++) {
        lat_kind_t kind = round % 2 ? LAT_MULTI_CAUSAL : LAT_SINGLE_CAUSAL;
        lat_t one_by_one, bulk;
        lat_init(&one_by_one, kind);
        lat_init(&bulk, kind);
        size_t n = cb_rand_below(&rand, 12);
        bulk.u.causal.items = cb_calloc(n, sizeof *bulk.u.causal.items);
        bulk.u.causal.cap = n;
        for (size_t i = 0; i < n; i++) {
            lat_version_t *version = &bulk.u.causal.items[bulk.u.causal.len++];
            uint32_t ca = (uint32_t)cb_rand_below(&rand, 3), cb = (uint32_t)cb_rand_below(&rand, 3);
            char value[2] = {(char)('a' + cb_rand_below(&rand, 2)), 0};
            char dep[3] = {'k', (char)('0' + cb_rand_below(&rand, 3)), 0};
            s_add(&one_by_one, ca, cb, value, round % 3 ? dep : NULL);
            s_clock2(&version->clock, ca, cb);
            lat_vclock_t dep_clock;
            s_clock2(&dep_clock, ca, 0);
            if (round % 3)
                lat_deps_add(&version->deps, dep, &dep_clock);
            lat_vclock_fini(&dep_clock);
            cb_bytes_set(&version->value, value, 1);
        }
        lat_causal_normalize(&bulk);
        assert(lat_equal(&bulk, &one_by_one));
        lat_fini(&one_by_one);
        lat_fini(&bulk);
    }
    if (verbose)
        printf("  causal: dominance drop, concurrency, deps join OK\n");
}
