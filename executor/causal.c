//  executor/causal.c: the pure part of the causal levels (see causal.h). Pure: no I/O.
//  SPDX-License-Identifier: Apache-2.0
#include "executor/causal.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

bool exec_causal_kind(int kind)
{
    return kind == LAT_SINGLE_CAUSAL || kind == LAT_MULTI_CAUSAL;
}

bool exec_causal_covers(const lat_vclock_t *clock, const lat_vclock_t *need)
{
    lat_vc_order_t o = lat_vclock_compare(clock, need);
    return o == LAT_VC_EQUAL || o == LAT_VC_GREATER;
}

//  The session's versions, each a one-version causal value (entries of other kinds, and
//  absent reads, require nothing).
static const lat_version_t *s_version(const exec_read_t *r)
{
    if (r->absent || !exec_causal_kind(r->version.kind) || r->version.u.causal.len != 1)
        return NULL;
    return &r->version.u.causal.items[0];
}

void exec_causal_need(const exec_read_t *reads, size_t n, const char *key, bool multi,
                      lat_vclock_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const lat_version_t *v = s_version(&reads[i]);
        if (!v)
            continue;
        if (!strcmp(reads[i].key, key))
            lat_vclock_merge(out, &v->clock);
        else if (multi)
            for (size_t d = 0; d < v->deps.len; d++)
                if (!strcmp(v->deps.items[d].key, key))
                    lat_vclock_merge(out, &v->deps.items[d].clock);
    }
}

void exec_causal_deps(const exec_read_t *reads, size_t n, const char *key, lat_deps_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const lat_version_t *v = s_version(&reads[i]);
        if (!v)
            continue;
        if (strcmp(reads[i].key, key))
            lat_deps_add(out, reads[i].key, &v->clock);
        for (size_t d = 0; d < v->deps.len; d++)
            if (strcmp(v->deps.items[d].key, key))
                lat_deps_add(out, v->deps.items[d].key, &v->deps.items[d].clock);
    }
}

static uint64_t s_sum(const lat_vclock_t *vc)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < vc->len; i++)
        sum += vc->items[i].count;
    return sum;
}

int exec_causal_pick(const lat_t *value, const lat_vclock_t *need)
{
    assert(exec_causal_kind(value->kind));
    int best = -1;
    uint64_t best_sum = 0;
    for (size_t i = 0; i < value->u.causal.len; i++) {
        const lat_version_t *v = &value->u.causal.items[i];
        if (!exec_causal_covers(&v->clock, need))
            continue;
        uint64_t sum = s_sum(&v->clock);
        //  Versions are in canonical order, so ">=" on a full tie takes the last one.
        if (best < 0 || sum > best_sum ||
            (sum == best_sum &&
             cb_bytes_cmp(&v->value, &value->u.causal.items[best].value) >= 0)) {
            best = (int)i;
            best_sum = sum;
        }
    }
    return best;
}

void exec_causal_one(lat_t *out, lat_kind_t kind, const lat_version_t *version)
{
    assert(exec_causal_kind(kind));
    lat_init(out, kind);
    lat_causal_add(out, &version->clock, &version->deps, version->value.data,
                   version->value.len);
}

void exec_causal_write_clock(const lat_t *current, const lat_vclock_t *need, const char *writer,
                             lat_vclock_t *out)
{
    lat_vclock_merge(out, need);
    if (current && exec_causal_kind(current->kind))
        lat_causal_clock(current, out);
    lat_vclock_tick(out, writer);
}

//  ---- self-test ----------------------------------------------------------------------------

static void s_clock(lat_vclock_t *vc, uint32_t a, uint32_t b)
{
    *vc = (lat_vclock_t){0};
    lat_vclock_bump(vc, "a", a);
    lat_vclock_bump(vc, "b", b);
}

//  A session entry holding one version {id:count}, depending on dkey at {id:dcount}.
static void s_entry(exec_read_t *r, const char *key, const char *id, uint32_t count,
                    const char *dkey, uint32_t dcount)
{
    memset(r, 0, sizeof *r);
    r->key = cb_strdup(key);
    r->kind = LAT_MULTI_CAUSAL;
    lat_init(&r->version, LAT_MULTI_CAUSAL);
    lat_causal_add_simple(&r->version, id, count, dkey, dcount, "v");
}

