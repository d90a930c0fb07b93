//  lattices/vclock.c: vector clocks (id -> counter, pointwise max) and causal dependencies
//  (key -> vector clock). Both are sorted arrays without zero entries, so that equal values
//  are equal structurally and merges are linear walks over two sorted arrays.
//  Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

//  First index whose id is >= id; *found says whether it is equal.
static size_t s_vclock_find(const lat_vclock_t *vc, const char *id, bool *found)
{
    size_t lo = 0, hi = vc->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(vc->items[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < vc->len && strcmp(vc->items[lo].id, id) == 0;
    return lo;
}

uint32_t lat_vclock_get(const lat_vclock_t *vc, const char *id)
{
    bool found;
    size_t pos = s_vclock_find(vc, id, &found);
    return found ? vc->items[pos].count : 0;
}

bool lat_vclock_bump(lat_vclock_t *vc, const char *id, uint32_t count)
{
    if (count == 0)
        return false;
    bool found;
    size_t pos = s_vclock_find(vc, id, &found);
    if (found) {
        if (vc->items[pos].count >= count)
            return false;
        vc->items[pos].count = count;
        return true;
    }
    vc->items = lat_array_reserve(vc->items, &vc->cap, vc->len + 1, sizeof *vc->items);
    memmove(&vc->items[pos + 1], &vc->items[pos], (vc->len - pos) * sizeof *vc->items);
    vc->items[pos].id = cb_strdup(id);
    vc->items[pos].count = count;
    vc->len++;
    return true;
}

void lat_vclock_tick(lat_vclock_t *vc, const char *id)
{
    uint32_t count = lat_vclock_get(vc, id);
    lat_vclock_bump(vc, id, count == UINT32_MAX ? count : count + 1);
}

bool lat_vclock_merge(lat_vclock_t *vc, const lat_vclock_t *other)
{
    if (vc == other)
        return false;
    //  First pass: raise shared ids in place and count the ids vc lacks.
    bool changed = false;
    size_t missing = 0, i = 0;
    for (size_t j = 0; j < other->len; j++) {
        const lat_vc_entry_t *entry = &other->items[j];
        while (i < vc->len && strcmp(vc->items[i].id, entry->id) < 0)
            i++;
        if (i < vc->len && strcmp(vc->items[i].id, entry->id) == 0) {
            if (vc->items[i].count < entry->count) {
                vc->items[i].count = entry->count;
                changed = true;
            }
            i++;
        } else
            missing++;
    }
    if (missing == 0)
        return changed;
    //  Second pass, from the back: each old entry moves once, new ones land in the gap.
    vc->items = lat_array_reserve(vc->items, &vc->cap, vc->len + missing, sizeof *vc->items);
    lat_vc_entry_t *items = vc->items;
    size_t k = vc->len + missing;
    i = vc->len;
    for (size_t j = other->len; j > 0 && k > i;) {
        const lat_vc_entry_t *entry = &other->items[j - 1];
        int c = i > 0 ? strcmp(items[i - 1].id, entry->id) : -1;
        if (c >= 0) {
            items[--k] = items[--i];
            if (c == 0)
                j--;
        } else {
            items[--k] = (lat_vc_entry_t){cb_strdup(entry->id), entry->count};
            j--;
        }
    }
    assert(k == i);
    vc->len += missing;
    return true;
}

lat_vc_order_t lat_vclock_compare(const lat_vclock_t *a, const lat_vclock_t *b)
{
    bool a_less = false, a_greater = false; //  some entry of a below / above b's
    size_t i = 0, j = 0;
    while ((i < a->len || j < b->len) && !(a_less && a_greater)) {
        int c = i == a->len ? 1 : j == b->len ? -1 : strcmp(a->items[i].id, b->items[j].id);
        if (c < 0) {
            a_greater = true; //  an id only a has (counts are never 0)
            i++;
        } else if (c > 0) {
            a_less = true;
            j++;
        } else {
            a_less |= a->items[i].count < b->items[j].count;
            a_greater |= a->items[i].count > b->items[j].count;
            i++;
            j++;
        }
    }
    if (a_less && a_greater)
        return LAT_VC_CONCURRENT;
    return a_less ? LAT_VC_LESS : a_greater ? LAT_VC_GREATER : LAT_VC_EQUAL;
}

void lat_vclock_copy(lat_vclock_t *dst, const lat_vclock_t *src)
{
    dst->items = src->len ? cb_malloc(src->len * sizeof *dst->items) : NULL;
    for (size_t i = 0; i < src->len; i++)
        dst->items[i] = (lat_vc_entry_t){cb_strdup(src->items[i].id), src->items[i].count};
    dst->len = dst->cap = src->len;
}

void lat_vclock_fini(lat_vclock_t *vc)
{
    for (size_t i = 0; i < vc->len; i++)
        cb_free(vc->items[i].id);
    cb_free(vc->items);
    vc->items = NULL;
    vc->len = vc->cap = 0;
}

int lat_vclock_order(const lat_vclock_t *a, const lat_vclock_t *b)
{
    for (size_t i = 0; i < a->len && i < b->len; i++) {
        int c = strcmp(a->items[i].id, b->items[i].id);
        if (c)
            return c;
        if (a->items[i].count != b->items[i].count)
            return a->items[i].count < b->items[i].count ? -1 : 1;
    }
    return (a->len > b->len) - (a->len < b->len);
}

bool lat_vclock_equal(const lat_vclock_t *a, const lat_vclock_t *b)
{
    return a->len == b->len && lat_vclock_order(a, b) == 0;
}

static int s_entry_qsort_cmp(const void *a, const void *b)
{
    const lat_vc_entry_t *x = a, *y = b;
    return strcmp(x->id, y->id);
}

void lat_vclock_normalize(lat_vclock_t *vc)
{
    size_t out = 0;
    for (size_t i = 0; i < vc->len; i++) {
        if (vc->items[i].count == 0)
            cb_free(vc->items[i].id);
        else
            vc->items[out++] = vc->items[i];
    }
    vc->len = out;
    if (vc->len < 2)
        return;
    qsort(vc->items, vc->len, sizeof *vc->items, s_entry_qsort_cmp);
    out = 1;
    for (size_t i = 1; i < vc->len; i++) {
        lat_vc_entry_t *last = &vc->items[out - 1];
        if (strcmp(last->id, vc->items[i].id) == 0) {
            if (last->count < vc->items[i].count)
                last->count = vc->items[i].count;
            cb_free(vc->items[i].id);
        } else
            vc->items[out++] = vc->items[i];
    }
    vc->len = out;
}

//  ---- deps ---------------------------------------------------------------------------------

static size_t s_deps_find(const lat_deps_t *deps, const char *key, bool *found)
{
    size_t lo = 0, hi = deps->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(deps->items[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < deps->len && strcmp(deps->items[lo].key, key) == 0;
    return lo;
}

static bool s_deps_join(lat_deps_t *deps, const char *key, const lat_vclock_t *clock)
{
    if (clock->len == 0)
        return false;
    bool found;
    size_t pos = s_deps_find(deps, key, &found);
    if (found)
        return lat_vclock_merge(&deps->items[pos].clock, clock);
    deps->items = lat_array_reserve(deps->items, &deps->cap, deps->len + 1, sizeof *deps->items);
    memmove(&deps->items[pos + 1], &deps->items[pos], (deps->len - pos) * sizeof *deps->items);
    deps->items[pos].key = cb_strdup(key);
    lat_vclock_copy(&deps->items[pos].clock, clock);
    deps->len++;
    return true;
}

void lat_deps_add(lat_deps_t *deps, const char *key, const lat_vclock_t *clock)
{
    s_deps_join(deps, key, clock);
}

void lat_deps_fini(lat_deps_t *deps)
{
    for (size_t i = 0; i < deps->len; i++) {
        cb_free(deps->items[i].key);
        lat_vclock_fini(&deps->items[i].clock);
    }
    cb_free(deps->items);
    deps->items = NULL;
    deps->len = deps->cap = 0;
}

void lat_deps_copy(lat_deps_t *dst, const lat_deps_t *src)
{
    dst->items = src->len ? cb_malloc(src->len * sizeof *dst->items) : NULL;
    for (size_t i = 0; i < src->len; i++) {
        dst->items[i].key = cb_strdup(src->items[i].key);
        lat_vclock_copy(&dst->items[i].clock, &src->items[i].clock);
    }
    dst->len = dst->cap = src->len;
}

//  Deps hold one entry per key read by the version; they are few, so per-entry joins
//  (binary search, insert) are cheaper than a two-pass merge here.
bool lat_deps_merge(lat_deps_t *self, const lat_deps_t *other)
{
    if (self == other)
        return false;
    bool changed = false;
    for (size_t i = 0; i < other->len; i++)
        changed |= s_deps_join(self, other->items[i].key, &other->items[i].clock);
    return changed;
}

bool lat_deps_equal(const lat_deps_t *a, const lat_deps_t *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->items[i].key, b->items[i].key) ||
            !lat_vclock_equal(&a->items[i].clock, &b->items[i].clock))
            return false;
    return true;
}

bool lat_deps_leq(const lat_deps_t *a, const lat_deps_t *b)
{
    for (size_t i = 0; i < a->len; i++) {
        bool found;
        size_t pos = s_deps_find(b, a->items[i].key, &found);
        if (!found)
            return false;
        lat_vc_order_t order = lat_vclock_compare(&a->items[i].clock, &b->items[pos].clock);
        if (order != LAT_VC_EQUAL && order != LAT_VC_LESS)
            return false;
    }
    return true;
}

static int s_dep_qsort_cmp(const void *a, const void *b)
{
    const lat_dep_t *x = a, *y = b;
    return strcmp(x->key, y->key);
}

void lat_deps_normalize(lat_deps_t *deps)
{
    size_t out = 0;
    for (size_t i = 0; i < deps->len; i++) {
        if (deps->items[i].clock.len == 0) {
            cb_free(deps->items[i].key);
            lat_vclock_fini(&deps->items[i].clock);
        } else
            deps->items[out++] = deps->items[i];
    }
    deps->len = out;
    if (deps->len < 2)
        return;
    qsort(deps->items, deps->len, sizeof *deps->items, s_dep_qsort_cmp);
    out = 1;
    for (size_t i = 1; i < deps->len; i++) {
        lat_dep_t *last = &deps->items[out - 1];
        if (strcmp(last->key, deps->items[i].key) == 0) {
            lat_vclock_merge(&last->clock, &deps->items[i].clock);
            cb_free(deps->items[i].key);
            lat_vclock_fini(&deps->items[i].clock);
        } else
            deps->items[out++] = deps->items[i];
    }
    deps->len = out;
}

//  ---- self-test ----------------------------------------------------------------------------

//  "a:1,b:2" -> clock (entries in any order; count 0 allowed, dropped).
static void s_clock_of(lat_vclock_t *vc, const char *spec)
{
    *vc = (lat_vclock_t){0};
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        assert(colon);
        *colon = '\0';
        lat_vclock_bump(vc, tok, (uint32_t)strtoul(colon + 1, NULL, 10));
    }
}

static lat_vc_order_t s_compare(const char *a, const char *b)
{
    lat_vclock_t x, y;
    s_clock_of(&x, a);
    s_clock_of(&y, b);
    lat_vc_order_t order = lat_vclock_compare(&x, &y);
    //  the order seen from the other side must mirror it
    lat_vc_order_t mirror = lat_vclock_compare(&y, &x);
    assert(order == LAT_VC_LESS      ? mirror == LAT_VC_GREATER
           : order == LAT_VC_GREATER ? mirror == LAT_VC_LESS
                                     : mirror == order);
    lat_vclock_fini(&x);
    lat_vclock_fini(&y);
    return order;
}

void lat_vclock_test(bool verbose)
{
    assert(s_compare("", "") == LAT_VC_EQUAL);
    assert(s_compare("a:1,b:2", "b:2,a:1") == LAT_VC_EQUAL);
    assert(s_compare("a:1,b:0", "a:1") == LAT_VC_EQUAL);
    assert(s_compare("", "a:1") == LAT_VC_LESS);
    assert(s_compare("a:1", "a:2") == LAT_VC_LESS);
    assert(s_compare("a:1", "a:1,b:1") == LAT_VC_LESS);
    assert(s_compare("a:2,b:1", "a:1,b:1") == LAT_VC_GREATER);
    assert(s_compare("a:2,c:1", "a:2") == LAT_VC_GREATER);
    assert(s_compare("a:1", "b:1") == LAT_VC_CONCURRENT);
    assert(s_compare("a:2,b:1", "a:1,b:2") == LAT_VC_CONCURRENT);
    assert(s_compare("a:1,c:5", "a:1,b:1") == LAT_VC_CONCURRENT);

    lat_vclock_t vc, other, expect;
    s_clock_of(&vc, "b:2,d:1");
    s_clock_of(&other, "a:1,b:1,c:3,d:4,e:1");
    s_clock_of(&expect, "a:1,b:2,c:3,d:4,e:1");
    assert(lat_vclock_merge(&vc, &other) && lat_vclock_equal(&vc, &expect));
    assert(!lat_vclock_merge(&vc, &other) && !lat_vclock_merge(&vc, &vc));
    assert(lat_vclock_get(&vc, "c") == 3 && lat_vclock_get(&vc, "zz") == 0);
    assert(!lat_vclock_bump(&vc, "c", 2) && !lat_vclock_bump(&vc, "q", 0));
    lat_vclock_tick(&vc, "c");
    lat_vclock_tick(&vc, "0");
    assert(lat_vclock_get(&vc, "c") == 4 && lat_vclock_get(&vc, "0") == 1 && vc.len == 6);
    assert(lat_vclock_bump(&vc, "c", UINT32_MAX));
    lat_vclock_tick(&vc, "c");
    assert(lat_vclock_get(&vc, "c") == UINT32_MAX);
    assert(lat_vclock_order(&vc, &expect) < 0 && lat_vclock_order(&expect, &vc) > 0);
    lat_vclock_fini(&vc);
    lat_vclock_fini(&other);
    lat_vclock_fini(&expect);

    //  normalize: zeros dropped, duplicates joined by max.
    vc = (lat_vclock_t){0};
    const char *ids[] = {"c", "a", "b", "a", "c"};
    uint32_t counts[] = {1, 2, 0, 5, 0};
    for (size_t i = 0; i < 5; i++) {
        vc.items = lat_array_reserve(vc.items, &vc.cap, vc.len + 1, sizeof *vc.items);
        vc.items[vc.len++] = (lat_vc_entry_t){cb_strdup(ids[i]), counts[i]};
    }
    lat_vclock_normalize(&vc);
    s_clock_of(&expect, "a:5,c:1");
    assert(lat_vclock_equal(&vc, &expect));
    lat_vclock_fini(&expect);

    //  deps: joined per key, empty clocks never stored, leq per key.
    lat_deps_t deps = {0}, more = {0}, copy;
    lat_vclock_t empty = {0};
    lat_deps_add(&deps, "k2", &vc);
    lat_deps_add(&deps, "k0", &empty);
    assert(deps.len == 1);
    s_clock_of(&other, "a:1,b:1");
    lat_deps_add(&more, "k2", &other);
    lat_deps_add(&more, "k1", &other);
    lat_deps_copy(&copy, &deps);
    assert(!lat_deps_leq(&deps, &more) && !lat_deps_leq(&more, &deps));
    assert(lat_deps_merge(&copy, &more) && !lat_deps_merge(&copy, &more));
    assert(lat_deps_leq(&deps, &copy) && lat_deps_leq(&more, &copy) && copy.len == 2);
    assert(strcmp(copy.items[0].key, "k1") == 0 && lat_vclock_get(&copy.items[1].clock, "b") == 1);
    assert(lat_vclock_get(&copy.items[1].clock, "a") == 5 && !lat_deps_equal(&copy, &more));
    lat_deps_fini(&copy);
    lat_deps_fini(&deps);
    lat_deps_fini(&more);
    lat_vclock_fini(&other);
    lat_vclock_fini(&vc);
    if (verbose)
        printf("  vclock: compare, merge, tick, normalize, deps OK\n");
}
