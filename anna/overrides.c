//  anna/overrides.c: per-key replication factors. Contract in overrides.h. The values live in
//  an anna_store_t keyed by the data key, so merging is the lattice merge (last writer wins)
//  and a lookup of a key without override is one hash probe (none when there are none).
//  SPDX-License-Identifier: Apache-2.0
#include "anna/overrides.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "anna/store.h"
#include "common/alloc.h"

struct _anna_overrides_t {
    anna_store_t *store;
};

anna_overrides_t *anna_overrides_new(void)
{
    anna_overrides_t *self = cb_calloc(1, sizeof *self);
    self->store = anna_store_new(0);
    return self;
}

void anna_overrides_destroy(anna_overrides_t **self_p)
{
    assert(self_p);
    if (!*self_p)
        return;
    anna_store_destroy(&(*self_p)->store);
    cb_free(*self_p);
    *self_p = NULL;
}

int anna_overrides_parse(const void *text, size_t len, uint32_t threads, uint32_t *global,
                         uint32_t *local, char *err, size_t errlen)
{
    char buf[32];
    unsigned g = 0, l = 0;
    char extra;
    if (len == 0 || len >= sizeof buf) {
        snprintf(err, errlen, "a replication override is \"G L\" (global and local replicas)");
        return -EINVAL;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (sscanf(buf, "%u %u %c", &g, &l, &extra) != 2 || g < 1 ||
        g > ANNA_OVERRIDES_MAX_GLOBAL || l < 1 || l > threads) {
        snprintf(err, errlen, "a replication override is \"G L\" with G 1..%d and L 1..%u "
                 "(threads), not '%s'", ANNA_OVERRIDES_MAX_GLOBAL, threads, buf);
        return -EINVAL;
    }
    *global = g;
    *local = l;
    return 0;
}

int anna_overrides_merge(anna_overrides_t *self, const char *key, const lat_t *value,
                         uint32_t threads, char *err, size_t errlen)
{
    uint32_t g, l;
    if (value->kind != LAT_LWW) {
        snprintf(err, errlen, "a replication override is an LWW value \"G L\"");
        return -EINVAL;
    }
    int rc = anna_overrides_parse(value->u.lww.value.data, value->u.lww.value.len, threads, &g,
                                  &l, err, errlen);
    if (rc)
        return rc;
    return anna_store_merge(self->store, key, value, 0);
}

bool anna_overrides_lookup(const anna_overrides_t *self, const char *key, size_t len,
                           uint32_t *global, uint32_t *local)
{
    (void)len;
    if (anna_store_count(self->store) == 0)
        return false;
    const lat_t *v = anna_store_get(self->store, key);
    char err[8];
    //  Only valid values are ever merged in; a later valid value wins by timestamp.
    return v && anna_overrides_parse(v->u.lww.value.data, v->u.lww.value.len, UINT32_MAX,
                                     global, local, err, sizeof err) == 0;
}

const lat_t *anna_overrides_get(const anna_overrides_t *self, const char *key)
{
    return anna_store_get(self->store, key);
}

size_t anna_overrides_count(const anna_overrides_t *self)
{
    return anna_store_count(self->store);
}

const char *anna_overrides_at(const anna_overrides_t *self, size_t i, const lat_t **value)
{
    return anna_store_at(self->store, i, value);
}

static void s_value(lat_t *v, uint64_t ts, const char *text)
{
    lat_init(v, LAT_LWW);
    lat_lww_assign(v, ts, 1, text, strlen(text));
}

void anna_overrides_test(bool verbose)
{
    anna_overrides_t *o = anna_overrides_new();
    uint32_t g, l;
    char err[200];
    assert(!anna_overrides_lookup(o, "k", 1, &g, &l));
    assert(anna_overrides_parse("3 2", 3, 4, &g, &l, err, sizeof err) == 0 && g == 3 && l == 2);
    assert(anna_overrides_parse("3 5", 3, 4, &g, &l, err, sizeof err) == -EINVAL);
    assert(anna_overrides_parse("0 1", 3, 4, &g, &l, err, sizeof err) == -EINVAL);
    assert(anna_overrides_parse("65 1", 4, 4, &g, &l, err, sizeof err) == -EINVAL);
    assert(anna_overrides_parse("2 1 x", 5, 4, &g, &l, err, sizeof err) == -EINVAL);
    assert(anna_overrides_parse("banana", 6, 4, &g, &l, err, sizeof err) == -EINVAL &&
           strstr(err, "banana"));
    lat_t v;
    s_value(&v, 10, "3 2");
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == 1);
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == 0);
    lat_fini(&v);
    assert(anna_overrides_lookup(o, "hot", 3, &g, &l) && g == 3 && l == 2);
    assert(!anna_overrides_lookup(o, "cold", 4, &g, &l));
    //  Last writer wins: an older value changes nothing, a newer one replaces it.
    s_value(&v, 5, "1 1");
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == 0);
    lat_fini(&v);
    s_value(&v, 20, "1 1");
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == 1);
    lat_fini(&v);
    assert(anna_overrides_lookup(o, "hot", 3, &g, &l) && g == 1 && l == 1);
    //  Refused: not LWW, not "G L".
    s_value(&v, 30, "lots");
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == -EINVAL);
    lat_fini(&v);
    lat_init(&v, LAT_SET);
    assert(anna_overrides_merge(o, "hot", &v, 4, err, sizeof err) == -EINVAL);
    lat_fini(&v);
    assert(anna_overrides_count(o) == 1);
    const lat_t *got;
    assert(!strcmp(anna_overrides_at(o, 0, &got), "hot") && got->u.lww.ts == 20);
    anna_overrides_destroy(&o);
    assert(!o);
    if (verbose)
        printf(" overrides: parsing, last writer wins, refusals\n");
}