void exec_causal_test(bool verbose)
{
    //  need: same-key clocks always, other keys' dependencies only when multi.
    exec_read_t s[3];
    s_entry(&s[0], "x", "a", 2, "y", 5);
    s_entry(&s[1], "x", "b", 3, NULL, 0);
    s_entry(&s[2], "y", "a", 1, "z", 4);
    lat_vclock_t need = {0};
    exec_causal_need(s, 3, "x", true, &need);
    assert(lat_vclock_get(&need, "a") == 2 && lat_vclock_get(&need, "b") == 3);
    lat_vclock_fini(&need);
    need = (lat_vclock_t){0};
    exec_causal_need(s, 3, "y", true, &need);
    assert(lat_vclock_get(&need, "a") == 5 && need.len == 1);
    lat_vclock_fini(&need);
    need = (lat_vclock_t){0};
    exec_causal_need(s, 3, "y", false, &need);
    assert(lat_vclock_get(&need, "a") == 1 && need.len == 1);
    lat_vclock_fini(&need);
    need = (lat_vclock_t){0};
    exec_causal_need(s, 3, "w", true, &need);
    assert(need.len == 0);

    //  deps of a write of x: y at the join of y's clock and x's dependency on y, and z.
    lat_deps_t deps = {0};
    exec_causal_deps(s, 3, "x", &deps);
    assert(deps.len == 2 && !strcmp(deps.items[0].key, "y") && !strcmp(deps.items[1].key, "z"));
    assert(lat_vclock_get(&deps.items[0].clock, "a") == 5);
    assert(lat_vclock_get(&deps.items[1].clock, "a") == 4);
    lat_deps_fini(&deps);

    //  pick: only versions at or after need; largest clock sum, then largest value.
    lat_t v;
    lat_init(&v, LAT_SINGLE_CAUSAL);
    lat_vclock_t c;
    s_clock(&c, 3, 0);
    lat_causal_add(&v, &c, NULL, "p", 1);
    lat_vclock_fini(&c);
    s_clock(&c, 0, 2);
    lat_causal_add(&v, &c, NULL, "q", 1);
    lat_vclock_fini(&c);
    s_clock(&c, 1, 2);
    lat_causal_add(&v, &c, NULL, "r", 1);   //  dominates (0,2): q goes
    lat_vclock_fini(&c);
    assert(v.u.causal.len == 2);
    need = (lat_vclock_t){0};
    int i = exec_causal_pick(&v, &need);  //  (3,0) "p" vs (1,2) "r": equal sums, "r" wins
    assert(i >= 0 && v.u.causal.items[i].value.data[0] == 'r');
    s_clock(&need, 2, 0);
    i = exec_causal_pick(&v, &need);
    assert(i >= 0 && v.u.causal.items[i].value.data[0] == 'p');
    lat_vclock_fini(&need);
    s_clock(&need, 3, 1);                   //  nothing covers (3,1): the copy is behind
    assert(exec_causal_pick(&v, &need) == -1);

    //  A write dominates the need and every version the writer sees, and is new.
    lat_vclock_t w = {0};
    exec_causal_write_clock(&v, &need, "b", &w);
    assert(lat_vclock_get(&w, "a") == 3 && lat_vclock_get(&w, "b") == 3);
    for (size_t k = 0; k < v.u.causal.len; k++)
        assert(lat_vclock_compare(&v.u.causal.items[k].clock, &w) == LAT_VC_LESS);
    lat_vclock_fini(&w);
    lat_vclock_fini(&need);

    //  one: a copy of one version; single drops dependencies.
    lat_t one;
    exec_causal_one(&one, LAT_SINGLE_CAUSAL, &s[0].version.u.causal.items[0]);
    assert(one.u.causal.len == 1 && one.u.causal.items[0].deps.len == 0);
    lat_fini(&one);
    exec_causal_one(&one, LAT_MULTI_CAUSAL, &s[0].version.u.causal.items[0]);
    assert(one.u.causal.len == 1 && one.u.causal.items[0].deps.len == 1);
    lat_fini(&one);
    lat_fini(&v);
    for (int k = 0; k < 3; k++) {
        cb_free(s[k].key);
        lat_fini(&s[k].version);
    }
    if (verbose)
        printf("exec_causal: need, deps, pick, write clock\n");
}
