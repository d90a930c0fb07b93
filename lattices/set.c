//  lattices/set.c: the grow-only set of byte strings (SET and ORDERED_SET), kept as a sorted
//  array of unique items. Merge is a gallop merge done in place from the back: linear for
//  sets of similar size, O(m log n) comparisons when a few items join a large set, and no
//  allocation when nothing is new. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

void *lat_array_reserve(void *items, size_t *cap, size_t need, size_t item_size)
{
    if (need <= *cap)
        return items;
    size_t grown = *cap < 4 ? 4 : *cap * 2;
    size_t new_cap = grown > need ? grown : need;
    *cap = new_cap;
    return cb_realloc(items, new_cap * item_size);
}

//  First index in [lo, hi) whose item is >= key.
static size_t s_lower_bound(const cb_bytes_t *items, size_t lo, size_t hi, const cb_bytes_t *key)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cb_bytes_cmp(&items[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

//  As s_lower_bound, probing from lo at distances 1, 2, 4, ...: the answer is usually near
//  lo when walking two sorted arrays together, which keeps a merge linear.
static size_t s_gallop_up(const cb_bytes_t *items, size_t lo, size_t hi, const cb_bytes_t *key)
{
    size_t step = 1;
    while (lo < hi) {
        size_t probe = hi - lo > step ? lo + step - 1 : hi - 1;
        if (cb_bytes_cmp(&items[probe], key) >= 0)
            return s_lower_bound(items, lo, probe, key);
        lo = probe + 1;
        step *= 2;
    }
    return hi;
}

//  As s_lower_bound, probing down from hi at distances 1, 2, 4, ...
static size_t s_gallop_down(const cb_bytes_t *items, size_t lo, size_t hi, const cb_bytes_t *key)
{
    size_t step = 1;
    while (hi > lo) {
        size_t probe = hi - lo > step ? hi - step : lo;
        if (cb_bytes_cmp(&items[probe], key) < 0)
            return s_lower_bound(items, probe + 1, hi, key);
        hi = probe;
        step *= 2;
    }
    return lo;
}

bool lat_set_insert(lat_set_t *set, const void *data, size_t len)
{
    assert(data || len == 0);
    cb_bytes_t key = {(uint8_t *)data, len};
    size_t pos = s_lower_bound(set->items, 0, set->len, &key);
    if (pos < set->len && cb_bytes_eq(&set->items[pos], &key))
        return false;
    set->items = lat_array_reserve(set->items, &set->cap, set->len + 1, sizeof *set->items);
    memmove(&set->items[pos + 1], &set->items[pos], (set->len - pos) * sizeof *set->items);
    cb_bytes_set(&set->items[pos], data, len);
    set->len++;
    return true;
}

bool lat_set_contains(const lat_set_t *set, const void *data, size_t len)
{
    cb_bytes_t key = {(uint8_t *)data, len};
    size_t pos = s_lower_bound(set->items, 0, set->len, &key);
    return pos < set->len && cb_bytes_eq(&set->items[pos], &key);
}

void lat_set_fini(lat_set_t *set)
{
    for (size_t i = 0; i < set->len; i++)
        cb_bytes_fini(&set->items[i]);
    cb_free(set->items);
    set->items = NULL;
    set->len = set->cap = 0;
}

void lat_set_copy(lat_set_t *dst, const lat_set_t *src)
{
    dst->items = src->len ? cb_malloc(src->len * sizeof *dst->items) : NULL;
    for (size_t i = 0; i < src->len; i++)
        cb_bytes_copy(&dst->items[i], &src->items[i]);
    dst->len = dst->cap = src->len;
}

//  The number of other's items that self lacks.
static size_t s_count_missing(const lat_set_t *self, const lat_set_t *other)
{
    size_t missing = 0, i = 0;
    for (size_t j = 0; j < other->len; j++) {
        i = s_gallop_up(self->items, i, self->len, &other->items[j]);
        if (i < self->len && cb_bytes_eq(&self->items[i], &other->items[j]))
            i++;
        else
            missing++;
    }
    return missing;
}

bool lat_set_merge(lat_set_t *self, const lat_set_t *other)
{
    if (self == other)
        return false;
    size_t missing = s_count_missing(self, other);
    if (missing == 0)
        return false;
    self->items =
        lat_array_reserve(self->items, &self->cap, self->len + missing, sizeof *self->items);
    //  Fill the result from the back, so that each of self's items moves at most once (in
    //  blocks) and no second array is needed: [i, k) is the gap still to fill.
    cb_bytes_t *items = self->items;
    size_t i = self->len, k = self->len + missing;
    for (size_t j = other->len; j-- > 0 && k > i;) {
        const cb_bytes_t *key = &other->items[j];
        size_t pos = s_gallop_down(items, 0, i, key);
        bool found = pos < i && cb_bytes_eq(&items[pos], key);
        size_t block = i - pos;
        memmove(&items[k - block], &items[pos], block * sizeof *items);
        k -= block;
        i = pos;
        if (!found)
            cb_bytes_copy(&items[--k], key);
    }
    assert(i == k);
    self->len += missing;
    return true;
}

bool lat_set_equal(const lat_set_t *a, const lat_set_t *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (!cb_bytes_eq(&a->items[i], &b->items[i]))
            return false;
    return true;
}

bool lat_set_subset(const lat_set_t *a, const lat_set_t *b)
{
    return a->len <= b->len && s_count_missing(b, a) == 0;
}

static int s_bytes_qsort_cmp(const void *a, const void *b)
{
    return cb_bytes_cmp(a, b);
}

void lat_set_normalize(lat_set_t *set)
{
    bool sorted = true;
    for (size_t i = 1; i < set->len && sorted; i++)
        sorted = cb_bytes_cmp(&set->items[i - 1], &set->items[i]) < 0;
    if (sorted)
        return;
    qsort(set->items, set->len, sizeof *set->items, s_bytes_qsort_cmp);
    size_t out = 1;
    for (size_t i = 1; i < set->len; i++) {
        if (cb_bytes_eq(&set->items[out - 1], &set->items[i]))
            cb_bytes_fini(&set->items[i]);
        else
            set->items[out++] = set->items[i];
    }
    set->len = out;
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_set_of(lat_t *self, const char *csv)
{
    lat_init(self, LAT_SET);
    const char *p = csv;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        lat_set_insert(&self->u.set, p, len);
        p += len + (end ? 1 : 0);
    }
}

static void s_check_sorted(const lat_set_t *set)
{
    for (size_t i = 1; i < set->len; i++)
        assert(cb_bytes_cmp(&set->items[i - 1], &set->items[i]) < 0);
}

void lat_set_test(bool verbose)
{
    lat_t a, b, c, expect;
    s_set_of(&a, "b,d,f");
    s_set_of(&b, "a,d,g,h");
    s_set_of(&expect, "a,b,d,f,g,h");
    assert(lat_merge(&a, &b) == 1 && lat_equal(&a, &expect));
    assert(lat_merge(&a, &b) == 0 && lat_merge(&a, &a) == 0);
    s_set_of(&c, "");
    assert(lat_merge(&c, &a) == 1 && lat_equal(&c, &a) && lat_leq(&b, &c) && !lat_leq(&c, &b));
    assert(lat_set_contains(&c.u.set, "g", 1) && !lat_set_contains(&c.u.set, "c", 1));
    assert(lat_set_insert(&c.u.set, "", 0) && !lat_set_insert(&c.u.set, "", 0));
    assert(c.u.set.items[0].len == 0);
    lat_fini(&a);
    lat_fini(&b);
    lat_fini(&c);
    lat_fini(&expect);

    //  Random merges against a reference: membership of every small string before and after.
    cb_rand_t rand;
    cb_rand_seed(&rand, lat_test_seed());
    for (int round = 0; round < 2000; round++) {
        lat_init(&a, LAT_SET);
        lat_init(&b, LAT_SET);
        size_t na = cb_rand_below(&rand, 40), nb = cb_rand_below(&rand, round % 2 ? 3 : 40);
        for (size_t i = 0; i < na + nb; i++) {
            char item[2] = {(char)('a' + cb_rand_below(&rand, 26)),
                            (char)('a' + cb_rand_below(&rand, 3))};
            lat_set_insert(i < na ? &a.u.set : &b.u.set, item, 1 + cb_rand_below(&rand, 2));
        }
        lat_t merged;
        lat_copy(&merged, &a);
        int changed = lat_merge(&merged, &b);
        s_check_sorted(&merged.u.set);
        assert(changed == !lat_equal(&merged, &a));
        for (int x = 0; x < 26; x++)
            for (int y = -1; y < 3; y++) {
                char item[2] = {(char)('a' + x), (char)('a' + y)};
                size_t len = y < 0 ? 1 : 2;
                assert(lat_set_contains(&merged.u.set, item, len) ==
                       (lat_set_contains(&a.u.set, item, len) ||
                        lat_set_contains(&b.u.set, item, len)));
            }
        assert(lat_set_subset(&a.u.set, &merged.u.set) && lat_set_subset(&b.u.set, &merged.u.set));
        lat_fini(&merged);
        lat_fini(&a);
        lat_fini(&b);
    }

    //  normalize: unsorted owned items with duplicates.
    lat_init(&a, LAT_SET);
    const char *raw[] = {"x", "b", "x", "", "a", "b"};
    for (size_t i = 0; i < 6; i++) {
        a.u.set.items =
            lat_array_reserve(a.u.set.items, &a.u.set.cap, a.u.set.len + 1, sizeof *a.u.set.items);
        cb_bytes_set(&a.u.set.items[a.u.set.len++], raw[i], strlen(raw[i]));
    }
    lat_set_normalize(&a.u.set);
    s_set_of(&expect, ",a,b,x");
    assert(lat_equal(&a, &expect));
    lat_fini(&a);
    lat_fini(&expect);
    if (verbose)
        printf("  set: merge, subset, normalize OK\n");
}
