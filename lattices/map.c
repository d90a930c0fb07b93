//  lattices/map.c: key -> lattice, merged per key (Anna's MapLattice), as a sorted array of
//  owned entries. Entries of different kinds at one key join by kind number, the larger
//  kind replacing the smaller: the lexicographic order on (kind, value) keeps merge a total
//  join, so replicas that saw conflicting writes still converge. Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "lattices/lattice.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lattices/internal.h"

static size_t s_map_find(const lat_map_t *map, const cb_bytes_t *key, bool *found)
{
    size_t lo = 0, hi = map->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cb_bytes_cmp(&map->items[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < map->len && cb_bytes_eq(&map->items[lo].key, key);
    return lo;
}

static lat_t *s_lat_dup(const lat_t *src)
{
    lat_t *copy = cb_malloc(sizeof *copy);
    lat_copy(copy, src);
    return copy;
}

static void s_entry_fini(lat_map_entry_t *entry)
{
    cb_bytes_fini(&entry->key);
    lat_fini(entry->value);
    cb_free(entry->value);
    entry->value = NULL;
}

//  Joins other into the entry value self under the kind rule. 1 if self changed.
static int s_value_join(lat_t *self, const lat_t *other)
{
    if (other->kind < self->kind)
        return 0;
    if (other->kind > self->kind) {
        lat_fini(self);
        lat_copy(self, other);
        return 1;
    }
    return lat_merge(self, other);
}

static bool s_value_leq(const lat_t *a, const lat_t *b)
{
    return a->kind < b->kind || (a->kind == b->kind && lat_leq(a, b));
}

const lat_t *lat_map_get(const lat_map_t *map, const void *key, size_t len)
{
    bool found;
    size_t pos = s_map_find(map, &(cb_bytes_t){(uint8_t *)key, len}, &found);
    return found ? map->items[pos].value : NULL;
}

int lat_map_merge_at(lat_map_t *map, const void *key, size_t len, const lat_t *value)
{
    assert(lat_kind_valid(value->kind));
    assert(key || len == 0);
    bool found;
    size_t pos = s_map_find(map, &(cb_bytes_t){(uint8_t *)key, len}, &found);
    if (found)
        return s_value_join(map->items[pos].value, value);
    map->items = lat_array_reserve(map->items, &map->cap, map->len + 1, sizeof *map->items);
    memmove(&map->items[pos + 1], &map->items[pos], (map->len - pos) * sizeof *map->items);
    cb_bytes_set(&map->items[pos].key, key, len);
    map->items[pos].value = s_lat_dup(value);
    map->len++;
    return 1;
}

void lat_map_fini(lat_map_t *self)
{
    for (size_t i = 0; i < self->len; i++)
        s_entry_fini(&self->items[i]);
    cb_free(self->items);
    self->items = NULL;
    self->len = self->cap = 0;
}

void lat_map_copy(lat_map_t *dst, const lat_map_t *src)
{
    dst->items = src->len ? cb_malloc(src->len * sizeof *dst->items) : NULL;
    for (size_t i = 0; i < src->len; i++) {
        cb_bytes_copy(&dst->items[i].key, &src->items[i].key);
        dst->items[i].value = s_lat_dup(src->items[i].value);
    }
    dst->len = dst->cap = src->len;
}

bool lat_map_merge(lat_map_t *self, const lat_map_t *other)
{
    if (self == other)
        return false;
    //  A few keys into a large map (the common update): binary search and insert each.
    if (other->len * 8 < self->len) {
        bool changed = false;
        for (size_t j = 0; j < other->len; j++)
            changed |= lat_map_merge_at(self, other->items[j].key.data, other->items[j].key.len,
                                        other->items[j].value) > 0;
        return changed;
    }
    //  First pass: join shared keys in place, count the keys self lacks.
    bool changed = false;
    size_t missing = 0, i = 0;
    for (size_t j = 0; j < other->len; j++) {
        const lat_map_entry_t *entry = &other->items[j];
        while (i < self->len && cb_bytes_cmp(&self->items[i].key, &entry->key) < 0)
            i++;
        if (i < self->len && cb_bytes_eq(&self->items[i].key, &entry->key))
            changed |= s_value_join(self->items[i++].value, entry->value) > 0;
        else
            missing++;
    }
    if (missing == 0)
        return changed;
    //  Second pass, from the back: each old entry moves once, new ones land in the gap.
    self->items =
        lat_array_reserve(self->items, &self->cap, self->len + missing, sizeof *self->items);
    lat_map_entry_t *items = self->items;
    size_t k = self->len + missing;
    i = self->len;
    for (size_t j = other->len; j > 0 && k > i;) {
        const lat_map_entry_t *entry = &other->items[j - 1];
        int c = i > 0 ? cb_bytes_cmp(&items[i - 1].key, &entry->key) : -1;
        if (c >= 0) {
            items[--k] = items[--i];
            if (c == 0)
                j--;
        } else {
            k--;
            cb_bytes_copy(&items[k].key, &entry->key);
            items[k].value = s_lat_dup(entry->value);
            j--;
        }
    }
    assert(k == i);
    self->len += missing;
    return true;
}

bool lat_map_equal(const lat_map_t *a, const lat_map_t *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (!cb_bytes_eq(&a->items[i].key, &b->items[i].key) ||
            !lat_equal(a->items[i].value, b->items[i].value))
            return false;
    return true;
}

bool lat_map_leq(const lat_map_t *a, const lat_map_t *b)
{
    if (a->len > b->len)
        return false;
    size_t j = 0;
    for (size_t i = 0; i < a->len; i++) {
        const lat_map_entry_t *entry = &a->items[i];
        while (j < b->len && cb_bytes_cmp(&b->items[j].key, &entry->key) < 0)
            j++;
        if (j == b->len || !cb_bytes_eq(&b->items[j].key, &entry->key) ||
            !s_value_leq(entry->value, b->items[j].value))
            return false;
        j++;
    }
    return true;
}

static int s_entry_qsort_cmp(const void *a, const void *b)
{
    const lat_map_entry_t *x = a, *y = b;
    return cb_bytes_cmp(&x->key, &y->key);
}

void lat_map_normalize(lat_map_t *map)
{
    bool sorted = true;
    for (size_t i = 1; i < map->len && sorted; i++)
        sorted = cb_bytes_cmp(&map->items[i - 1].key, &map->items[i].key) < 0;
    if (sorted)
        return;
    //  qsort is not stable, which is fine: joining duplicates is commutative.
    qsort(map->items, map->len, sizeof *map->items, s_entry_qsort_cmp);
    size_t out = 1;
    for (size_t i = 1; i < map->len; i++) {
        lat_map_entry_t *last = &map->items[out - 1];
        if (cb_bytes_eq(&last->key, &map->items[i].key)) {
            s_value_join(last->value, map->items[i].value);
            s_entry_fini(&map->items[i]);
        } else
            map->items[out++] = map->items[i];
    }
    map->len = out;
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_put_lww(lat_map_t *map, const char *key, uint64_t ts, const char *text)
{
    lat_t v;
    lat_init(&v, LAT_LWW);
    lat_lww_assign(&v, ts, 0, text, strlen(text));
    lat_map_merge_at(map, key, strlen(key), &v);
    lat_fini(&v);
}

static void s_put_max(lat_map_t *map, const char *key, int64_t value)
{
    lat_t v;
    lat_init(&v, LAT_MAX);
    v.u.max = value;
    lat_map_merge_at(map, key, strlen(key), &v);
    lat_fini(&v);
}

void lat_map_test(bool verbose)
{
    lat_t a, b;
    lat_init(&a, LAT_MAP);
    lat_init(&b, LAT_MAP);
    s_put_lww(&a.u.map, "x", 5, "old");
    s_put_lww(&a.u.map, "y", 1, "keep");
    s_put_lww(&b.u.map, "x", 6, "new");
    s_put_max(&b.u.map, "z", 3);
    assert(lat_merge(&a, &b) == 1 && a.u.map.len == 3);
    const lat_t *x = lat_map_get(&a.u.map, "x", 1);
    assert(x && x->kind == LAT_LWW && x->u.lww.ts == 6);
    assert(lat_leq(&b, &a) && !lat_leq(&a, &b) && lat_merge(&a, &b) == 0);
    assert(!lat_map_get(&a.u.map, "w", 1));

    //  Kind conflict at one key: MAX (17) beats LWW (1) whichever arrives first.
    lat_t c;
    lat_init(&c, LAT_MAP);
    s_put_max(&c.u.map, "y", -5);
    lat_t ac, ca;
    lat_copy(&ac, &a);
    lat_copy(&ca, &c);
    assert(lat_merge(&ac, &c) == 1 && lat_merge(&ca, &a) == 1 && lat_equal(&ac, &ca));
    const lat_t *y = lat_map_get(&ac.u.map, "y", 1);
    assert(y && y->kind == LAT_MAX && y->u.max == -5);
    assert(lat_leq(&a, &ac) && lat_leq(&c, &ac) && !lat_leq(&ac, &a));
    assert(lat_map_merge_at(&ac.u.map, "y", 1, lat_map_get(&a.u.map, "y", 1)) == 0);

    //  normalize joins duplicate keys by the same rule.
    lat_t raw;
    lat_init(&raw, LAT_MAP);
    lat_map_t *m = &raw.u.map;
    const char *keys[] = {"y", "x", "y", "z"};
    const lat_t *values[] = {lat_map_get(&c.u.map, "y", 1), lat_map_get(&b.u.map, "x", 1),
                             lat_map_get(&a.u.map, "y", 1), lat_map_get(&b.u.map, "z", 1)};
    for (size_t i = 0; i < 4; i++) {
        m->items = lat_array_reserve(m->items, &m->cap, m->len + 1, sizeof *m->items);
        cb_bytes_set(&m->items[m->len].key, keys[i], 1);
        m->items[m->len++].value = s_lat_dup(values[i]);
    }
    lat_map_normalize(m);
    assert(lat_equal(&raw, &ac));
    lat_t *all[] = {&a, &b, &c, &ac, &ca, &raw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        lat_fini(all[i]);

    //  A few keys into a large map take the per-key path, the other way round the linear
    //  one: both must give the same join.
    cb_rand_t rand;
    cb_rand_seed(&rand, lat_test_seed());
    for (int round = 0; round < 300; round++) {
        lat_t big, small, big_small, small_big;
        lat_init(&big, LAT_MAP);
        lat_init(&small, LAT_MAP);
        size_t n_big = 20 + cb_rand_below(&rand, 40), n_small = cb_rand_below(&rand, 3);
        for (size_t i = 0; i < n_big + n_small; i++) {
            char key[3] = {(char)('a' + cb_rand_below(&rand, 26)),
                           (char)('a' + cb_rand_below(&rand, 3))};
            char text[2] = {key[1], 0};
            if (cb_rand_below(&rand, 4))
                s_put_lww(i < n_big ? &big.u.map : &small.u.map, key, cb_rand_below(&rand, 3),
                          text);
            else
                s_put_max(i < n_big ? &big.u.map : &small.u.map, key, (int64_t)i);
        }
        lat_copy(&big_small, &big);
        lat_copy(&small_big, &small);
        int changed = lat_merge(&big_small, &small);
        lat_merge(&small_big, &big);
        assert(lat_equal(&big_small, &small_big) && changed == !lat_equal(&big_small, &big));
        assert(lat_leq(&small, &big_small) && lat_leq(&big, &big_small));
        lat_fini(&big);
        lat_fini(&small);
        lat_fini(&big_small);
        lat_fini(&small_big);
    }
    if (verbose)
        printf("  map: per-key merge, kind conflict, normalize OK\n");
}
